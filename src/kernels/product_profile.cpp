#include "kernels/product_profile.h"

#include <chrono>
#include <mutex>

namespace dsv3::kernels {
namespace {

std::atomic<bool> g_on{false};
std::mutex g_mu;
std::vector<ProductPartStats> g_parts;  // under g_mu
thread_local const char* t_part = nullptr;

int64_t now_ns() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

}  // namespace

ProductPart::ProductPart(const char* name) : outer_(t_part) { t_part = name; }
ProductPart::~ProductPart() { t_part = outer_; }

void product_profile_start() {
  std::lock_guard<std::mutex> lock(g_mu);
  g_parts.clear();
  g_on.store(true, std::memory_order_relaxed);
}

void product_profile_stop() { g_on.store(false, std::memory_order_relaxed); }

bool product_profile_on() { return g_on.load(std::memory_order_relaxed); }

std::vector<ProductPartStats> product_profile_parts() {
  std::lock_guard<std::mutex> lock(g_mu);
  return g_parts;
}

ProductRegion::ProductRegion(int64_t weight_bytes, int threads)
    : on_(product_profile_on()), threads_(threads), weight_bytes_(weight_bytes), part_(t_part) {
  if (on_) start_ns_ = now_ns();
}

ProductRegion::~ProductRegion() {
  if (!on_) return;
  const double seconds = static_cast<double>(now_ns() - start_ns_) * 1e-9;
  const char* name = part_ ? part_ : "other";
  std::lock_guard<std::mutex> lock(g_mu);
  ProductPartStats* s = nullptr;
  for (ProductPartStats& p : g_parts)
    if (p.part == name) s = &p;
  if (!s) {
    s = &g_parts.emplace_back();
    s->part = name;
  }
  s->regions += 1;
  s->weight_bytes += weight_bytes_;
  s->seconds += seconds;
  s->busy_seconds += static_cast<double>(busy_ns_.load()) * 1e-9;
  s->threads = threads_;
}

void ProductRegion::add_busy(int64_t ns) { busy_ns_.fetch_add(ns, std::memory_order_relaxed); }

ProductRegion::Task::Task(ProductRegion& region) : region_(region) {
  if (region_.on()) start_ns_ = now_ns();
}

ProductRegion::Task::~Task() {
  if (region_.on()) region_.add_busy(now_ns() - start_ns_);
}

}  // namespace dsv3::kernels
