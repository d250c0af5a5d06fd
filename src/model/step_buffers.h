#pragma once
// Memory for the intermediate tensors of a forward step (normed activations, q, the MoE's
// hidden rows, ...), reused from step to step instead of allocated fresh by each layer.
//
// Why: a 512-token prefill of Moonlight's shape needs ~130 MB of such tensors per layer, and
// DeepSeek-V3's 7168-wide layers more. Allocations that large come straight from mmap, so each
// layer had every page faulted in and zeroed by the kernel, on the calling thread while the
// pool's other threads waited: about half of a 512-token prefill's time (measured in
// docs/benchmarks.md, "Step buffers"). Taken from here, the same bytes are reused warm and
// nothing is zeroed.
//
// Frames follow the call stack: a function opens a StepBuffers frame, takes what it needs, and
// everything it took is given back when the frame ends; a function it calls opens its own
// frame above it. Each thread has its own arena, which keeps the largest step's size (as the
// process's peak memory would anyway) and merges into one block whenever no frame is open.

#include <cstddef>
#include <cstdint>

namespace dsv3 {

class StepBuffers {
 public:
  StepBuffers();
  ~StepBuffers();
  StepBuffers(const StepBuffers&) = delete;
  StepBuffers& operator=(const StepBuffers&) = delete;

  // n floats, 64-byte aligned, contents unspecified; valid until this frame ends.
  float* floats(int64_t n);

 private:
  size_t block_;   // the arena's position when the frame opened
  int64_t used_;
};

// Floats the calling thread's arena holds (all blocks), for tests and memory reports.
int64_t step_buffer_capacity();

}  // namespace dsv3
