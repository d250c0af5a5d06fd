#include "runtime/engine.h"

#include <malloc.h>

#include <algorithm>
#include <cmath>

#include "base/log.h"

namespace dsv3 {

using Clock = std::chrono::steady_clock;

namespace {

// score_prompt: the prompt tokens a chunk's logits score. Row j holds the logits after prompt
// position prefilled + j, so it scores the token at prefilled + j + 1 (raw log softmax, with
// top_logprobs alternatives); the prompt's last row scores nothing (it chooses the first new
// token).
std::vector<TokenOutput> score_prompt_chunk(const Sequence& s, const float* rows, int64_t n_rows, int64_t V,
                                            std::vector<float>& logp) {
  std::vector<TokenOutput> scored;
  logp.resize(static_cast<size_t>(V));
  for (int64_t j = 0; j < n_rows; ++j) {
    const size_t next = static_cast<size_t>(s.prefilled + j + 1);
    if (next >= s.prompt.size()) break;
    log_softmax(rows + j * V, V, logp.data());
    TokenOutput t;
    t.token = s.prompt[next];
    t.logprob = logp[t.token];
    if (s.params.top_logprobs > 0) t.top = top_values(logp.data(), V, s.params.top_logprobs);
    scored.push_back(std::move(t));
  }
  return scored;
}

}  // namespace

Engine::Engine(const Model& model, EngineOptions options)
    : model_(model), options_(options), prefix_cache_(options.prefix_cache_bytes) {
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
  SubmitResult r;
  if (prompt.empty()) return {SubmitStatus::Invalid, "the prompt is empty", nullptr};
  for (int32_t t : prompt)
    if (t < 0 || t >= model_.vocab_size())
      return {SubmitStatus::Invalid, str_f("token id %d is outside the vocabulary [0, %lld)", t,
                                           static_cast<long long>(model_.vocab_size())), nullptr};
  if (static_cast<int64_t>(prompt.size()) > model_.max_context())
    return {SubmitStatus::Invalid, str_f("the prompt has %zu tokens, more than the context limit of %lld",
                                         prompt.size(), static_cast<long long>(model_.max_context())), nullptr};
  if (params.max_new_tokens < 0) return {SubmitStatus::Invalid, "max_new_tokens must not be negative", nullptr};
  if (Status st = validate_sampling(params.sampling); !st.ok())
    return {SubmitStatus::Invalid, st.error().message(), nullptr};
  std::lock_guard<std::mutex> lock(mu_);
  if (!accepting_) return {SubmitStatus::ShuttingDown, "the server is shutting down", nullptr};
  if (static_cast<int>(queue_.size()) >= options_.max_queue)
    return {SubmitStatus::QueueFull, str_f("the request queue is full (%d waiting)", options_.max_queue), nullptr};
  auto handle = std::make_shared<RequestHandle>(next_id_++, static_cast<int64_t>(prompt.size()));
  queue_.push_back(std::make_unique<Sequence>(handle, std::move(params), std::move(prompt), model_.new_cache()));
  ++stats_.requests_submitted;
  stats_.queue_length = static_cast<int>(queue_.size());
  cv_.notify_all();
  r.handle = std::move(handle);
  return r;
}

void Engine::shutdown(std::chrono::milliseconds drain) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    accepting_ = false;
  }
  auto deadline = Clock::now() + drain;
  for (;;) {
    {
      std::lock_guard<std::mutex> lock(mu_);
      if (queue_.empty() && stats_.running == 0) break;
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

int Engine::admit_locked() {
  int admitted = 0;
  while (!queue_.empty() && static_cast<int>(running_.size()) < options_.max_batch) {
    auto s = std::move(queue_.front());
    queue_.pop_front();
    if (s->handle->cancelled()) {
      s->handle->finish(FinishReason::Stop, "cancelled");
      ++stats_.requests_cancelled;
      continue;
    }
    stats_.prompt_tokens += s->prompt.size();
    running_.push_back(std::move(s));
    ++admitted;
  }
  stats_.queue_length = static_cast<int>(queue_.size());
  stats_.running = static_cast<int>(running_.size());
  return admitted;
}

void Engine::restore_prefixes(int admitted) {
  if (!prefix_cache_.enabled()) return;
  uint64_t hits = 0, tokens = 0;
  for (size_t i = running_.size() - static_cast<size_t>(admitted); i < running_.size(); ++i) {
    Sequence& s = *running_[i];
    if (s.params.score_prompt) continue;  // every prompt position's logits are needed
    const int64_t n = prefix_cache_.restore(s.prompt, &s.cache);
    if (n == 0) continue;
    s.prefilled = n;
    s.handle->set_cached_tokens(n);
    ++hits;
    tokens += static_cast<uint64_t>(n);
  }
  std::lock_guard<std::mutex> lock(mu_);
  stats_.prefix_cache_hits += hits;
  stats_.prefix_cache_tokens += tokens;
}

void Engine::finish(Sequence& s, FinishReason reason, const std::string& error) {
  // The gauges first: a client that sees its response end and then reads /metrics must not
  // find its request still running, nor its cache still held. (The cache may have grown
  // since the gauge was last published at the end of a step, hence the clamp; the next
  // step's end publishes the exact sum again.)
  const uint64_t cache_bytes = s.cache.bytes();
  // A request that ended normally or was cancelled between steps leaves a consistent cache:
  // rows for its prompt and output so far. One that failed may not.
  if (prefix_cache_.enabled() && (error.empty() || error == "cancelled")) {
    std::vector<int32_t> tokens = s.prompt;
    tokens.insert(tokens.end(), s.output.begin(), s.output.end());
    prefix_cache_.offer(tokens, std::move(s.cache));
  }
  s.cache.release();
  {
    std::lock_guard<std::mutex> lock(mu_);
    --stats_.running;
    stats_.kv_cache_bytes -= std::min(stats_.kv_cache_bytes, cache_bytes);
    stats_.prefix_cache_bytes = prefix_cache_.bytes();
  }
  s.handle->finish(reason, error);
  s.done = true;
}

int Engine::drop_cancelled() {
  size_t kept = 0;
  int dropped = 0;
  for (auto& s : running_) {
    if (s->handle->cancelled()) {
      finish(*s, FinishReason::Stop, "cancelled");
      std::lock_guard<std::mutex> lock(mu_);
      ++stats_.requests_cancelled;
      ++dropped;
      continue;
    }
    running_[kept++] = std::move(s);
  }
  running_.resize(kept);
  return dropped;
}

void Engine::postprocess(const std::vector<StepEntry>& plan, const ForwardOutput& out) {
  const int64_t V = model_.vocab_size();
  // Every sequence's token is chosen first, on the thread pool (idle between forward
  // steps): a draw at temperature > 0 passes over the whole vocabulary (~1 ms at 129,280
  // ids when this was written; 0.2-0.5 ms since), which for 8 sequences on this thread
  // alone was ~10% of a decode step. Each sequence has its own sampler and generator, so
  // which thread draws changes nothing.
  struct Choice {
    Result<int32_t> token = -1;
    TokenOutput out;
    std::vector<TokenOutput> scored;  // prompt tokens of this chunk, for score_prompt
  };
  std::vector<Choice> choices(plan.size());
  model_.pool().parallel_for(static_cast<int64_t>(plan.size()), [&](int64_t i) {
    Sequence& s = *plan[i].seq;
    // Vocabulary-sized buffers kept per thread, as the loop on this thread used to keep them
    // across sequences (not a fresh 0.5 MB allocation per sequence and step).
    thread_local std::vector<float> processed, logp;
    if (out.first_row[i] < 0) return;  // a prefill chunk without logits
    const int64_t n_rows = plan[i].all_logits ? static_cast<int64_t>(plan[i].tokens.size()) : 1;
    const float* rows = out.logits.data() + out.first_row[i] * V;
    if (plan[i].all_logits) choices[i].scored = score_prompt_chunk(s, rows, n_rows, V, logp);
    if (!plan[i].wants_logits || s.params.max_new_tokens == 0) return;
    const float* row = rows + (n_rows - 1) * V;  // the last token's logits choose the next
    if (s.params.has_logit_processing()) {
      processed.assign(row, row + V);
      for (const auto& [id, bias] : s.params.logit_bias) processed[id] += bias;
      for (const auto& [id, count] : s.token_counts)
        processed[id] -= s.params.presence_penalty + s.params.frequency_penalty * static_cast<float>(count);
      row = processed.data();
    }
    Choice& c = choices[i];
    c.token = s.sampler.sample(row, V);
    if (!c.token.ok()) return;
    TokenOutput& t = c.out;
    t.token = *c.token;
    if (s.params.logprobs || s.params.top_logprobs > 0) {
      logp.resize(static_cast<size_t>(V));
      log_softmax(row, V, logp.data());
      t.logprob = logp[t.token];
      if (s.params.top_logprobs > 0) t.top = top_values(logp.data(), V, s.params.top_logprobs);
    }
  });
  uint64_t generated = 0;
  std::vector<std::pair<Sequence*, FinishReason>> ending;
  for (size_t i = 0; i < plan.size(); ++i) {
    Sequence& s = *plan[i].seq;
    if (!s.prefill_done()) s.prefilled += static_cast<int64_t>(plan[i].tokens.size());
    if (!choices[i].scored.empty()) s.handle->push_prompt(std::move(choices[i].scored));
    if (!plan[i].wants_logits) continue;
    if (s.params.max_new_tokens == 0) {  // prefill (and scoring) only: nothing to generate
      ending.emplace_back(&s, FinishReason::Length);
      continue;
    }
    Result<int32_t>& token = choices[i].token;
    if (!token.ok()) {
      DSV3_LOG_ERROR("request %llu: %s", static_cast<unsigned long long>(s.handle->id()), token.error().message().c_str());
      finish(s, FinishReason::Stop, token.error().message());
      std::lock_guard<std::mutex> lock(mu_);
      ++stats_.requests_failed;
      continue;
    }
    TokenOutput t = std::move(choices[i].out);
    s.last_token = t.token;
    s.output.push_back(t.token);
    ++s.generated;
    if (s.params.presence_penalty != 0.0f || s.params.frequency_penalty != 0.0f) ++s.token_counts[t.token];
    ++generated;
    s.handle->push(std::move(t));
    const auto& stops = s.params.stop_tokens;
    if (std::find(stops.begin(), stops.end(), s.last_token) != stops.end()) ending.emplace_back(&s, FinishReason::Stop);
    else if (s.generated >= s.params.max_new_tokens) ending.emplace_back(&s, FinishReason::Length);
    else if (s.cache.length() + 1 > model_.max_context()) ending.emplace_back(&s, FinishReason::Length);
  }
  {
    std::lock_guard<std::mutex> lock(mu_);
    stats_.generated_tokens += generated;
    ++stats_.steps;
    auto now = Clock::now();
    rate_window_.emplace_back(now, stats_.generated_tokens);
    while (rate_window_.size() > 2 && now - rate_window_.front().first > std::chrono::seconds(5)) rate_window_.pop_front();
  }
  // Finished requests are told so after the step's counters are published (see finish()).
  for (auto& [seq, reason] : ending) finish(*seq, reason);
}

void Engine::loop() {
  const SchedulerLimits limits{options_.max_step_tokens};
  for (;;) {
    int admitted = 0;
    {
      std::unique_lock<std::mutex> lock(mu_);
      cv_.wait(lock, [&] { return stop_ || !queue_.empty() || !running_.empty(); });
      if (stop_) {
        // mu_ is held here, so the handles are told directly (finish() would take mu_).
        stats_.running = 0;
        stats_.queue_length = 0;
        for (auto& s : running_) s->handle->finish(FinishReason::Length, "the server shut down before this request finished");
        for (auto& s : queue_) s->handle->finish(FinishReason::Length, "the server shut down before this request started");
        running_.clear();
        queue_.clear();
        return;
      }
      admitted = admit_locked();
    }
    restore_prefixes(admitted);
    const int dropped = drop_cancelled();
    std::vector<StepEntry> plan = plan_step(running_, limits);
    if (!plan.empty()) {
      std::vector<SequenceInput> inputs;
      for (const StepEntry& e : plan)
        inputs.push_back({&e.seq->cache, e.tokens,
                          e.all_logits ? Logits::All : e.wants_logits ? Logits::Last : Logits::None});
      ForwardOutput out;
      Status st = model_.forward(inputs, &out);
      if (!st.ok()) {
        // Inputs are validated at submission, so this is an engine failure: fail the step's
        // requests, keep serving the others.
        DSV3_LOG_ERROR("forward step failed: %s", st.error().message().c_str());
        for (const StepEntry& e : plan) finish(*e.seq, FinishReason::Stop, st.error().message());
      } else {
        postprocess(plan, out);
      }
    }
    // Finished sequences leave the batch.
    uint64_t finished = 0, kv = 0;
    size_t kept = 0;
    for (auto& s : running_) {
      if (s->done) {
        ++finished;
        continue;
      }
      kv += s->cache.bytes();
      running_[kept++] = std::move(s);
    }
    running_.resize(kept);
    bool idle;
    {
      std::lock_guard<std::mutex> lock(mu_);
      stats_.requests_finished += finished;
      stats_.running = static_cast<int>(running_.size());
      stats_.kv_cache_bytes = kv;
      idle = running_.empty() && queue_.empty();
    }
    // Idle: give freed caches and step buffers back to the system, so that the process
    // returns to its baseline memory between bursts of requests.
    if (idle && finished + dropped > 0) malloc_trim(0);
  }
}

}  // namespace dsv3
