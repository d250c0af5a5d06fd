#include "kernels/scratch.h"

#include <algorithm>
#include <cstdlib>
#include <memory>

namespace dsv3::kernels {
namespace {
struct FreeDeleter {
  void operator()(float* p) const { std::free(p); }
};
struct Buffer {
  std::unique_ptr<float, FreeDeleter> data;
  size_t capacity = 0;  // floats
};
}  // namespace

float* thread_scratch(ScratchSlot slot, size_t n_floats) {
  thread_local Buffer buffers[static_cast<int>(ScratchSlot::Count)];
  Buffer& b = buffers[static_cast<int>(slot)];
  if (b.capacity < n_floats) {
    // Round up to whole cache lines; grow geometrically so odd shapes do not reallocate often.
    size_t want = std::max(n_floats, b.capacity * 2);
    size_t bytes = (want * sizeof(float) + 63) / 64 * 64;
    b.data.reset(static_cast<float*>(std::aligned_alloc(64, bytes)));
    if (!b.data) std::abort();
    b.capacity = bytes / sizeof(float);
  }
  return b.data.get();
}

}  // namespace dsv3::kernels
