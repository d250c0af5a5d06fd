#include "tokenizer/chat_template.h"

#include "tokenizer/jinja/ast.h"
#include "tokenizer/jinja/error.h"
#include "tokenizer/jinja/evaluator.h"
#include "tokenizer/jinja/lexer.h"
#include "tokenizer/jinja/parser.h"

namespace dsv3 {

ChatTemplate::ChatTemplate() = default;
ChatTemplate::ChatTemplate(ChatTemplate&&) noexcept = default;
ChatTemplate& ChatTemplate::operator=(ChatTemplate&&) noexcept = default;
ChatTemplate::~ChatTemplate() = default;

namespace {

Error template_error(const jinja::TemplateError& e) {
  if (e.line() > 0) return Error(str_f("chat template line %d: %s", e.line(), e.what()));
  return Error(std::string("chat template: ") + e.what());
}

}  // namespace

Result<ChatTemplate> ChatTemplate::compile(const std::string& source) {
  if (find_invalid_utf8(source)) return Error("chat template: not valid UTF-8");
  ChatTemplate t;
  try {
    auto tokens = jinja::tokenize(source);
    t.body_ = std::make_shared<const jinja::Body>(jinja::parse_template(tokens));
  } catch (const jinja::TemplateError& e) {
    return template_error(e);
  }
  t.source_ = std::make_shared<const std::string>(source);
  return t;
}

template <typename J>
Result<ChatTemplate::Rendered> ChatTemplate::render_impl(const J& messages, bool add_generation_prompt, const J& extra,
                                                         const J& data, const Limits& limits, bool marked) const {
  if (!messages.is_array()) return Error("chat template: messages must be a JSON array");
  if (!extra.is_null() && !extra.is_object()) return Error("chat template: extra variables must be a JSON object");
  if (!data.is_null() && !data.is_object()) return Error("chat template: data variables must be a JSON object");
  try {
    jinja::ValueDict vars;
    // HF passes tools=None and documents=None when the request has none.
    vars.set("tools", jinja::Value::none());
    vars.set("documents", jinja::Value::none());
    if (extra.is_object())
      for (auto it = extra.begin(); it != extra.end(); ++it) vars.set(it.key(), jinja::Value::from_json(it.value()));
    if (data.is_object())
      for (auto it = data.begin(); it != data.end(); ++it)
        vars.set(it.key(), jinja::Value::from_json(it.value(), /*data=*/true));
    vars.set("messages", jinja::Value::from_json(messages, /*data=*/true));
    vars.set("add_generation_prompt", jinja::Value(add_generation_prompt));
    jinja::RenderLimits render_limits;
    render_limits.max_output_bytes = limits.max_output_bytes;
    render_limits.max_value_bytes = limits.max_value_bytes;
    render_limits.max_built_bytes = limits.max_built_bytes;
    render_limits.max_loop_iterations = limits.max_loop_iterations;
    jinja::RenderedText r = jinja::render_template(*body_, vars, render_limits);
    return Rendered{std::move(r.text), std::move(r.data)};
  } catch (const jinja::OutputLimitError& e) {
    if (marked) {
      Rendered over;
      over.over_output_limit = true;
      return over;
    }
    return template_error(e);
  } catch (const jinja::TemplateError& e) {
    return template_error(e);
  }
}

Result<std::string> ChatTemplate::render(const Json& messages, bool add_generation_prompt, const Json& extra) const {
  DSV3_ASSIGN(Rendered r, render_impl(messages, add_generation_prompt, extra, Json(), Limits{}, false));
  return std::move(r.text);
}

Result<std::string> ChatTemplate::render(const OrderedJson& messages, bool add_generation_prompt,
                                         const OrderedJson& extra) const {
  DSV3_ASSIGN(Rendered r, render_impl(messages, add_generation_prompt, extra, OrderedJson(), Limits{}, false));
  return std::move(r.text);
}

Result<ChatTemplate::Rendered> ChatTemplate::render_marked(const Json& messages, bool add_generation_prompt,
                                                           const Json& extra, const Json& data,
                                                           const Limits& limits) const {
  return render_impl(messages, add_generation_prompt, extra, data, limits, true);
}

}  // namespace dsv3
