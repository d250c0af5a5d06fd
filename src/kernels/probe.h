#pragma once
// Measured ceilings of this machine, for judging the kernels: decode should approach the read
// bandwidth, prefill the FMA peak. `dsv3 bench` and the microbenchmarks print achieved/peak
// ratios from these.

#include <cstddef>
#include <cstdint>

#include "base/mapped_file.h"
#include "base/thread_pool.h"
#include "kernels/dispatch.h"

namespace dsv3::kernels {

struct BandwidthProbe {
  double best_bytes_per_s = 0;    // fastest pass (the ceiling to compare against)
  double median_bytes_per_s = 0;
  size_t bytes = 0;               // buffer size read per pass
  int threads = 0;
};

// Read-only streaming bandwidth with all of the pool's threads: each sums its own contiguous
// slice (first-touched by itself, so NUMA-local) of a `bytes` buffer; `passes` timed passes
// after one warm-up. Pick bytes well above the last-level cache (e.g. 8x L3, >= 512 MiB).
// Uses the widest path this CPU supports.
BandwidthProbe measure_read_bandwidth(ThreadPool& pool, size_t bytes, int passes = 5);

// The same probe with its buffer kept, to be measured again and again: `bench` measures it
// around each decode run, so that the share of bandwidth a run reached compares it with what
// the memory gave at that time (on a shared VM the probe moved between 27 and 65 GB/s within
// minutes, more than any kernel change).
class ReadBandwidthProbe {
 public:
  ReadBandwidthProbe(ThreadPool& pool, size_t bytes);
  // `passes` timed passes after one warm-up.
  BandwidthProbe measure(int passes = 5);

 private:
  ThreadPool* pool_;
  int64_t per_thread_ = 0;  // floats per thread's slice
  HugePageBuffer buffer_;
};

struct FlopsProbe {
  double best_flops_per_s = 0;  // f32 FLOP/s (an FMA counts 2 per lane), all threads together
  double median_flops_per_s = 0;
  int threads = 0;
  Isa isa = Isa::Scalar;
};

// Peak f32 FMA rate of the kernels of path `isa` (must be supported): every thread runs
// register-only FMA chains for about `seconds` per pass, `passes` passes. Isa::Scalar
// measures scalar multiply-adds.
FlopsProbe measure_peak_flops(ThreadPool& pool, Isa isa, double seconds = 0.1, int passes = 5);
// Peak rate of AVX512-BF16's vdpbf16ps (the MatmulMath::Bf16 kernels), counted the same way:
// 2 FLOPs per multiply-add, 32 multiply-adds per instruction. The CPU must have avx512_bf16.
FlopsProbe measure_peak_bf16_dot_flops(ThreadPool& pool, double seconds = 0.1, int passes = 5);
// The peak of the instructions the FP8 products run on now (matmul_math()): vdpbf16ps for
// MatmulMath::Bf16, else the f32 FMAs of the active path.
FlopsProbe measure_matmul_math_peak(ThreadPool& pool, double seconds = 0.1, int passes = 5);

}  // namespace dsv3::kernels
