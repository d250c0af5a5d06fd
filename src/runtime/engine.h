#pragma once
// The engine: one thread runs the model over a continuously changing batch, for every
// command (chat, generate, serve). Requests join at any step (queued first come, first served
// when the batch is full) and leave as soon as they finish or are cancelled (their cache
// freed within a step). One step is
//
//   schedule (Scheduler) -> forward (Model) -> sample (step_sampling) -> postprocess (Scheduler)
//
// and then delivery: tokens to the clients' handles, counters, finished requests told so.
// The engine owns what is not bookkeeping: the thread, the lock between submitters and the
// step, and the statistics. Submission, cancellation and stats are thread-safe.

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "model/model.h"
#include "runtime/draft_policy.h"
#include "runtime/request.h"
#include "runtime/scheduler.h"

namespace dsv3 {

struct EngineOptions {
  int max_batch = 16;              // sequences running at once
  int64_t max_step_tokens = 256;   // tokens per forward step (prefill chunks fill what decode leaves)
  int max_queue = 64;              // requests waiting beyond a full batch before submit() refuses
  uint64_t prefix_cache_bytes = 0; // finished requests' caches kept for later prompts (0: off)
  // Speculative decoding with the MTP module (a model loaded with it): tokens drafted per
  // step and sequence (0: off), and whether a DraftPolicy decides step by step from measured
  // costs and acceptance (else every step drafts).
  int draft_tokens = 0;
  bool draft_policy_adaptive = true;
};

struct EngineStats {
  uint64_t requests_submitted = 0;
  uint64_t requests_finished = 0;   // ended by a stop token, the token budget or the context
  uint64_t requests_cancelled = 0, requests_failed = 0;
  uint64_t prompt_tokens = 0, generated_tokens = 0, steps = 0;
  int queue_length = 0, running = 0;
  double generated_tokens_per_second = 0;  // over the last few seconds
  uint64_t kv_cache_bytes = 0;
  uint64_t prefix_cache_bytes = 0, prefix_cache_hits = 0, prefix_cache_tokens = 0;  // tokens: reused rows
  uint64_t draft_tokens = 0, draft_tokens_accepted = 0;  // speculative decoding: proposed, kept
};

enum class SubmitStatus { Ok, QueueFull, ShuttingDown, Invalid };

struct SubmitResult {
  SubmitStatus status = SubmitStatus::Ok;
  std::string message;
  std::shared_ptr<RequestHandle> handle;
  RequestField field = RequestField::Prompt;  // Invalid: the part of the request at fault
  size_t index = 0;                           // submit_all, Invalid: the request at fault
};

struct Submission {
  std::vector<int32_t> prompt;
  RequestParams params;
};

class Engine {
 public:
  Engine(const Model& model, EngineOptions options);
  ~Engine();
  Engine(const Engine&) = delete;
  Engine& operator=(const Engine&) = delete;

  // Validates (validate_request) and queues a request. The engine holds at most max_batch +
  // max_queue requests, running and waiting together; past that, QueueFull.
  SubmitResult submit(std::vector<int32_t> prompt, RequestParams params);
  // Validates and queues all of `requests` or none of them: a group that does not fit is
  // refused whole, so that no part of a refused group holds a place in the queue. On Ok,
  // (*handles)[i] is request i's handle.
  SubmitResult submit_all(std::vector<Submission> requests, std::vector<std::shared_ptr<RequestHandle>>* handles);
  // Stops accepting requests, lets running and queued ones finish for up to `drain`, then
  // fails the rest and stops the engine thread.
  void shutdown(std::chrono::milliseconds drain);
  bool accepting() const;
  EngineStats stats() const;
  const Model& model() const { return model_; }
  const EngineOptions& options() const { return options_; }

 private:
  void loop();
  void step();
  // The plan's sequences stop drafting (their MTP rows fall behind).
  static void stop_drafting(const StepPlan& plan);
  // Tells the clients of finished sequences, after the counters that count them are published.
  void deliver_finished();

  const Model& model_;
  const EngineOptions options_;
  Scheduler scheduler_;  // engine thread only
  DraftPolicy policy_;   // engine thread only

  mutable std::mutex mu_;
  std::condition_variable cv_;
  // Guarded by mu_: requests submitted since the engine thread last took them.
  std::deque<std::unique_ptr<Sequence>> inbox_;
  int waiting_ = 0;       // requests queued in the inbox or the scheduler, for max_queue
  bool accepting_ = true;
  bool stop_ = false;
  uint64_t next_id_ = 1;
  EngineStats stats_;
  std::deque<std::pair<std::chrono::steady_clock::time_point, uint64_t>> rate_window_;
  std::thread thread_;
};

}  // namespace dsv3
