#pragma once
// A chat template (tokenizer_config.json "chat_template") compiled once and rendered per
// request, with the semantics of HF's apply_chat_template: Jinja2 with trim_blocks and
// lstrip_blocks, variables messages / add_generation_prompt / tools (None when absent) plus
// whatever `extra` carries (bos_token, eos_token, thinking, ...). Rendering is const and
// thread-safe: each call has its own state.

#include <cstddef>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "base/json.h"
#include "base/result.h"

namespace dsv3 {

namespace jinja {
struct Stmt;
}

class ChatTemplate {
 public:
  // Syntax errors read "chat template line N: ...".
  static Result<ChatTemplate> compile(const std::string& source);

  // What one render may build before it fails (the error says which limit).
  struct Limits {
    size_t max_output_bytes = 256u << 20;
    size_t max_value_bytes = 64u << 20;  // one string, or one list
    size_t max_built_bytes = 1u << 30;   // every string and list of the render together
    int64_t max_loop_iterations = 10'000'000;  // every for loop's iterations together
  };
  // The text rendered, and the byte ranges of it copied from the caller's data: `messages` and
  // the variables of `data` (a request's tools), never the template's own text or `extra`.
  struct Rendered {
    std::string text;
    std::vector<std::pair<size_t, size_t>> data_spans;  // sorted, disjoint
    bool over_output_limit = false;  // render_marked: the output passed max_output_bytes (text empty)
  };

  // messages: an OpenAI-style JSON array; extra: an object of further template variables.
  // Errors (a raise_exception, an undefined value used, a type error) name the template line.
  Result<std::string> render(const Json& messages, bool add_generation_prompt, const Json& extra) const;
  // Same, with the text that came from messages and `data` marked, within `limits`. Output
  // past max_output_bytes is not an error here but Rendered::over_output_limit (the caller
  // knows what that means: a prompt longer than its context).
  Result<Rendered> render_marked(const Json& messages, bool add_generation_prompt, const Json& extra, const Json& data,
                                 const Limits& limits) const;
  // Same with key order kept (matters for tools | tojson).
  Result<std::string> render(const OrderedJson& messages, bool add_generation_prompt, const OrderedJson& extra) const;

  const std::string& source() const { return *source_; }

  ChatTemplate(ChatTemplate&&) noexcept;
  ChatTemplate& operator=(ChatTemplate&&) noexcept;
  ~ChatTemplate();

 private:
  ChatTemplate();
  template <typename J>
  Result<Rendered> render_impl(const J& messages, bool add_generation_prompt, const J& extra, const J& data,
                               const Limits& limits, bool marked) const;

  std::shared_ptr<const std::string> source_;
  std::shared_ptr<const std::vector<std::unique_ptr<jinja::Stmt>>> body_;
};

}  // namespace dsv3
