#include "base/thread_pool.h"

#include <linux/futex.h>
#include <sched.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "base/result.h"

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
// kYieldEvery rounds the spinner yields, so that on an oversubscribed machine a descheduled
// peer gets the core.
constexpr int kSpinRounds = 1 << 14;
constexpr int kYieldEvery = 256;

inline void spin_pause(int round) {
  if (round % kYieldEvery == kYieldEvery - 1) std::this_thread::yield();
  else cpu_relax();
}

// Sleeping and waking on a 32-bit word (Linux futex): FUTEX_WAIT returns at once if the word
// no longer holds `expected`, so a wake between the check and the wait is never lost.
void futex_wait(std::atomic<uint32_t>& word, uint32_t expected) {
  syscall(SYS_futex, reinterpret_cast<uint32_t*>(&word), FUTEX_WAIT_PRIVATE, expected, nullptr, nullptr, 0);
}
void futex_wake_all(std::atomic<uint32_t>& word) {
  syscall(SYS_futex, reinterpret_cast<uint32_t*>(&word), FUTEX_WAKE_PRIVATE, INT32_MAX, nullptr, nullptr, 0);
}

// Waits until word != value: spins (yielding now and then), then sleeps. `sleeping` counts
// sleepers so that wakers make the system call only when someone sleeps.
void wait_while_equal(std::atomic<uint32_t>& word, uint32_t value, std::atomic<int>& sleeping) {
  for (int spin = 0; spin < kSpinRounds; ++spin) {
    if (word.load(std::memory_order_acquire) != value) return;
    spin_pause(spin);
  }
  while (word.load(std::memory_order_acquire) == value) {
    sleeping.fetch_add(1, std::memory_order_seq_cst);
    if (word.load(std::memory_order_seq_cst) == value) futex_wait(word, value);
    sleeping.fetch_sub(1, std::memory_order_seq_cst);
  }
}

void wake_if_sleeping(std::atomic<uint32_t>& word, std::atomic<int>& sleeping) {
  if (sleeping.load(std::memory_order_seq_cst) > 0) futex_wake_all(word);
}

constexpr uint64_t kIndexBits = 24;
constexpr uint64_t kIndexMask = (uint64_t(1) << kIndexBits) - 1;
inline uint64_t pack(uint64_t job, uint64_t count, uint64_t next) {
  return ((job & 0xFFFF) << 48) | (count << kIndexBits) | next;
}
inline uint64_t count_of(uint64_t c) { return (c >> kIndexBits) & kIndexMask; }
inline uint64_t next_of(uint64_t c) { return c & kIndexMask; }
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

ThreadPool::ThreadPool(int n_threads) : ranges_(static_cast<size_t>(n_threads > 0 ? n_threads : available_cores())) {
  n_threads_ = static_cast<int>(ranges_.size());
  for (int i = 1; i < n_threads_; ++i) workers_.emplace_back([this, i] { worker_loop(i); });
}

ThreadPool::~ThreadPool() {
  stop_.store(true);
  wake_workers();
  for (auto& w : workers_) w.join();
}

void ThreadPool::wake_workers() {
  generation_.fetch_add(1, std::memory_order_seq_cst);
  wake_if_sleeping(generation_, sleeping_workers_);
}

void ThreadPool::run_task(uint64_t count, int64_t task) {
  (*job_fn_)(task);
  if (done_.fetch_add(1, std::memory_order_seq_cst) + 1 == count) wake_if_sleeping(done_, caller_sleeping_);
}

void ThreadPool::run_claimed_tasks(int index) {
  uint64_t c = claim_.load(std::memory_order_acquire);
  for (;;) {
    const uint64_t count = count_of(c), next = next_of(c);
    if (next >= count) break;
    // Claiming (job, next) succeeds only while that job is current; its function and task
    // count stay valid until all its tasks, this one included, are done.
    if (!claim_.compare_exchange_weak(c, c + 1, std::memory_order_acq_rel, std::memory_order_acquire)) continue;
    run_task(count, static_cast<int64_t>(next));
    c = claim_.load(std::memory_order_acquire);
  }
  // parallel_for_ranges (the job last seen, none of its tasks shared): this thread's share
  // from the front, then the others' from the back. Words of another job never match, so a
  // late thread claims nothing of a newer one.
  const uint64_t job = c >> 48, count = count_of(c);
  for (int k = 0; k < n_threads_; ++k) {
    const bool own = k == 0;
    std::atomic<uint64_t>& range = ranges_[static_cast<size_t>((index + k) % n_threads_)].word;
    uint64_t r = range.load(std::memory_order_acquire);
    for (;;) {
      const uint64_t front = (r >> kIndexBits) & kIndexMask, back = r & kIndexMask;
      if ((r >> 48) != job || front >= back) break;
      const uint64_t claimed = own ? r + (uint64_t(1) << kIndexBits) : r - 1;
      if (!range.compare_exchange_weak(r, claimed, std::memory_order_acq_rel, std::memory_order_acquire)) continue;
      run_task(count, static_cast<int64_t>(own ? front : back - 1));
      r = range.load(std::memory_order_acquire);
    }
  }
}

void ThreadPool::worker_loop(int index) {
  t_inside_pool = true;
  uint32_t seen = 0;
  for (;;) {
    wait_while_equal(generation_, seen, sleeping_workers_);
    const uint32_t g = generation_.load(std::memory_order_acquire);
    seen = g;
    if (stop_.load()) return;
    if (all_generation_.load(std::memory_order_acquire) == g) {
      // run_on_all publishes nothing else until every worker has run it.
      (*job_all_)(index);
      if (pending_workers_.fetch_sub(1, std::memory_order_seq_cst) == 1) wake_if_sleeping(pending_workers_, caller_sleeping_);
      continue;
    }
    run_claimed_tasks(index);
  }
}

void ThreadPool::parallel_for(int64_t n_tasks, FunctionRef<void(int64_t)> fn) { run(n_tasks, fn, false); }

void ThreadPool::parallel_for_ranges(int64_t n_tasks, FunctionRef<void(int64_t)> fn) { run(n_tasks, fn, true); }

void ThreadPool::run(int64_t n_tasks, FunctionRef<void(int64_t)> fn, bool ranges) {
  if (n_tasks <= 0) return;
  if (n_threads_ == 1 || n_tasks == 1 || t_inside_pool) {
    for (int64_t t = 0; t < n_tasks; ++t) fn(t);
    return;
  }
  DSV3_CHECK(static_cast<uint64_t>(n_tasks) <= kIndexMask, "parallel_for: %lld tasks", static_cast<long long>(n_tasks));
  std::lock_guard<std::mutex> lock(call_mu_);
  job_fn_ = &fn;
  done_.store(0, std::memory_order_relaxed);
  const uint64_t job = ++job_id_ & 0xFFFF, n = static_cast<uint64_t>(n_tasks);
  if (ranges) {
    // Thread i's share: tasks [i * n / P, (i + 1) * n / P). Published by claim_'s release.
    const uint64_t p = static_cast<uint64_t>(n_threads_);
    for (uint64_t i = 0; i < p; ++i)
      ranges_[i].word.store((job << 48) | ((i * n / p) << kIndexBits) | ((i + 1) * n / p), std::memory_order_relaxed);
  }
  claim_.store(pack(job, n, ranges ? n : 0), std::memory_order_release);
  wake_workers();
  t_inside_pool = true;
  run_claimed_tasks(0);
  t_inside_pool = false;
  for (uint32_t d = done_.load(std::memory_order_acquire); d != static_cast<uint32_t>(n_tasks);
       d = done_.load(std::memory_order_acquire))
    wait_while_equal(done_, d, caller_sleeping_);
}

void ThreadPool::run_on_all(FunctionRef<void(int)> fn) {
  if (n_threads_ == 1 || t_inside_pool) {
    for (int i = 0; i < n_threads_; ++i) fn(i);
    return;
  }
  std::lock_guard<std::mutex> lock(call_mu_);
  job_all_ = &fn;
  pending_workers_.store(static_cast<uint32_t>(n_threads_ - 1), std::memory_order_relaxed);
  all_generation_.store(generation_.load() + 1, std::memory_order_release);
  wake_workers();
  t_inside_pool = true;
  fn(0);
  t_inside_pool = false;
  for (uint32_t left = pending_workers_.load(std::memory_order_acquire); left != 0;
       left = pending_workers_.load(std::memory_order_acquire))
    wait_while_equal(pending_workers_, left, caller_sleeping_);
}

}  // namespace dsv3
