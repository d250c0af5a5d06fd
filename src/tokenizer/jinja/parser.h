#pragma once
// Parses Jinja tokens into a syntax tree. Precedence follows Jinja2's parser: conditional
// expression < or < and < not < comparisons (and in / not in) < + - < ~ < * / // % < ** <
// unary - + < primary with postfix (.attr, [item], [a:b:c], call) and filters / tests.

#include <vector>

#include "tokenizer/jinja/ast.h"
#include "tokenizer/jinja/lexer.h"

namespace dsv3::jinja {

// Throws TemplateError with the line of the offending token.
Body parse_template(const std::vector<Token>& tokens);

}  // namespace dsv3::jinja
