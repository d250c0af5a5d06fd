#pragma once
// A fixed pool of worker threads for the kernels. Decode runs hundreds of small parallel
// regions per token, so workers spin briefly before sleeping and the calling thread takes
// part in the work: a region costs microseconds, not a condition-variable round trip.
//
// A parallel_for ends as soon as all of its tasks are done, whoever ran them: a worker that
// was descheduled (more runnable threads than cores, e.g. tests running in parallel) never
// holds the caller up; the caller simply runs the remaining tasks itself.
//
// Results never depend on which thread ran a task: kernels split work so that each output
// element is computed by exactly one task in a fixed order.

#include <atomic>
#include <cstdint>
#include <mutex>
#include <thread>
#include <type_traits>
#include <vector>

namespace dsv3 {

// Non-owning reference to a callable (no allocation, unlike std::function).
template <typename Sig>
class FunctionRef;
template <typename R, typename... Args>
class FunctionRef<R(Args...)> {
 public:
  template <typename F, typename = std::enable_if_t<!std::is_same_v<std::decay_t<F>, FunctionRef>>>
  FunctionRef(F&& f)  // NOLINT: implicit by design
      : obj_(const_cast<void*>(static_cast<const void*>(&f))),
        call_([](void* o, Args... a) -> R { return (*static_cast<std::remove_reference_t<F>*>(o))(a...); }) {}
  R operator()(Args... a) const { return call_(obj_, a...); }

 private:
  void* obj_;
  R (*call_)(void*, Args...);
};

class ThreadPool {
 public:
  // n_threads counts the calling thread; 0 means one per available core.
  explicit ThreadPool(int n_threads = 0);
  ~ThreadPool();
  ThreadPool(const ThreadPool&) = delete;
  ThreadPool& operator=(const ThreadPool&) = delete;

  int size() const { return n_threads_; }

  // Runs fn(task) for every task in [0, n_tasks), tasks handed out dynamically; returns when
  // all are done. Called from inside a task, it runs the tasks serially on that thread.
  // At most 2^24 - 1 tasks per call.
  void parallel_for(int64_t n_tasks, FunctionRef<void(int64_t)> fn);

  // The same, for tasks whose neighbours in index are neighbours in memory (the row chunks
  // of a matrix): thread i starts on the i-th contiguous share of the tasks and runs it in
  // order; a thread whose share is done takes tasks from the far end of the others'. So each
  // thread streams one region front to back, and the hardware prefetchers keep up. Chunks
  // handed out alternately made every chunk a cold start: kernel_bench's one-token int4
  // expert product (1408 x 2048, 16 chunks, 2 threads, Zen 5) read 27-30 GB/s that way and
  // 35-38 GB/s in contiguous shares.
  void parallel_for_ranges(int64_t n_tasks, FunctionRef<void(int64_t)> fn);

  // Runs fn(thread_index) once on each of the size() threads (waits for every thread).
  void run_on_all(FunctionRef<void(int)> fn);

  // Cores this process may run on (sched_getaffinity), at least 1.
  static int available_cores();

 private:
  void worker_loop(int index);
  // Claims and runs tasks of the current parallel_for (either kind) until none is left;
  // index is the thread's (0 for the caller).
  void run_claimed_tasks(int index);
  void run_task(uint64_t count, int64_t task);
  void run(int64_t n_tasks, FunctionRef<void(int64_t)> fn, bool ranges);
  void wake_workers();

  int n_threads_;
  std::vector<std::thread> workers_;
  std::mutex call_mu_;  // one parallel region at a time

  // The current parallel_for, packed in one word so that a claim is one compare-and-swap
  // that also checks the job: bits 63..48 job id, 47..24 task count, 23..0 next task.
  std::atomic<uint64_t> claim_{0};
  std::atomic<uint32_t> done_{0};  // tasks of the current job finished (futex word)
  FunctionRef<void(int64_t)>* job_fn_ = nullptr;
  // parallel_for_ranges: thread i's share, one word per thread (on its own cache line):
  // bits 63..48 job id, 47..24 its next task (the owner takes it), 23..0 one past its last
  // (others take the one before). claim_ then holds next = count: no shared tasks.
  struct alignas(64) RangeWord {
    std::atomic<uint64_t> word{0};
  };
  std::vector<RangeWord> ranges_;
  uint64_t job_id_ = 0;

  // run_on_all: every worker runs job_all_ when it sees generation all_generation_.
  FunctionRef<void(int)>* job_all_ = nullptr;
  std::atomic<uint32_t> all_generation_{0};
  std::atomic<uint32_t> pending_workers_{0};  // futex word

  std::atomic<uint32_t> generation_{0};  // bumped to wake workers (futex word)
  std::atomic<int> sleeping_workers_{0};  // workers blocked in a futex wait on generation_
  std::atomic<int> caller_sleeping_{0};   // the caller blocked on done_ / pending_workers_
  std::atomic<bool> stop_{false};
};

}  // namespace dsv3
