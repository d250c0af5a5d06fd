#include "server/generation_job.h"

#include <atomic>
#include <ctime>
#include <map>
#include <random>

#include "server/generation_plan.h"

namespace dsv3::server {

namespace {
std::string make_id(JobKind kind) {
  static std::atomic<uint64_t> counter{0};
  uint64_t n = counter.fetch_add(1) + 1;
  uint64_t t = static_cast<uint64_t>(std::time(nullptr));
  return str_f("%s-%llx%06llx", kind == JobKind::Chat ? "chatcmpl" : "cmpl", static_cast<unsigned long long>(t),
               static_cast<unsigned long long>(n));
}
}  // namespace

// OpenAI knows "stop" and "length". A cancelled choice is one whose client left (nobody reads
// it) or that a stop string ended (reported as "stop" already); a failed one is reported as
// an error, not a finish reason.
const char* openai_finish_reason(FinishReason r) { return r == FinishReason::Length ? "length" : "stop"; }

GenerationJob::GenerationJob(JobKind kind, std::string model, bool include_usage, bool logprobs)
    : kind_(kind), id_(make_id(kind)), model_(std::move(model)), created_(static_cast<int64_t>(std::time(nullptr))),
      include_usage_(include_usage), logprobs_(logprobs) {}

GenerationJob::~GenerationJob() { cancel_all(); }

void GenerationJob::cancel_all() {
  for (auto& c : choices_)
    if (!c.done && c.handle) c.handle->cancel();
}

void GenerationJob::add_choice(JobChoice choice) {
  // Usage counts each prompt once, however many choices (n) share it.
  if (counted_prompts_.insert(choice.prompt_group).second) prompt_tokens_ += choice.prompt_tokens;
  choices_.push_back(std::move(choice));
  sent_role_.push_back(false);
}

bool GenerationJob::done() const {
  for (const auto& c : choices_)
    if (!c.done) return false;
  return true;
}

std::optional<ApiError> GenerationJob::failure() const {
  for (const auto& c : choices_) {
    if (!c.error.empty()) return api_error(500, c.error, "server_error");
  }
  return std::nullopt;
}

// An answer that ended on its own (not by length) after calling tools finishes with
// "tool_calls", as OpenAI's do.
const char* finish_reason_of(FinishReason r, bool called_tools) {
  return called_tools && r == FinishReason::Stop ? "tool_calls" : openai_finish_reason(r);
}

Json GenerationJob::usage() const {
  int64_t completion = 0;
  for (const auto& c : choices_) completion += c.stream->completion_tokens();
  // Cached prompt tokens as OpenAI and vLLM report them, counted like prompt_tokens: once
  // per prompt, the most any of its choices reused (choices queued behind a full batch may
  // reuse what the first one left).
  std::map<int, int64_t> cached_by_prompt;
  for (const auto& c : choices_)
    cached_by_prompt[c.prompt_group] = std::max(cached_by_prompt[c.prompt_group], c.handle->cached_tokens());
  int64_t cached = 0;
  for (const auto& [group, n] : cached_by_prompt) cached += n;
  return Json{{"prompt_tokens", prompt_tokens_},
              {"completion_tokens", completion},
              {"total_tokens", prompt_tokens_ + completion},
              {"prompt_tokens_details", {{"cached_tokens", cached}}}};
}

Json GenerationJob::chunk(int index, const ChoiceDelta* delta, const std::optional<FinishReason>& finish, bool first,
                          bool called) const {
  Json choice = {{"index", index}};
  if (kind_ == JobKind::Chat) {
    Json d = Json::object();
    if (first) d["role"] = "assistant";
    if (delta && !delta->reasoning.empty()) d["reasoning_content"] = delta->reasoning;
    if (delta && (!delta->content.empty() || first)) d["content"] = delta->content;
    if (delta && !delta->tool_calls.empty()) d["tool_calls"] = delta->tool_calls;
    choice["delta"] = d;
    if (logprobs_ && delta && !delta->logprobs.empty()) choice["logprobs"] = Json{{"content", delta->logprobs}};
    else choice["logprobs"] = nullptr;
  } else {
    choice["text"] = delta ? delta->content : std::string();
    choice["logprobs"] = logprobs_ && delta && !delta->logprobs.empty() ? legacy_logprobs(delta->logprobs) : Json(nullptr);
  }
  choice["finish_reason"] = finish ? Json(finish_reason_of(*finish, called)) : Json(nullptr);
  Json c = envelope(kind_ == JobKind::Chat ? "chat.completion.chunk" : "text_completion", Json::array({choice}));
  if (include_usage_) c["usage"] = nullptr;
  return c;
}

Json GenerationJob::usage_chunk() const {
  Json c = envelope(kind_ == JobKind::Chat ? "chat.completion.chunk" : "text_completion", Json::array());
  c["usage"] = usage();
  return c;
}

Json GenerationJob::envelope(const char* object, Json choices) const {
  return Json{{"id", id_}, {"object", object}, {"created", created_}, {"model", model_}, {"choices", std::move(choices)}};
}

void GenerationJob::update_choice(JobChoice& c, std::chrono::milliseconds timeout, std::vector<Json>* chunks) {
  if (c.done) return;
  RequestUpdate u = c.handle->wait(timeout);
  ChoiceDelta delta;
  if (c.echo) {  // the prompt first, once
    delta.append(c.stream->start_echo(*c.echo, c.first_prompt_token));
    c.echo.reset();
  }
  delta.append(c.stream->push_prompt(u.prompt));
  delta.append(c.stream->push(u.tokens));
  bool finished = u.finished;
  FinishReason reason = u.finish;
  if (c.stream->stopped_by_string()) {
    c.handle->cancel();  // the engine frees the slot within a step
    finished = true;
    reason = FinishReason::Stop;
  } else if (finished && u.finish == FinishReason::Failed) {
    c.error = u.error;
  }
  if (finished) {
    delta.append(c.stream->finish());
    c.done = true;
    c.finish = reason;
  }
  if (!chunks) return;
  const size_t i = static_cast<size_t>(&c - choices_.data());
  bool first = !sent_role_[i];
  if (!delta.empty() || first) {
    chunks->push_back(chunk(c.index, &delta, std::nullopt, first && kind_ == JobKind::Chat));
    sent_role_[i] = true;
  }
  if (finished) chunks->push_back(chunk(c.index, nullptr, c.finish, false, !c.stream->tool_calls().empty()));
}

std::vector<Json> GenerationJob::poll_chunks(std::chrono::milliseconds timeout) {
  std::vector<Json> chunks;
  // Wait on the first unfinished choice, then collect from the others without waiting.
  bool waited = false;
  for (auto& c : choices_) {
    if (c.done) continue;
    update_choice(c, waited ? std::chrono::milliseconds(0) : timeout, &chunks);
    waited = true;
  }
  return chunks;
}

void GenerationJob::poll(std::chrono::milliseconds timeout) {
  bool waited = false;
  for (auto& c : choices_) {
    if (c.done) continue;
    update_choice(c, waited ? std::chrono::milliseconds(0) : timeout, nullptr);
    waited = true;
  }
}

Json GenerationJob::final_response() const {
  Json choices = Json::array();
  for (const auto& c : choices_) {
    const Json& calls = c.stream->tool_calls();
    Json ch = {{"index", c.index}, {"finish_reason", finish_reason_of(c.finish, !calls.empty())}};
    if (kind_ == JobKind::Chat) {
      Json msg = {{"role", "assistant"}, {"content", c.stream->content()}};
      if (!c.stream->reasoning().empty()) msg["reasoning_content"] = c.stream->reasoning();
      if (!calls.empty()) {
        Json list = Json::array();
        for (Json call : calls) {  // a message's calls carry no stream index
          call.erase("index");
          list.push_back(std::move(call));
        }
        msg["tool_calls"] = std::move(list);
        if (c.stream->content().empty()) msg["content"] = nullptr;
      }
      ch["message"] = msg;
      ch["logprobs"] = logprobs_ ? Json{{"content", c.stream->all_logprobs()}} : Json(nullptr);
    } else {
      ch["text"] = c.stream->content();
      ch["logprobs"] = logprobs_ ? legacy_logprobs(c.stream->all_logprobs()) : Json(nullptr);
    }
    choices.push_back(ch);
  }
  Json response = envelope(kind_ == JobKind::Chat ? "chat.completion" : "text_completion", std::move(choices));
  response["usage"] = usage();
  return response;
}

std::optional<ApiError> start_generation(Engine& engine, const Tokenizer& tokenizer, const ServedModel& model,
                                         const PreparedGeneration& request, std::shared_ptr<GenerationJob>* out) {
  const GenerationRequest& gen = request.gen;
  std::vector<int64_t> prompt_lengths;
  for (const auto& ids : request.prompts) prompt_lengths.push_back(static_cast<int64_t>(ids.size()));
  const uint64_t unseeded = std::random_device{}() * 0x9E3779B97F4A7C15ull + std::random_device{}();
  if (auto e = capacity_error(request.prompts.size(), gen.n, engine.options())) return e;
  std::vector<PlannedChoice> plan;
  if (auto e = plan_generation(gen, prompt_lengths, request.prompt_param, model.context, tokenizer.eos_id(), unseeded,
                               &plan))
    return e;
  // All choices are queued together or none is: a refused request holds no place in the queue.
  std::vector<Submission> submissions;
  for (PlannedChoice& planned : plan) {
    planned.params.sampling.grammar = request.grammar;
    planned.params.sampling.tool_call_grammar = request.tool_call_grammar;
    submissions.push_back({request.prompts[planned.prompt_index], planned.params});
  }
  std::vector<std::shared_ptr<RequestHandle>> handles;
  const SubmitResult sr = engine.submit_all(std::move(submissions), &handles);
  if (auto e = submit_error(sr, request.prompt_param, plan.empty() ? SamplingParams{} : plan[sr.index].params.sampling))
    return e;
  auto job = std::make_shared<GenerationJob>(request.kind, model.id, gen.stream && gen.include_usage, gen.logprobs);
  for (size_t i = 0; i < plan.size(); ++i) {
    const PlannedChoice& planned = plan[i];
    const std::vector<int32_t>& prompt = request.prompts[planned.prompt_index];
    JobChoice c;
    c.index = planned.index;
    c.handle = handles[i];
    c.prompt_tokens = static_cast<int64_t>(prompt.size());
    c.prompt_group = planned.prompt_index;
    if (gen.echo) {
      c.echo = request.echo_texts[planned.prompt_index];
      c.first_prompt_token = prompt[0];
    }
    c.stream = std::make_unique<ChoiceStream>(tokenizer, gen.stop, request.reasoning, request.opens_reasoning,
                                              gen.logprobs, request.tool_calls);
    job->add_choice(std::move(c));
  }
  *out = std::move(job);
  return std::nullopt;
}

}  // namespace dsv3::server
