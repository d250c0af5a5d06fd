#include "tools/progress.h"

#include <algorithm>
#include <chrono>

#include "base/result.h"

namespace dsv3 {
namespace {

double now_seconds() {
  return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

constexpr double kTtyInterval = 0.2;     // redraw period of the bar
constexpr double kLineInterval = 30.0;   // longest silence in plain mode
constexpr int kBarWidth = 24;

}  // namespace

std::string format_bytes(uint64_t bytes) {
  static const char* units[] = {"B", "kB", "MB", "GB", "TB", "PB"};
  double v = static_cast<double>(bytes);
  int u = 0;
  while (v >= 1000.0 && u < 5) {
    v /= 1000.0;
    ++u;
  }
  if (u == 0) return str_f("%llu B", static_cast<unsigned long long>(bytes));
  return str_f(v >= 100 ? "%.0f %s" : v >= 10 ? "%.1f %s" : "%.2f %s", v, units[u]);
}

namespace {

// unit empty: bytes (format_bytes); else plain counts followed by the unit.
std::string progress_text(uint64_t done, uint64_t total, double elapsed, const std::string& unit) {
  auto amount = [&](uint64_t v) {
    return unit.empty() ? format_bytes(v) : str_f("%llu", static_cast<unsigned long long>(v));
  };
  const double frac = total > 0 ? std::min(1.0, static_cast<double>(done) / static_cast<double>(total)) : 1.0;
  std::string s = amount(done) + " / " + amount(total) + (unit.empty() ? "" : " " + unit) + str_f("  %3.0f%%", frac * 100.0);
  if (elapsed > 0.05 && done > 0) {
    const double rate = static_cast<double>(done) / elapsed;
    s += "  " + (unit.empty() ? format_bytes(static_cast<uint64_t>(rate)) + "/s" : str_f("%.0f %s/s", rate, unit.c_str()));
    if (done < total) {
      const uint64_t eta = static_cast<uint64_t>(static_cast<double>(total - done) / rate + 0.5);
      s += eta >= 3600 ? str_f("  ETA %llu:%02llu:%02llu", static_cast<unsigned long long>(eta / 3600),
                               static_cast<unsigned long long>(eta / 60 % 60), static_cast<unsigned long long>(eta % 60))
                       : str_f("  ETA %llu:%02llu", static_cast<unsigned long long>(eta / 60),
                               static_cast<unsigned long long>(eta % 60));
    }
  }
  return s;
}

}  // namespace

std::string format_progress(uint64_t done, uint64_t total, double elapsed) {
  return progress_text(done, total, elapsed, "");
}

std::string format_count_progress(uint64_t done, uint64_t total, double elapsed, const std::string& unit) {
  return progress_text(done, total, elapsed, unit);
}

ProgressReporter::ProgressReporter(std::string label, uint64_t total_bytes, bool tty, FILE* out)
    : label_(std::move(label)), total_(total_bytes), tty_(tty), out_(out), started_(now_seconds()) {
  last_line_ = started_;
  ticker_ = std::thread([this] { tick_loop(); });
}

ProgressReporter::~ProgressReporter() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stop_ = true;
  }
  cv_.notify_all();
  if (ticker_.joinable()) ticker_.join();
  // A bar left without its final newline would glue the next message onto it.
  if (tty_ && !finished_) std::fputc('\n', out_);
}

void ProgressReporter::finish() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (finished_) return;
    stop_ = true;
  }
  cv_.notify_all();
  if (ticker_.joinable()) ticker_.join();
  print(true);
  finished_ = true;
}

void ProgressReporter::tick_loop() {
  std::unique_lock<std::mutex> lock(mu_);
  while (!stop_) {
    cv_.wait_for(lock, std::chrono::duration<double>(kTtyInterval));
    if (stop_) break;
    print(false);
  }
}

void ProgressReporter::print(bool final) {
  const double now = now_seconds();
  const uint64_t done = done_.load(std::memory_order_relaxed);
  const std::string text = progress_text(done, total_, now - started_, unit_);
  if (tty_) {
    const double frac = total_ > 0 ? std::min(1.0, static_cast<double>(done) / static_cast<double>(total_)) : 1.0;
    const int filled = static_cast<int>(frac * kBarWidth);
    std::string bar(static_cast<size_t>(filled), '#');
    bar.append(static_cast<size_t>(kBarWidth - filled), '.');
    // \033[K clears what a longer previous line left behind.
    std::fprintf(out_, "\r%s [%s] %s\033[K%s", label_.c_str(), bar.c_str(), text.c_str(), final ? "\n" : "");
    std::fflush(out_);
    return;
  }
  const int decile = total_ > 0 ? static_cast<int>(10.0 * static_cast<double>(done) / static_cast<double>(total_)) : 10;
  if ((final && done != last_printed_) || decile > last_decile_ || now - last_line_ >= kLineInterval) {
    last_printed_ = done;
    std::fprintf(out_, "%s: %s\n", label_.c_str(), text.c_str());
    std::fflush(out_);
    last_decile_ = decile;
    last_line_ = now;
  }
}

}  // namespace dsv3
