#pragma once
// Progress of a long job counted in bytes (convert, inspect --verify). On a terminal a bar is
// redrawn in place a few times a second; otherwise (a log, CI) a plain line is printed every
// 10% or every 30 seconds, whichever comes first, so logs stay short. Workers report with
// add(), which is a relaxed atomic add: cheap enough to call per chunk from any thread.

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <cstdio>
#include <mutex>
#include <string>
#include <thread>

namespace dsv3 {

// "1.23 GB / 4.56 GB  27%  812 MB/s  ETA 0:04" (the ETA is omitted until the rate is known).
std::string format_progress(uint64_t done, uint64_t total, double elapsed_seconds);
// The same for a count of things ("1200 / 10240 tokens  12%  85 tokens/s  ETA 1:44").
std::string format_count_progress(uint64_t done, uint64_t total, double elapsed_seconds, const std::string& unit);
// Human-readable byte count with SI units (B, kB, MB, GB, TB), 3 significant digits.
std::string format_bytes(uint64_t bytes);

class ProgressReporter {
 public:
  // `label` prefixes every line ("convert"); `tty` selects the redrawn bar.
  ProgressReporter(std::string label, uint64_t total_bytes, bool tty, FILE* out = stderr);
  // Counts `unit`s ("tokens") instead of bytes.
  void count_in(std::string unit) { unit_ = std::move(unit); }
  ~ProgressReporter();  // stops the ticker (without a final line unless finish() was called)
  ProgressReporter(const ProgressReporter&) = delete;
  ProgressReporter& operator=(const ProgressReporter&) = delete;

  void add(uint64_t bytes) { done_.fetch_add(bytes, std::memory_order_relaxed); }
  void set(uint64_t done_bytes) { done_.store(done_bytes, std::memory_order_relaxed); }
  // Prints the final state (100% when all bytes were reported) and stops the ticker.
  void finish();

 private:
  void tick_loop();
  void print(bool final);

  std::string label_;
  std::string unit_;  // empty: bytes
  uint64_t total_;
  bool tty_;
  FILE* out_;
  std::atomic<uint64_t> done_{0};
  double started_;
  int last_decile_ = 0;
  double last_line_ = 0;
  uint64_t last_printed_ = UINT64_MAX;  // plain mode: done bytes of the last line
  std::mutex mu_;
  std::condition_variable cv_;
  bool stop_ = false;
  bool finished_ = false;
  std::thread ticker_;
};

}  // namespace dsv3
