#include "model/step_buffers.h"

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <new>
#include <vector>

namespace dsv3 {
namespace {

constexpr int64_t kAlignFloats = 16;  // 64 bytes

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
    n = (std::max<int64_t>(n, 1) + kAlignFloats - 1) / kAlignFloats * kAlignFloats;
    for (; current < blocks.size(); ++current, used = 0)
      if (used + n <= blocks[current].capacity) {
        float* p = blocks[current].data.get() + used;
        used += n;
        return p;
      }
    // Nothing free is large enough: a new block, at least as large as all the others together,
    // so that a growing step needs few of them.
    blocks.push_back(new_block(std::max(n, capacity())));
    current = blocks.size() - 1;
    used = n;
    return blocks[current].data.get();
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
  t_arena.current = block_;
  t_arena.used = used_;
  if (--t_arena.open_frames == 0) t_arena.merge();
}

float* StepBuffers::floats(int64_t n) { return t_arena.take(n); }

float* StepBuffers::zeros(int64_t n) {
  float* p = t_arena.take(n);
  std::memset(p, 0, static_cast<size_t>(std::max<int64_t>(n, 0)) * sizeof(float));
  return p;
}

int64_t step_buffer_capacity() { return t_arena.capacity(); }

}  // namespace dsv3
