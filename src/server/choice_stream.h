#pragma once
// One choice of a completion as it streams: token ids in; text deltas (content and, for
// reasoning models, reasoning_content), logprobs entries and the finish reason out.
// Pipeline per token: incremental detokenizer (never a broken UTF-8 character) -> stop
// strings (never a leaked prefix) -> <think> splitter.

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "base/json.h"
#include "runtime/request.h"
#include "server/text_stream.h"
#include "server/tool_calls.h"
#include "tokenizer/incremental_decoder.h"
#include "tokenizer/tokenizer.h"

namespace dsv3::server {

struct ChoiceDelta {
  std::string content;
  std::string reasoning;
  Json logprobs = Json::array();  // chat-format entries for the tokens of this delta
  // Tool-call pieces of this delta, as OpenAI's stream writes them: a call's first piece
  // {"index", "id", "type": "function", "function": {"name", "arguments"}}, then
  // {"index", "function": {"arguments"}} with the next bytes of its arguments.
  Json tool_calls = Json::array();
  bool empty() const { return content.empty() && reasoning.empty() && logprobs.empty() && tool_calls.empty(); }
  // Adds what `next` emitted after this delta's text and entries.
  void append(const ChoiceDelta& next);
};

class ChoiceStream {
 public:
  // reasoning: split <think> blocks into reasoning_content (chat with a reasoning template).
  // tool_calls: DeepSeek's tool-call markup in the answer becomes tool_calls (chat with tools).
  ChoiceStream(const Tokenizer& tokenizer, std::vector<std::string> stops, bool reasoning, bool in_reasoning,
               bool want_logprobs, bool tool_calls = false);
  // Completions' echo: the prompt's text comes first (`text`, as given; never matched against
  // stop strings), and with logprobs its tokens: the first without a log probability (null),
  // the others as `scored` arrives (push_prompt).
  ChoiceDelta start_echo(const std::string& text, int32_t first_token);
  ChoiceDelta push_prompt(const std::vector<TokenOutput>& scored);
  // Adds generated tokens; returns the text they complete.
  ChoiceDelta push(const std::vector<TokenOutput>& tokens);
  // End of generation: flushes held text.
  ChoiceDelta finish();
  // A stop string matched: the caller cancels generation and reports finish_reason "stop".
  bool stopped_by_string() const { return stop_.stopped(); }
  int64_t completion_tokens() const { return completion_tokens_; }

  // Everything emitted so far (for non-streamed responses).
  const std::string& content() const { return emitted_.content; }
  const std::string& reasoning() const { return emitted_.reasoning; }
  const Json& all_logprobs() const { return emitted_.logprobs; }
  // The well-formed calls, whole: {"index", "id", "type", "function": {"name", "arguments"}}.
  const Json& tool_calls() const { return calls_; }

 private:
  void route(const std::string& text, ChoiceDelta& d, bool final);
  const Tokenizer& tokenizer_;
  IncrementalDecoder decoder_;
  StopMatcher stop_;
  std::optional<ReasoningSplitter> splitter_;
  std::optional<ToolCallParser> tool_parser_;
  std::vector<int32_t> tool_marker_ids_;  // special tokens the tool parser must see as text
  bool want_logprobs_;
  int64_t completion_tokens_ = 0;
  ChoiceDelta emitted_;  // every delta returned so far, appended
  Json calls_ = Json::array();
};

// A chat-format logprobs entry: {"token", "logprob", "bytes", "top_logprobs": [...]}.
Json logprob_entry(const Tokenizer& tokenizer, const TokenOutput& t);
// The same entry for a prompt's first token, which has no log probability: both null.
Json unscored_entry(const Tokenizer& tokenizer, int32_t token);
// Chat-format entries as legacy completions' arrays: {"tokens", "token_logprobs",
// "top_logprobs" (objects token -> logprob; null where the entry has none)}.
Json legacy_logprobs(const Json& entries);
// Valid UTF-8 text of raw token bytes (invalid bytes as U+FFFD).
std::string lossy_utf8(const std::string& bytes);

}  // namespace dsv3::server
