#include "model/step_buffers.h"

#include <algorithm>
#include <cstdlib>
#include <memory>
#include <new>
#include <vector>

#if defined(__SANITIZE_ADDRESS__)
#include <sanitizer/asan_interface.h>
#define DSV3_STEP_BUFFERS_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#include <sanitizer/asan_interface.h>
#define DSV3_STEP_BUFFERS_ASAN 1
#endif
#endif

namespace dsv3 {
namespace {

constexpr int64_t kAlignFloats = 16;  // 64 bytes

// Under AddressSanitizer the arena keeps what separate allocations gave: reading or writing
// past a buffer, or a buffer after its frame ended, is reported. Everything not handed out is
// poisoned, and each buffer is followed by a poisoned red zone.
#ifdef DSV3_STEP_BUFFERS_ASAN
constexpr int64_t kRedZoneFloats = kAlignFloats;
void poison(float* p, int64_t n) { ASAN_POISON_MEMORY_REGION(p, static_cast<size_t>(n) * sizeof(float)); }
void unpoison(float* p, int64_t n) { ASAN_UNPOISON_MEMORY_REGION(p, static_cast<size_t>(n) * sizeof(float)); }
#else
constexpr int64_t kRedZoneFloats = 0;
void poison(float*, int64_t) {}
void unpoison(float*, int64_t) {}
#endif

struct FreeDeleter {
  void operator()(float* p) const { std::free(p); }
};

struct Block {
  std::unique_ptr<float, FreeDeleter> data;
  int64_t capacity = 0;  // floats
};

Block new_block(int64_t floats) {
  void* p = std::aligned_alloc(64, static_cast<size_t>(floats) * sizeof(float));
  if (!p) throw std::bad_alloc();
  poison(static_cast<float*>(p), floats);
  return {std::unique_ptr<float, FreeDeleter>(static_cast<float*>(p)), floats};
}

// Blocks in use order; the frames in use hold [0, used) of block `current` and every block
// before it, so everything after the current position is free.
struct Arena {
  std::vector<Block> blocks;
  size_t current = 0;
  int64_t used = 0;
  int open_frames = 0;

  int64_t capacity() const {
    int64_t total = 0;
    for (const Block& b : blocks) total += b.capacity;
    return total;
  }

  float* take(int64_t n) {
    n = std::max<int64_t>(n, 0);
    const int64_t span = (n + kRedZoneFloats + kAlignFloats - 1) / kAlignFloats * kAlignFloats;
    while (current < blocks.size() && used + span > blocks[current].capacity) {
      ++current;  // the rest of this block stays unused until the frames before it end
      used = 0;
    }
    if (current == blocks.size()) {
      // Nothing free is large enough: a new block, at least as large as all the others
      // together, so that a growing step needs few of them.
      blocks.push_back(new_block(std::max(std::max<int64_t>(span, kAlignFloats), capacity())));
    }
    float* p = blocks[current].data.get() + used;
    used += span;
    unpoison(p, n);
    return p;
  }

  // Back to (block, offset): everything after it is free again.
  void release_to(size_t block, int64_t offset) {
    for (size_t b = block; b < blocks.size() && b <= current; ++b) {
      const int64_t from = b == block ? offset : 0;
      poison(blocks[b].data.get() + from, blocks[b].capacity - from);
    }
    current = block;
    used = offset;
  }

  // With no frame open, several blocks become one of their total size: the next step of the
  // same size then takes everything from one block.
  void merge() {
    if (blocks.size() > 1) {
      const int64_t total = capacity();
      blocks.clear();
      blocks.push_back(new_block(total));
    }
    current = 0;
    used = 0;
  }
};

thread_local Arena t_arena;

}  // namespace

StepBuffers::StepBuffers() : block_(t_arena.current), used_(t_arena.used) { ++t_arena.open_frames; }

StepBuffers::~StepBuffers() {
  t_arena.release_to(block_, used_);
  if (--t_arena.open_frames == 0) t_arena.merge();
}

float* StepBuffers::floats(int64_t n) { return t_arena.take(n); }

int64_t step_buffer_capacity() { return t_arena.capacity(); }

}  // namespace dsv3
