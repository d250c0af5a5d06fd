#pragma once
// A chat template (tokenizer_config.json "chat_template") compiled once and rendered per
// request, with the semantics of HF's apply_chat_template: Jinja2 with trim_blocks and
// lstrip_blocks, variables messages / add_generation_prompt / tools (None when absent) plus
// whatever `extra` carries (bos_token, eos_token, thinking, ...). Rendering is const and
// thread-safe: each call has its own state.

#include <memory>
#include <string>
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

  // messages: an OpenAI-style JSON array; extra: an object of further template variables.
  // Errors (a raise_exception, an undefined value used, a type error) name the template line.
  Result<std::string> render(const Json& messages, bool add_generation_prompt, const Json& extra) const;
  // Same with key order kept (matters for tools | tojson).
  Result<std::string> render(const OrderedJson& messages, bool add_generation_prompt, const OrderedJson& extra) const;

  const std::string& source() const { return *source_; }

  ChatTemplate(ChatTemplate&&) noexcept;
  ChatTemplate& operator=(ChatTemplate&&) noexcept;
  ~ChatTemplate();

 private:
  ChatTemplate();
  template <typename J>
  Result<std::string> render_impl(const J& messages, bool add_generation_prompt, const J& extra) const;

  std::shared_ptr<const std::string> source_;
  std::shared_ptr<const std::vector<std::unique_ptr<jinja::Stmt>>> body_;
};

}  // namespace dsv3
