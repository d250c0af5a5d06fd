#include "model/step_buffers.h"

#include <algorithm>
#include <new>
#include <utility>
#include <vector>

#include "base/mapped_file.h"

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
// One huge page: a block is a mapping of its own (below), and smaller ones would soon be
// outgrown.
constexpr int64_t kMinBlockFloats = (int64_t{2} << 20) / sizeof(float);

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

// Blocks come in transparent huge pages where the system gives them (allocate_huge_pages):
// a block is touched page by page the first step that uses it, and a 512-token prefill of
// Moonlight's shape takes ~130 MB here. In 4 KB pages that was ~31,000 page faults, each a
// trip through the hypervisor on this project's VMs, in two steps (the step that grew the
// arena, and the next, which is the first to use the merged block): those two prefills ran
// 0.85-0.9x the speed of the later ones. 2 MB pages fault 512 times less often.
struct Block {
  HugePageBuffer memory;
  int64_t capacity = 0;  // floats

  Block(HugePageBuffer m, int64_t floats) : memory(std::move(m)), capacity(floats) {}
  Block(Block&&) = default;
  Block& operator=(Block&&) = delete;  // would free the old memory without unpoisoning it
  // AddressSanitizer's shadow outlives munmap: without this, a later mapping at the same
  // address (a file, another block) would read as poisoned.
  ~Block() {
    if (memory) unpoison(data(), capacity);
  }
  float* data() const { return reinterpret_cast<float*>(memory.get()); }
};

Block new_block(int64_t floats) {
  HugePageBuffer memory = allocate_huge_pages(static_cast<uint64_t>(floats) * sizeof(float));
  if (!memory) throw std::bad_alloc();
  poison(reinterpret_cast<float*>(memory.get()), floats);
  return Block(std::move(memory), floats);
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
      blocks.push_back(new_block(std::max({span, kMinBlockFloats, capacity()})));
    }
    float* p = blocks[current].data() + used;
    used += span;
    unpoison(p, n);
    return p;
  }

  // Back to (block, offset): everything after it is free again.
  void release_to(size_t block, int64_t offset) {
    for (size_t b = block; b < blocks.size() && b <= current; ++b) {
      const int64_t from = b == block ? offset : 0;
      poison(blocks[b].data() + from, blocks[b].capacity - from);
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
