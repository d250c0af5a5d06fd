#pragma once
// Renders a parsed template. Scoping follows Jinja2: a for loop body runs in its own scope
// per iteration (assignments do not leave the loop; namespace() attributes do), if blocks
// share the enclosing scope, macros get a scope of their arguments.

#include <string>

#include "tokenizer/jinja/ast.h"

namespace dsv3::jinja {

struct RenderLimits {
  size_t max_output_bytes = 256u << 20;  // a template looping on user data must not eat memory
  int max_call_depth = 64;               // macro recursion
  int64_t max_loop_iterations = 10'000'000;
};

// Renders `body` with `globals` as the outermost variables. Throws TemplateError with the
// line of the statement or expression that failed.
std::string render_template(const Body& body, const ValueDict& globals, const RenderLimits& limits = {});

}  // namespace dsv3::jinja
