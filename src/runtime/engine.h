#pragma once
// The serving engine: one thread runs the model over a continuously changing batch.
// Requests join at any step (queued FIFO when the batch is full), leave as soon as they
// finish or are cancelled (their cache freed within a step), and each step is
//   plan_step (scheduler) -> Model::forward -> sample and deliver (postprocess).
// Submission, cancellation and stats are thread-safe.

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
#include "runtime/prefix_cache.h"
#include "runtime/request.h"
#include "runtime/scheduler.h"

namespace dsv3 {

struct EngineOptions {
  int max_batch = 16;              // sequences running at once
  int64_t max_step_tokens = 256;   // tokens per forward step (prefill chunks fill what decode leaves)
  int max_queue = 64;              // requests waiting for a slot before submit() refuses
  uint64_t prefix_cache_bytes = 0; // finished requests' caches kept for later prompts (0: off)
};

struct EngineStats {
  uint64_t requests_submitted = 0, requests_finished = 0, requests_cancelled = 0, requests_failed = 0;
  uint64_t prompt_tokens = 0, generated_tokens = 0, steps = 0;
  int queue_length = 0, running = 0;
  double generated_tokens_per_second = 0;  // over the last few seconds
  uint64_t kv_cache_bytes = 0;
  uint64_t prefix_cache_bytes = 0, prefix_cache_hits = 0, prefix_cache_tokens = 0;  // tokens: reused rows
};

enum class SubmitStatus { Ok, QueueFull, ShuttingDown, Invalid };

struct SubmitResult {
  SubmitStatus status = SubmitStatus::Ok;
  std::string message;
  std::shared_ptr<RequestHandle> handle;
};

class Engine {
 public:
  Engine(const Model& model, EngineOptions options);
  ~Engine();
  Engine(const Engine&) = delete;
  Engine& operator=(const Engine&) = delete;

  // Validates and queues a request (ids in the vocabulary, prompt within the context).
  SubmitResult submit(std::vector<int32_t> prompt, RequestParams params);
  // Stops accepting requests, lets running and queued ones finish for up to `drain`, then
  // ends the rest (finish reason "length") and stops the engine thread.
  void shutdown(std::chrono::milliseconds drain);
  bool accepting() const;
  EngineStats stats() const;
  const Model& model() const { return model_; }

 private:
  void loop();
  int admit_locked();  // returns how many joined (at the end of running_)
  void restore_prefixes(int admitted);
  int drop_cancelled();  // returns how many left
  void postprocess(const std::vector<StepEntry>& plan, const ForwardOutput& out);
  void finish(Sequence& s, FinishReason reason, const std::string& error = "");

  const Model& model_;
  const EngineOptions options_;
  mutable std::mutex mu_;
  std::condition_variable cv_;
  std::deque<std::unique_ptr<Sequence>> queue_;    // guarded by mu_
  std::vector<std::unique_ptr<Sequence>> running_;  // engine thread only
  PrefixCache prefix_cache_;                        // engine thread only
  bool accepting_ = true;                           // guarded by mu_
  bool stop_ = false;                               // guarded by mu_
  uint64_t next_id_ = 1;                            // guarded by mu_
  EngineStats stats_;                               // guarded by mu_
  std::deque<std::pair<std::chrono::steady_clock::time_point, uint64_t>> rate_window_;  // guarded by mu_
  std::thread thread_;
};

}  // namespace dsv3
