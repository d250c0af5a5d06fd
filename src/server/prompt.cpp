#include "server/prompt.h"

#include <algorithm>
#include <limits>

namespace dsv3::server {
namespace {

using Spans = std::vector<std::pair<size_t, size_t>>;

// Bytes of text a message puts in any of the family's prompts: its content, and its tool
// calls' names and arguments.
size_t message_text_bytes(const Json& m) {
  size_t n = 0;
  if (m.contains("content") && m["content"].is_string()) n += m["content"].get_ref<const std::string&>().size();
  if (m.contains("tool_calls") && m["tool_calls"].is_array())
    for (const Json& call : m["tool_calls"]) {
      if (!call.is_object() || !call.contains("function") || !call["function"].is_object()) continue;
      for (const char* key : {"name", "arguments"})
        if (call["function"].contains(key) && call["function"][key].is_string())
          n += call["function"][key].get_ref<const std::string&>().size();
    }
  return n;
}

ApiError too_long(std::string message) {
  return invalid_request(std::move(message), "messages", "context_length_exceeded");
}

// The bounds checked before rendering, and the limits of the render that follow from them.
std::optional<ApiError> check_cost(const Tokenizer& tok, const ChatRequest& req, int64_t context,
                                   ChatTemplate::Limits* limits) {
  const auto ctx = static_cast<size_t>(context);
  if (req.messages.size() > ctx)
    return too_long(str_f("%zu messages cannot fit in a context of %lld tokens", req.messages.size(),
                          static_cast<long long>(context)));
  const size_t per_token = tok.max_token_bytes();
  if (per_token == 0 || per_token > std::numeric_limits<size_t>::max() / ctx) return std::nullopt;
  const size_t max_text = ctx * per_token;
  size_t text = 0;
  for (const Json& m : req.messages) text += message_text_bytes(m);
  if (text > max_text)
    return too_long(str_f("the messages hold %zu bytes of text; a context of %lld tokens holds at most %zu (%zu bytes "
                          "per token at most)",
                          text, static_cast<long long>(context), max_text, per_token));
  // The rendered prompt may hold at most max_text bytes (and a little the continuation of a
  // final message cuts off); a template may build a few times that while it renders.
  const ChatTemplate::Limits defaults;
  limits->max_output_bytes = std::min(defaults.max_output_bytes, max_text + (64u << 10));
  limits->max_value_bytes = std::min(defaults.max_value_bytes, std::max<size_t>(limits->max_output_bytes, 1u << 20));
  limits->max_built_bytes = std::min(defaults.max_built_bytes, std::max<size_t>(256u << 20, 32 * limits->max_output_bytes));
  return std::nullopt;
}

bool inside(const Spans& spans, size_t pos) {
  return std::any_of(spans.begin(), spans.end(), [&](const auto& s) { return s.first <= pos && pos < s.second; });
}

// The last occurrence of `marker` that the template wrote (not inside the request's text).
size_t rfind_markup(const std::string& text, const Spans& data, const std::string& marker) {
  for (size_t p = text.rfind(marker); p != std::string::npos; p = p == 0 ? std::string::npos : text.rfind(marker, p - 1))
    if (!inside(data, p)) return p;
  return std::string::npos;
}

}  // namespace

std::optional<ApiError> build_chat_prompt(const Tokenizer& tok, const ChatRequest& req, ChatPrompt* out,
                                          int64_t context) {
  if (!tok.has_chat_format()) return invalid_request("this model has no chat template; use /v1/completions", "messages");
  ChatTemplate::Limits limits;
  if (context > 0)
    if (auto e = check_cost(tok, req, context, &limits)) return e;
  Json messages = req.messages;
  bool continue_final = req.continue_final_message;
  if (continue_final && messages.back()["content"] == "" && !messages.back().contains("tool_calls")) {
    // Continuing an empty assistant message is answering afresh: the generation prompt (there
    // is no content to find and cut after).
    messages.erase(messages.end() - 1);
    continue_final = false;
  }
  Json data = req.template_kwargs.is_object() ? req.template_kwargs : Json::object();
  if (!req.tools.is_null()) data["tools"] = req.tools;
  auto rendered = tok.apply_chat_template_marked(messages, /*add_generation_prompt=*/!continue_final, Json::object(),
                                                 data, limits);
  if (!rendered.ok()) return invalid_request("the chat template failed: " + rendered.error().message(), "messages");
  if (rendered->over_output_limit)
    return too_long(str_f("the rendered prompt is longer than %zu bytes: more than a context of %lld tokens holds",
                          limits.max_output_bytes, static_cast<long long>(context)));
  std::string text = std::move(rendered->text);
  Spans data_spans = std::move(rendered->data_spans);
  if (continue_final) {
    // Continue the final assistant message: cut what the template wrote after its content
    // (the end-of-turn marker).
    const std::string& last = messages.back()["content"].get_ref<const std::string&>();
    size_t p = text.rfind(last);
    if (p != std::string::npos) {
      text.resize(p + last.size());
      while (!data_spans.empty() && data_spans.back().first >= text.size()) data_spans.pop_back();
      if (!data_spans.empty()) data_spans.back().second = std::min(data_spans.back().second, text.size());
    }
  }
  out->ids = tok.encode_with_plain_text(text, data_spans, /*add_bos=*/true);
  // A prompt that ends inside the template's own <think> (R1-style generation prompt) makes
  // the answer start with reasoning; a <think> typed in a message is text.
  const size_t open_think = rfind_markup(text, data_spans, "<think>");
  const size_t close_think = rfind_markup(text, data_spans, "</think>");
  out->opens_reasoning = open_think != std::string::npos && (close_think == std::string::npos || close_think < open_think);
  out->text = std::move(text);
  return std::nullopt;
}

std::vector<int32_t> encode_completion_prompt(const Tokenizer& tok, const std::string& text) {
  return tok.encode(text, /*add_bos=*/true);
}

}  // namespace dsv3::server
