#pragma once
// Where a step's time goes, product by product: an optional account of the weight products'
// wall time and weight bytes, by the part of the model that asked for them (`dsv3 bench
// --profile`). Decode reads every weight once per token, so each part's bytes over its time
// is its read rate, to set next to the machine's bandwidth: the account shows which parts read
// slower than the rest, and how much of the step is not products at all.
//
// Off unless enabled: then each product costs one relaxed load. On, a parallel region is
// timed on the calling thread (its wall time) and each of its tasks on the thread that runs
// it (the threads' busy time: busy / (wall * threads) below 1 is time the threads waited).
// Products on the opt-in AMX path (amx.h) are not accounted.

#include <atomic>
#include <cstdint>
#include <string>
#include <vector>

namespace dsv3::kernels {

// Names the part of the model whose products follow on this thread, until it goes out of
// scope (parts nest: the innermost names them). The name must outlive the profile (a string
// literal). Products outside any part count as "other".
class ProductPart {
 public:
  explicit ProductPart(const char* name);
  ~ProductPart();
  ProductPart(const ProductPart&) = delete;
  ProductPart& operator=(const ProductPart&) = delete;

 private:
  const char* outer_;
};

struct ProductPartStats {
  std::string part;
  int64_t regions = 0;       // parallel regions (a batch of products is one)
  int64_t weight_bytes = 0;  // the products' weight bytes, summed over regions
  double seconds = 0;        // wall time of the regions, on the calling thread
  double busy_seconds = 0;   // the tasks' time, summed over the threads that ran them
  int threads = 1;           // the pool's threads (for busy / (seconds * threads))
};

// Starts (or stops) accounting; starting clears what was accounted before.
void product_profile_start();
void product_profile_stop();
bool product_profile_on();
// The parts accounted since the start, in the order they first ran.
std::vector<ProductPartStats> product_profile_parts();

// One parallel region of products, timed while it lives (ops.cpp wraps each in one).
class ProductRegion {
 public:
  ProductRegion(int64_t weight_bytes, int threads);
  ~ProductRegion();
  ProductRegion(const ProductRegion&) = delete;
  ProductRegion& operator=(const ProductRegion&) = delete;
  bool on() const { return on_; }
  void add_busy(int64_t ns);  // thread-safe: tasks of the region, from any thread

  // Times one task of the region (on the thread that runs it), when the region is timed.
  class Task {
   public:
    explicit Task(ProductRegion& region);
    ~Task();
    Task(const Task&) = delete;
    Task& operator=(const Task&) = delete;

   private:
    ProductRegion& region_;
    int64_t start_ns_ = 0;
  };

 private:
  bool on_ = false;
  int threads_ = 1;
  int64_t weight_bytes_ = 0, start_ns_ = 0;
  const char* part_ = nullptr;
  std::atomic<int64_t> busy_ns_{0};
};

}  // namespace dsv3::kernels
