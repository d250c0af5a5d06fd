#include "base/thread_pool.h"

#include <sched.h>

#if defined(__x86_64__)
#include <immintrin.h>
#endif

namespace dsv3 {
namespace {
thread_local bool t_inside_pool = false;

inline void cpu_relax() {
#if defined(__x86_64__)
  _mm_pause();
#endif
}

// Spin this many rounds waiting before sleeping: long enough to cover the gap between
// consecutive kernels of one decode step, short enough not to burn a core when idle. Every
// kYieldEvery rounds the spinner yields, so that on an oversubscribed machine (more runnable
// threads than cores, e.g. tests in parallel) a descheduled peer gets the core it waits for.
constexpr int kSpinRounds = 1 << 14;
constexpr int kYieldEvery = 256;

inline void spin_pause(int round) {
  if (round % kYieldEvery == kYieldEvery - 1) std::this_thread::yield();
  else cpu_relax();
}
}  // namespace

int ThreadPool::available_cores() {
  cpu_set_t set;
  CPU_ZERO(&set);
  if (sched_getaffinity(0, sizeof(set), &set) == 0) {
    int n = CPU_COUNT(&set);
    if (n > 0) return n;
  }
  unsigned hc = std::thread::hardware_concurrency();
  return hc > 0 ? static_cast<int>(hc) : 1;
}

ThreadPool::ThreadPool(int n_threads) {
  n_threads_ = n_threads > 0 ? n_threads : available_cores();
  for (int i = 1; i < n_threads_; ++i) workers_.emplace_back([this, i] { worker_loop(i); });
}

ThreadPool::~ThreadPool() {
  stop_.store(true);
  generation_.fetch_add(1);
  generation_.notify_all();
  for (auto& w : workers_) w.join();
}

void ThreadPool::run_job(int thread_index) {
  if (job_all_) {
    (*job_all_)(thread_index);
    return;
  }
  for (;;) {
    int64_t t = next_task_.fetch_add(1, std::memory_order_relaxed);
    if (t >= job_tasks_) break;
    (*job_fn_)(t);
  }
}

void ThreadPool::worker_loop(int index) {
  t_inside_pool = true;
  uint64_t seen = 0;
  for (;;) {
    uint64_t g = generation_.load(std::memory_order_acquire);
    for (int spin = 0; g == seen && spin < kSpinRounds; ++spin) {
      spin_pause(spin);
      g = generation_.load(std::memory_order_acquire);
    }
    while (g == seen) {
      generation_.wait(seen, std::memory_order_acquire);
      g = generation_.load(std::memory_order_acquire);
    }
    seen = g;
    if (stop_.load()) return;
    run_job(index);
    if (pending_workers_.fetch_sub(1, std::memory_order_acq_rel) == 1) pending_workers_.notify_all();
  }
}

void ThreadPool::wait_for_workers() {
  int spin = 0;
  for (int left = pending_workers_.load(std::memory_order_acquire); left != 0;
       left = pending_workers_.load(std::memory_order_acquire)) {
    if (spin < kSpinRounds) spin_pause(spin++);
    else pending_workers_.wait(left, std::memory_order_acquire);
  }
}

void ThreadPool::parallel_for(int64_t n_tasks, FunctionRef<void(int64_t)> fn) {
  if (n_tasks <= 0) return;
  if (n_threads_ == 1 || n_tasks == 1 || t_inside_pool) {
    for (int64_t t = 0; t < n_tasks; ++t) fn(t);
    return;
  }
  std::lock_guard<std::mutex> lock(call_mu_);
  job_fn_ = &fn;
  job_all_ = nullptr;
  job_tasks_ = n_tasks;
  next_task_.store(0, std::memory_order_relaxed);
  pending_workers_.store(n_threads_ - 1, std::memory_order_relaxed);
  generation_.fetch_add(1, std::memory_order_release);
  generation_.notify_all();
  t_inside_pool = true;
  run_job(0);
  t_inside_pool = false;
  wait_for_workers();
}

void ThreadPool::run_on_all(FunctionRef<void(int)> fn) {
  if (n_threads_ == 1 || t_inside_pool) {
    for (int i = 0; i < n_threads_; ++i) fn(i);
    return;
  }
  std::lock_guard<std::mutex> lock(call_mu_);
  job_fn_ = nullptr;
  job_all_ = &fn;
  pending_workers_.store(n_threads_ - 1, std::memory_order_relaxed);
  generation_.fetch_add(1, std::memory_order_release);
  generation_.notify_all();
  t_inside_pool = true;
  fn(0);
  t_inside_pool = false;
  wait_for_workers();
}

}  // namespace dsv3
