#pragma once
// Renders a parsed template. Scoping follows Jinja2: a for loop body runs in its own scope
// per iteration (assignments do not leave the loop; namespace() attributes do), if blocks
// share the enclosing scope, macros get a scope of their arguments.

#include <string>

#include "tokenizer/jinja/ast.h"

namespace dsv3::jinja {

struct RenderLimits {
  size_t max_output_bytes = 256u << 20;  // a template looping on user data must not eat memory
  size_t max_value_bytes = 64u << 20;    // one string, or one list (its items x sizeof(Value))
  size_t max_built_bytes = 1u << 30;     // every string and list built in one render, together
  int max_call_depth = 64;               // macro recursion
  int64_t max_loop_iterations = 10'000'000;
};

// The rendered text and its bytes that came from the caller's data (text.h).
struct RenderedText {
  std::string text;
  DataSpans data;
};

// Renders `body` with `globals` as the outermost variables. Throws TemplateError with the
// line of the statement or expression that failed.
RenderedText render_template(const Body& body, const ValueDict& globals, const RenderLimits& limits = {});

}  // namespace dsv3::jinja
