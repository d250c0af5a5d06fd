#include "server/choice_stream.h"

#include "server/api_error.h"

namespace dsv3::server {

std::string lossy_utf8(const std::string& bytes) {
  if (!find_invalid_utf8(bytes)) return bytes;
  return bounded_text(bytes, bytes.size() + 1);
}

Json logprob_entry(const Tokenizer& tokenizer, const TokenOutput& t) {
  auto entry = [&](int32_t id, float lp) {
    std::string b = tokenizer.token_bytes(id);
    Json bytes = Json::array();
    for (unsigned char c : b) bytes.push_back(static_cast<int>(c));
    return Json{{"token", lossy_utf8(b)}, {"logprob", lp}, {"bytes", bytes}};
  };
  Json e = entry(t.token, t.logprob);
  Json top = Json::array();
  for (const auto& [id, lp] : t.top) top.push_back(entry(id, lp));
  e["top_logprobs"] = top;
  return e;
}

Json unscored_entry(const Tokenizer& tokenizer, int32_t token) {
  Json e = logprob_entry(tokenizer, TokenOutput{token, 0.0f, {}});
  e["logprob"] = nullptr;
  e["top_logprobs"] = nullptr;
  return e;
}

Json legacy_logprobs(const Json& entries) {
  Json tokens = Json::array(), lps = Json::array(), tops = Json::array();
  for (const auto& e : entries) {
    tokens.push_back(e["token"]);
    lps.push_back(e["logprob"]);
    if (e["top_logprobs"].is_null()) {
      tops.push_back(nullptr);
      continue;
    }
    Json top = Json::object();
    for (const auto& t : e["top_logprobs"]) top[t["token"].get<std::string>()] = t["logprob"];
    tops.push_back(top);
  }
  return Json{{"tokens", tokens}, {"token_logprobs", lps}, {"top_logprobs", tops}};
}

void ChoiceDelta::append(const ChoiceDelta& next) {
  content += next.content;
  reasoning += next.reasoning;
  for (const auto& e : next.logprobs) logprobs.push_back(e);
  for (const auto& c : next.tool_calls) tool_calls.push_back(c);
}

ChoiceStream::ChoiceStream(const Tokenizer& tokenizer, std::vector<std::string> stops, bool reasoning,
                           bool in_reasoning, bool want_logprobs, bool tool_calls)
    : tokenizer_(tokenizer), decoder_(tokenizer, /*skip_special_tokens=*/true), stop_(std::move(stops)),
      want_logprobs_(want_logprobs) {
  if (reasoning) splitter_.emplace(in_reasoning);
  if (tool_calls) {
    tool_parser_.emplace();
    for (const std::string& marker : tool_call_markers())
      if (auto id = tokenizer.token_to_id(marker)) tool_marker_ids_.push_back(*id);
  }
}

void ChoiceStream::route(const std::string& text, ChoiceDelta& d, bool final) {
  std::string content;
  if (!splitter_) {
    content = text;
  } else {
    SplitText s = splitter_->push(text);
    content += s.content;
    d.reasoning += s.reasoning;
    if (final) {
      SplitText f = splitter_->flush();
      content += f.content;
      d.reasoning += f.reasoning;
    }
  }
  if (!tool_parser_) {
    d.content += content;
    return;
  }
  ToolCallDelta t = tool_parser_->push(content);
  if (final) {
    ToolCallDelta f = tool_parser_->flush();
    t.content += f.content;
    for (auto& c : f.calls) t.calls.push_back(std::move(c));
  }
  d.content += t.content;
  // The same id for a call's pieces and its whole form: its index and name.
  auto id_of = [](size_t index, const std::string& name) { return str_f("call_%zu_%s", index, name.c_str()); };
  for (const ToolCallPiece& p : t.pieces) {
    if (p.opens) {
      d.tool_calls.push_back(Json{{"index", p.call},
                                  {"id", id_of(p.call, p.name)},
                                  {"type", "function"},
                                  {"function", {{"name", p.name}, {"arguments", p.arguments}}}});
    } else {
      d.tool_calls.push_back(Json{{"index", p.call}, {"function", {{"arguments", p.arguments}}}});
    }
  }
  for (const ParsedToolCall& c : t.calls) {
    const size_t index = calls_.size();
    calls_.push_back(Json{{"index", index},
                          {"id", id_of(index, c.name)},
                          {"type", "function"},
                          {"function", {{"name", c.name}, {"arguments", c.arguments}}}});
  }
}

ChoiceDelta ChoiceStream::start_echo(const std::string& text, int32_t first_token) {
  ChoiceDelta d;
  d.content = text;
  if (want_logprobs_) d.logprobs.push_back(unscored_entry(tokenizer_, first_token));
  emitted_.append(d);
  return d;
}

ChoiceDelta ChoiceStream::push_prompt(const std::vector<TokenOutput>& scored) {
  ChoiceDelta d;
  if (!want_logprobs_) return d;
  for (const TokenOutput& t : scored) d.logprobs.push_back(logprob_entry(tokenizer_, t));
  emitted_.append(d);
  return d;
}

ChoiceDelta ChoiceStream::push(const std::vector<TokenOutput>& tokens) {
  ChoiceDelta d;
  for (const TokenOutput& t : tokens) {
    if (stop_.stopped()) break;  // tokens generated after a stop string are dropped
    ++completion_tokens_;
    if (want_logprobs_) d.logprobs.push_back(logprob_entry(tokenizer_, t));
    // The parser must see the tool-call markers even where a tokenizer marks them special
    // (which the decoder drops; DeepSeek-V3's marks them not special).
    const bool marker = std::find(tool_marker_ids_.begin(), tool_marker_ids_.end(), t.token) != tool_marker_ids_.end();
    std::string text = stop_.push(marker ? decoder_.flush() + tokenizer_.token_bytes(t.token) : decoder_.push(t.token));
    route(text, d, false);
  }
  emitted_.append(d);
  return d;
}

ChoiceDelta ChoiceStream::finish() {
  ChoiceDelta d;
  std::string tail = stop_.stopped() ? std::string() : stop_.push(decoder_.flush());
  tail += stop_.flush();
  route(tail, d, true);
  emitted_.append(d);
  return d;
}

}  // namespace dsv3::server
