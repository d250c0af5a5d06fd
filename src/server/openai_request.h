#pragma once
// OpenAI request JSON -> engine-level request, as pure functions (no sockets, no model):
// every field is validated here, with 400 errors naming the parameter. Unknown fields are
// ignored, as OpenAI's API does. Integer fields accept exact integral numbers (100.0) and
// refuse fractions and out-of-range values.

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "base/json.h"
#include "grammar/json_schema.h"
#include "server/api_error.h"

namespace dsv3::server {

// Limits from the served model, used by validation.
struct ServedModel {
  std::string id;          // the name /v1/models lists
  int64_t vocab_size = 0;
  int64_t context = 0;     // context limit in tokens
};

// Sampling and output options shared by chat and completions.
struct GenerationRequest {
  std::optional<int64_t> max_tokens;  // absent: until EOS or the context is full
  float temperature = 1.0f;
  float top_p = 1.0f;
  int top_k = 0;                      // 0 (or -1): disabled
  std::optional<uint64_t> seed;
  std::vector<std::string> stop;
  int n = 1;
  bool stream = false;
  bool include_usage = false;         // stream_options.include_usage
  bool logprobs = false;
  int top_logprobs = 0;
  std::vector<std::pair<int32_t, float>> logit_bias;
  float presence_penalty = 0.0f, frequency_penalty = 0.0f;
  bool ignore_eos = false;            // extension (as vLLM)
  bool echo = false;                  // completions: the prompt comes back before the completion
};

struct ChatRequest {
  std::string model;
  Json messages;   // normalized: each {role, content: string, ...}; "developer" -> "system"
  Json tools;      // null or the validated array
  Json tool_choice;  // null (auto), "none", "auto", "required" or {"type":"function","function":{"name":...}}
  // chat_template_kwargs (as vLLM and SGLang accept them): further template variables, e.g.
  // V3.1's {"thinking": true}. An object; the template sees them as request data (text in
  // them is plain text, never markup).
  Json template_kwargs = Json::object();
  // The last message is from the assistant: continue it (prefill) instead of opening a new turn.
  bool continue_final_message = false;
  // response_format json_object or json_schema: the output must be a value of this schema
  // (null: free text).
  std::shared_ptr<const grammar::Schema> response_schema;
  GenerationRequest gen;
};

struct CompletionPrompt {
  std::optional<std::string> text;
  std::vector<int32_t> ids;  // when given as token ids
};

struct CompletionRequest {
  std::string model;
  std::vector<CompletionPrompt> prompts;  // one choice group per prompt
  GenerationRequest gen;
};

// Parses a request body; the error names the parameter (or "body").
std::optional<ApiError> parse_chat_request(const Json& body, const ServedModel& model, ChatRequest* out);
std::optional<ApiError> parse_completion_request(const Json& body, const ServedModel& model, CompletionRequest* out);

constexpr int kMaxStopStrings = 4;
constexpr size_t kMaxStopBytes = 256;
constexpr int kMaxN = 128;
constexpr int kMaxTopLogprobs = 20;
constexpr int kMaxLogitBias = 300;

}  // namespace dsv3::server
