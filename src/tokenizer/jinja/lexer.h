#pragma once
// Jinja lexer with the settings of HF's apply_chat_template: trim_blocks (the first newline
// after a block or comment tag is dropped), lstrip_blocks (spaces and tabs before a block or
// comment tag at the start of a line are dropped), keep_trailing_newline=False, and the
// whitespace-control marks {%- -%} {{- -}} {#- -#} and {%+ (no lstrip). Newlines (\r\n, \r)
// become \n first, as Jinja2 does.

#include <string>
#include <string_view>
#include <vector>

namespace dsv3::jinja {

enum class TokenType {
  kText,        // literal template text (whitespace control already applied)
  kVarBegin,    // {{
  kVarEnd,      // }}
  kBlockBegin,  // {%
  kBlockEnd,    // %}
  kName,
  kString,      // value: the unescaped string
  kInt,
  kFloat,
  kOperator,    // + - * / // % ** ~ == != < <= > >= = ( ) [ ] { } , . : |
  kEnd,
};

struct Token {
  TokenType type;
  std::string value;
  int line;
};

// Throws TemplateError (with the line) on unterminated tags, strings or comments.
std::vector<Token> tokenize(std::string_view source);

}  // namespace dsv3::jinja
