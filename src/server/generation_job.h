#pragma once
// One HTTP request's generation: its n choices (engine requests), their text streams, and the
// OpenAI JSON they turn into, for chat completions and legacy completions alike. The HTTP
// layer drives it (poll -> chunks, or poll until done -> one response); this file knows JSON
// and the engine, not sockets.

#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "base/json.h"
#include "runtime/engine.h"
#include "server/api_error.h"
#include "server/choice_stream.h"
#include "server/openai_request.h"

namespace dsv3::server {

enum class JobKind { Chat, Completion };

struct JobChoice {
  int index = 0;
  std::shared_ptr<RequestHandle> handle;
  std::unique_ptr<ChoiceStream> stream;
  int64_t prompt_tokens = 0;
  int prompt_group = 0;  // choices generated from the same prompt share a group
  std::optional<std::string> echo;  // completions' echo: the prompt's text, sent first
  int32_t first_prompt_token = -1;
  bool done = false;
  FinishReason finish = FinishReason::Length;
  std::string error;  // engine failure
};

class GenerationJob {
 public:
  GenerationJob(JobKind kind, std::string model, bool include_usage, bool logprobs);
  ~GenerationJob();  // cancels whatever is still running (client gone)

  void add_choice(JobChoice choice);
  int64_t prompt_tokens() const { return prompt_tokens_; }

  // Waits up to `timeout` for output; returns the stream chunks (JSON objects) produced.
  std::vector<Json> poll_chunks(std::chrono::milliseconds timeout);
  // Chunk carrying usage (choices: []), for stream_options.include_usage.
  Json usage_chunk() const;
  bool done() const;
  // The first engine error, if any choice failed.
  std::optional<ApiError> failure() const;
  // The whole response (non-streamed), once done().
  Json final_response() const;
  // Advances without producing chunks (non-streamed requests).
  void poll(std::chrono::milliseconds timeout);
  void cancel_all();

 private:
  Json chunk(int index, const ChoiceDelta* delta, const std::optional<FinishReason>& finish, bool first,
             bool called = false) const;
  // {id, object, created, model, choices}: what every response and chunk of this job carries.
  Json envelope(const char* object, Json choices) const;
  Json usage() const;
  void update_choice(JobChoice& c, std::chrono::milliseconds timeout, std::vector<Json>* chunks);

  JobKind kind_;
  std::string id_;
  std::string model_;
  int64_t created_;
  bool include_usage_;
  bool logprobs_;
  int64_t prompt_tokens_ = 0;
  std::vector<JobChoice> choices_;
  std::vector<bool> sent_role_;
  std::set<int> counted_prompts_;
};

const char* openai_finish_reason(FinishReason r);

// A validated request with its prompts tokenized, chat and completions alike.
struct PreparedGeneration {
  JobKind kind;
  std::vector<std::vector<int32_t>> prompts = {};
  GenerationRequest gen;
  bool reasoning = false;        // split <think> blocks into reasoning_content (chat)
  bool opens_reasoning = false;  // the prompt ends inside an open <think> block
  bool tool_calls = false;       // parse tool-call markup into tool_calls (chat with tools)
  // Constrained decoding (response_format): every choice's output is a value of its schema.
  std::shared_ptr<const grammar::JsonGrammar> grammar = {};
  // tool_choice "required" or named: every choice's output is one tool call (forced_tool_call.h).
  std::shared_ptr<const grammar::ToolCallGrammar> tool_call_grammar = {};
  const char* prompt_param;      // "messages" or "prompt": the parameter errors about the prompt name
  std::vector<std::string> echo_texts = {};  // completions' echo: each prompt as given
};

// Plans the request's choices (plan_generation; a request without a seed gets a random one),
// submits each to the engine and gathers them in a job. On an error (a prompt that does not
// fit the context, a refusal by the engine) nothing is left running.
std::optional<ApiError> start_generation(Engine& engine, const Tokenizer& tokenizer, const ServedModel& model,
                                         const PreparedGeneration& request, std::shared_ptr<GenerationJob>* out);

}  // namespace dsv3::server
