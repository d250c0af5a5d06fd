#include "runtime/engine.h"

#include <malloc.h>

#include <algorithm>

#include "base/log.h"
#include "model/footprint.h"
#include "runtime/draft_step.h"
#include "runtime/step_sampling.h"

namespace dsv3 {

using Clock = std::chrono::steady_clock;

namespace {

// Tokens of scored prompts per step, all sequences together: each has a vocabulary-sized row
// of logits (64 x 129,280 floats: 33 MB).
constexpr int64_t kMaxScoredTokensPerStep = 64;

SchedulerOptions scheduler_options(const EngineOptions& o, const Model& model) {
  SchedulerOptions s;
  s.max_batch = o.max_batch;
  s.max_step_tokens = o.max_step_tokens;
  s.max_scored_tokens = kMaxScoredTokensPerStep;
  s.prefix_cache_bytes = o.prefix_cache_bytes;
  s.max_context = model.max_context();
  s.mtp = o.draft_tokens > 0;
  return s;
}

StepBytesModel step_bytes_model(const Model& model) {
  const ModelConfig& c = model.config();
  const ModelFootprint f = compute_footprint(c, &model.checkpoint());
  StepBytesModel b;
  b.main_fixed = static_cast<double>(f.decode_fixed_bytes);
  b.mtp_fixed = static_cast<double>(f.mtp_fixed_bytes);
  b.expert = static_cast<double>(f.routed_expert_bytes);
  for (int64_t l = 0; l < c.num_hidden_layers; ++l) b.main_moe_layers += c.is_moe_layer(l);
  b.mtp_moe_layers = c.n_routed_experts > 0 ? 1 : 0;
  b.experts = c.n_routed_experts;
  b.experts_per_token = c.num_experts_per_tok;
  return b;
}

}  // namespace

Engine::Engine(const Model& model, EngineOptions options)
    : model_(model), options_(options), scheduler_(scheduler_options(options, model)),
      policy_(options.draft_tokens, step_bytes_model(model)) {
  thread_ = std::thread([this] { loop(); });
}

Engine::~Engine() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    accepting_ = false;
    stop_ = true;
  }
  cv_.notify_all();
  if (thread_.joinable()) thread_.join();
}

bool Engine::accepting() const {
  std::lock_guard<std::mutex> lock(mu_);
  return accepting_;
}

SubmitResult Engine::submit(std::vector<int32_t> prompt, RequestParams params) {
  std::vector<Submission> one;
  one.push_back({std::move(prompt), std::move(params)});
  std::vector<std::shared_ptr<RequestHandle>> handles;
  SubmitResult r = submit_all(std::move(one), &handles);
  if (r.status == SubmitStatus::Ok) r.handle = std::move(handles[0]);
  return r;
}

SubmitResult Engine::submit_all(std::vector<Submission> requests, std::vector<std::shared_ptr<RequestHandle>>* handles) {
  handles->clear();
  for (size_t i = 0; i < requests.size(); ++i) {
    SubmitResult r;
    r.status = SubmitStatus::Invalid;
    r.index = i;
    if (Status st = validate_request(requests[i].prompt, requests[i].params, model_.vocab_size(), model_.max_context(),
                                     &r.field);
        !st.ok()) {
      r.message = st.error().message();
      return r;
    }
  }
  std::lock_guard<std::mutex> lock(mu_);
  if (!accepting_) return {SubmitStatus::ShuttingDown, "the server is shutting down", nullptr};
  // Running and waiting (as of the last step, plus what was submitted since) against what the
  // batch and the queue hold together.
  const int64_t held = static_cast<int64_t>(stats_.running) + waiting_;
  const int64_t capacity = static_cast<int64_t>(options_.max_batch) + options_.max_queue;
  if (held + static_cast<int64_t>(requests.size()) > capacity)
    return {SubmitStatus::QueueFull,
            requests.size() == 1 ? str_f("the request queue is full (%d waiting)", options_.max_queue)
                                 : str_f("the request queue cannot take %zu more requests (%d waiting)", requests.size(),
                                         waiting_),
            nullptr};
  for (Submission& s : requests) {
    auto handle = std::make_shared<RequestHandle>(next_id_++, static_cast<int64_t>(s.prompt.size()));
    inbox_.push_back(std::make_unique<Sequence>(handle, std::move(s.params), std::move(s.prompt),
                                                  model_.new_cache(options_.draft_tokens > 0)));
    handles->push_back(std::move(handle));
  }
  waiting_ += static_cast<int>(requests.size());
  stats_.requests_submitted += requests.size();
  stats_.queue_length = waiting_;
  cv_.notify_all();
  return {SubmitStatus::Ok, "", nullptr};
}

void Engine::shutdown(std::chrono::milliseconds drain) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    accepting_ = false;
  }
  const auto deadline = Clock::now() + drain;
  for (;;) {
    {
      std::lock_guard<std::mutex> lock(mu_);
      if (waiting_ == 0 && stats_.running == 0) break;
    }
    if (Clock::now() >= deadline) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  {
    std::lock_guard<std::mutex> lock(mu_);
    stop_ = true;
  }
  cv_.notify_all();
  if (thread_.joinable()) thread_.join();
}

EngineStats Engine::stats() const {
  std::lock_guard<std::mutex> lock(mu_);
  EngineStats s = stats_;
  if (rate_window_.size() >= 2) {
    double secs = std::chrono::duration<double>(rate_window_.back().first - rate_window_.front().first).count();
    if (secs > 0) s.generated_tokens_per_second = (rate_window_.back().second - rate_window_.front().second) / secs;
  }
  return s;
}

void Engine::loop() {
  for (;;) {
    {
      std::unique_lock<std::mutex> lock(mu_);
      cv_.wait(lock, [&] { return stop_ || !inbox_.empty() || scheduler_.has_work(); });
      for (; !inbox_.empty(); inbox_.pop_front()) scheduler_.add(std::move(inbox_.front()));
      if (stop_) break;
    }
    step();
  }
  scheduler_.abort_all();
  deliver_finished();
}

void Engine::step() {
  const int64_t V = model_.vocab_size();
  // 1. Schedule: the cancelled leave, waiting requests join (from a cached prefix where one
  //    matches), and each running sequence gets its tokens for this step.
  //    With speculative decoding, the policy says whether this step verifies drafts.
  const bool speculative = options_.draft_tokens > 0;
  // The batch this step decodes, or will once the prompts it starts are in.
  const int decoding =
      std::max(1, std::min(options_.max_batch, static_cast<int>(scheduler_.running() + scheduler_.waiting())));
  const DraftMode mode = !speculative                     ? DraftMode::Off
                         : options_.draft_policy_adaptive ? policy_.decide(decoding)
                                                          : DraftMode::Draft;
  StepPlan plan = scheduler_.schedule(mode == DraftMode::Draft);
  uint64_t admitted_prompt_tokens = 0, prefix_hits = 0, prefix_tokens = 0;
  for (Sequence* s : plan.admitted) {
    s->handle->mark_admitted();
    s->handle->set_cached_tokens(s->cached_tokens);
    admitted_prompt_tokens += s->prompt.size();
    if (s->cached_tokens > 0) ++prefix_hits, prefix_tokens += static_cast<uint64_t>(s->cached_tokens);
  }
  // (Across machines, rank 0 would broadcast the plan here and every rank run the same step.)
  uint64_t generated = 0, drafts_proposed = 0, drafts_accepted = 0;
  bool stepped = false;
  if (!plan.entries.empty()) {
    // 2. Forward: every entry's tokens in one pass; each cache advances by its tokens.
    std::vector<SequenceInput> inputs;
    for (const StepEntry& e : plan.entries) inputs.push_back({&e.seq->cache, e.tokens, e.logits()});
    ForwardOutput out;
    const bool mtp_upkeep = mode != DraftMode::Off;
    const auto t0 = Clock::now();
    if (Status st = model_.forward(inputs, &out, /*want_hidden=*/mtp_upkeep); !st.ok()) {
      // Requests are validated at submission, so this is an engine failure: the step's
      // requests fail, the others go on.
      DSV3_LOG_ERROR("forward step failed: %s", st.error().message().c_str());
      scheduler_.fail(plan, st.error().message());
    } else {
      // 3. Sample: the logits become tokens (drafts kept or replaced in order).
      std::vector<StepOutput> outputs = sample_step(model_.pool(), plan, out, V);
      const auto t1 = Clock::now();
      int64_t verified = 0;
      bool decode_only = true;
      for (size_t i = 0; i < plan.entries.size(); ++i) {
        const StepEntry& e = plan.entries[i];
        drafts_proposed += static_cast<uint64_t>(e.drafts);
        drafts_accepted += static_cast<uint64_t>(outputs[i].drafts_accepted);
        if (e.drafts > 0) verified += std::min(outputs[i].drafts_accepted + 1, e.drafts);
        decode_only = decode_only && e.seq->prefill_done();
      }
      // (Speculative decoding) The MTP layer catches up with what this step kept, and drafts
      // the next step's tokens; or, where drafting does not pay, the step's sequences stop
      // drafting. A failure costs only the drafts: the step's tokens stand.
      if (mtp_upkeep) {
        Status st = draft_step(model_, plan, out, outputs, mode == DraftMode::Draft ? options_.draft_tokens : 0);
        if (!st.ok()) {
          DSV3_LOG_ERROR("drafting failed: %s", st.error().message().c_str());
          stop_drafting(plan);
        }
      } else if (speculative) {
        stop_drafting(plan);
      }
      if (speculative && decode_only)
        policy_.record(decoding, mode, std::chrono::duration<double>(t1 - t0).count(),
                       std::chrono::duration<double>(Clock::now() - t1).count(), verified,
                       static_cast<int64_t>(drafts_accepted));
      // 4. Postprocess: prefill progress, new tokens, stop / length / context.
      scheduler_.postprocess(plan, outputs);
      for (size_t i = 0; i < plan.entries.size(); ++i) {
        RequestHandle& h = *plan.entries[i].seq->handle;
        if (!outputs[i].error.empty())
          DSV3_LOG_ERROR("request %llu: %s", static_cast<unsigned long long>(h.id()), outputs[i].error.c_str());
        if (!outputs[i].scored.empty()) h.push_prompt(std::move(outputs[i].scored));
        for (TokenOutput& t : outputs[i].tokens) h.push(std::move(t));
        generated += outputs[i].tokens.size();
      }
      stepped = true;
    }
  }
  {
    std::lock_guard<std::mutex> lock(mu_);
    stats_.prompt_tokens += admitted_prompt_tokens;
    stats_.prefix_cache_hits += prefix_hits;
    stats_.prefix_cache_tokens += prefix_tokens;
    stats_.generated_tokens += generated;
    stats_.draft_tokens += drafts_proposed;
    stats_.draft_tokens_accepted += drafts_accepted;
    if (stepped) {
      ++stats_.steps;
      const auto now = Clock::now();
      rate_window_.emplace_back(now, stats_.generated_tokens);
      while (rate_window_.size() > 2 && now - rate_window_.front().first > std::chrono::seconds(5))
        rate_window_.pop_front();
    }
  }
  deliver_finished();
}

void Engine::stop_drafting(const StepPlan& plan) {
  for (const StepEntry& e : plan.entries) {
    e.seq->mtp_synced = false;
    e.seq->draft.clear();
  }
}

void Engine::deliver_finished() {
  std::vector<std::unique_ptr<Sequence>> finished = scheduler_.take_finished();
  bool idle;
  {
    // The gauges first: a client that sees its response end and then reads the stats must not
    // find its request still running, nor its cache still held.
    std::lock_guard<std::mutex> lock(mu_);
    for (const auto& s : finished) {
      switch (s->finish) {
        case FinishReason::Stop:
        case FinishReason::Length: ++stats_.requests_finished; break;
        case FinishReason::Cancelled: ++stats_.requests_cancelled; break;
        case FinishReason::Failed: ++stats_.requests_failed; break;
      }
    }
    waiting_ = static_cast<int>(inbox_.size() + scheduler_.waiting());
    stats_.queue_length = waiting_;
    stats_.running = static_cast<int>(scheduler_.running());
    stats_.kv_cache_bytes = scheduler_.kv_cache_bytes();
    stats_.prefix_cache_bytes = scheduler_.prefix_cache().bytes();
    idle = waiting_ == 0 && stats_.running == 0;
  }
  for (const auto& s : finished) s->handle->finish(s->finish, s->error);
  // Idle: give freed caches and step buffers back to the system, so that the process returns
  // to its baseline memory between bursts of requests.
  if (idle && !finished.empty()) malloc_trim(0);
}

}  // namespace dsv3
