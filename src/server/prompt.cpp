#include "server/prompt.h"

#include <algorithm>

namespace dsv3::server {
namespace {

// Placeholders for protected spans are private-use characters no template writes:
// U+F8F0 <index digits> U+F8F1.
const std::string kOpen = "\xEF\xA3\xB0";
const std::string kClose = "\xEF\xA3\xB1";

// Replaces every added-token string in `text` (as encode() would match it, lstrip/rstrip
// whitespace included) and every placeholder marker by a placeholder recorded in `spans`.
std::string protect(const std::string& text, const Tokenizer& tok, std::vector<std::string>& spans) {
  std::vector<std::pair<size_t, size_t>> hits = tok.added_token_spans(text);
  for (const std::string& marker : {kOpen, kClose})
    for (size_t p = text.find(marker); p != std::string::npos; p = text.find(marker, p + marker.size()))
      hits.emplace_back(p, p + marker.size());
  std::sort(hits.begin(), hits.end());
  std::string out;
  size_t pos = 0;
  for (const auto& [b, e] : hits) {
    if (b < pos) continue;  // a marker inside an added token is already covered
    out.append(text, pos, b - pos);
    out += kOpen + std::to_string(spans.size()) + kClose;
    spans.push_back(text.substr(b, e - b));
    pos = e;
  }
  out.append(text, pos, std::string::npos);
  return out;
}

}  // namespace

std::optional<ApiError> build_chat_prompt(const Tokenizer& tok, const ChatRequest& req, ChatPrompt* out) {
  if (!tok.chat_template()) return invalid_request("this model has no chat template; use /v1/completions", "messages");
  std::vector<std::string> spans;
  Json messages = req.messages;
  for (auto& m : messages) {
    if (m["role"] == "assistant" || !m["content"].is_string()) continue;
    m["content"] = protect(m["content"].get<std::string>(), tok, spans);
  }
  bool continue_final = req.continue_final_message;
  if (continue_final && messages.back()["content"] == "" && !messages.back().contains("tool_calls")) {
    // Continuing an empty assistant message is answering afresh: the generation prompt (there
    // is no content to find and cut after).
    messages.erase(messages.end() - 1);
    continue_final = false;
  }
  Json extra = Json::object();
  if (!req.tools.is_null()) extra["tools"] = req.tools;
  auto rendered = tok.apply_chat_template(messages, /*add_generation_prompt=*/!continue_final, extra);
  if (!rendered.ok()) return invalid_request("the chat template failed: " + rendered.error().message(), "messages");
  std::string text = std::move(rendered).value();
  if (continue_final) {
    // Continue the final assistant message: cut what the template wrote after its content
    // (the end-of-turn marker).
    const std::string& last = messages.back()["content"].get_ref<const std::string&>();
    size_t p = text.rfind(last);
    if (p != std::string::npos) text.resize(p + last.size());
  }
  // Encode: template text with special tokens, protected spans as plain text.
  out->ids.clear();
  out->text.clear();
  size_t pos = 0;
  while (pos <= text.size()) {
    size_t open = text.find(kOpen, pos);
    std::string segment = text.substr(pos, open == std::string::npos ? std::string::npos : open - pos);
    if (!segment.empty()) {
      auto ids = tok.encode(segment, /*add_bos=*/out->ids.empty());
      out->ids.insert(out->ids.end(), ids.begin(), ids.end());
    }
    out->text += segment;
    if (open == std::string::npos) break;
    size_t close = text.find(kClose, open + kOpen.size());
    if (close == std::string::npos) break;  // cannot happen: we wrote both
    size_t index = std::stoul(text.substr(open + kOpen.size(), close - open - kOpen.size()));
    const std::string& original = spans.at(index);
    auto ids = tok.encode_ordinary(original);
    if (out->ids.empty() && tok.add_bos_token() && tok.bos_id()) out->ids.push_back(*tok.bos_id());
    out->ids.insert(out->ids.end(), ids.begin(), ids.end());
    out->text += original;
    pos = close + kClose.size();
  }
  // A prompt that ends inside <think> (R1-style generation prompt) makes the answer start
  // with reasoning.
  size_t open_think = out->text.rfind("<think>");
  out->opens_reasoning = open_think != std::string::npos && out->text.find("</think>", open_think) == std::string::npos;
  return std::nullopt;
}

std::vector<int32_t> encode_completion_prompt(const Tokenizer& tok, const std::string& text) {
  return tok.encode(text, /*add_bos=*/true);
}

}  // namespace dsv3::server
