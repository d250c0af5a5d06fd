#pragma once
// inspect --verify: every stored value of every float tensor checked for NaN and Inf (FP8
// e4m3 has no Inf: bytes 0x7F/0xFF are its NaN), in parallel chunks, with progress. The
// loader only scans the small tensors (scales, norms, biases); a corrupted download or a bad
// export can hide NaNs in the big ones, which then surface as garbage text much later.

#include <atomic>
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "base/thread_pool.h"
#include "format/checkpoint.h"

namespace dsv3 {

struct TensorValueScan {
  std::string name;
  DType dtype = DType::F32;
  uint64_t elements = 0;
  bool scanned = false;     // float dtypes only; integer tensors have no NaN
  uint64_t nan = 0;
  uint64_t inf = 0;
  int64_t first_bad = -1;   // element index of the first NaN/Inf, -1 if none
  double max_abs = 0;       // largest finite |stored value| (FP8: before its block scale)
  bool ok() const { return nan == 0 && inf == 0; }
};

struct ValueScanReport {
  std::vector<TensorValueScan> tensors;  // every tensor of the checkpoint, by name
  uint64_t bytes_scanned = 0;
  size_t bad_tensors = 0;
  double seconds = 0;
  bool cancelled = false;
};

// Scans every tensor. `on_bytes` (optional, called from worker threads) receives the bytes of
// each finished chunk; `cancel` (optional) stops the scan early.
ValueScanReport scan_checkpoint_values(const Checkpoint& checkpoint, ThreadPool& pool,
                                       const std::function<void(uint64_t)>& on_bytes = {},
                                       const std::atomic<bool>* cancel = nullptr);

}  // namespace dsv3
