// StepBuffers (model/step_buffers.h): the arena that a forward step's tensors come from.

#include "model/step_buffers.h"

#include <gtest/gtest.h>

#include <cstdint>
#include <thread>

namespace dsv3 {
namespace {

bool aligned64(const float* p) { return reinterpret_cast<uintptr_t>(p) % 64 == 0; }

TEST(StepBuffers, BuffersAreAlignedAndDoNotOverlap) {
  StepBuffers frame;
  float* a = frame.floats(3);
  float* b = frame.floats(100);
  float* c = frame.floats(1);
  EXPECT_TRUE(aligned64(a) && aligned64(b) && aligned64(c));
  auto disjoint = [](const float* p, int64_t n, const float* q, int64_t m) { return p + n <= q || q + m <= p; };
  EXPECT_TRUE(disjoint(a, 3, b, 100));
  EXPECT_TRUE(disjoint(a, 3, c, 1));
  EXPECT_TRUE(disjoint(b, 100, c, 1));
}

TEST(StepBuffers, AFrameGivesBackWhatItTookAndTheNextFrameReusesIt) {
  StepBuffers outer;
  float* kept = outer.floats(64);
  float* first = nullptr;
  {
    StepBuffers inner;
    first = inner.floats(1000);
    EXPECT_NE(first, kept);
  }
  StepBuffers again;
  EXPECT_EQ(again.floats(1000), first);  // the same memory, warm, nothing allocated
}

TEST(StepBuffers, GrowingKeepsEarlierBuffersIntactAndMergesWhenNoFrameIsOpen) {
  int64_t grown = 0;
  {
    StepBuffers frame;
    float* small = frame.floats(256);
    for (int i = 0; i < 256; ++i) small[i] = static_cast<float>(i);
    // Far more than any block so far: a new block, the first one's contents untouched.
    const int64_t big = step_buffer_capacity() + (int64_t{1} << 20);
    float* large = frame.floats(big);
    large[0] = -1.0f;
    large[big - 1] = -2.0f;
    for (int i = 0; i < 256; ++i) ASSERT_EQ(small[i], static_cast<float>(i));
    EXPECT_EQ(large[big - 1], -2.0f);
    grown = step_buffer_capacity();
    EXPECT_GE(grown, 256 + big);
  }
  // No frame open: one block of the same total, which a step of that size fits into whole.
  EXPECT_EQ(step_buffer_capacity(), grown);
  StepBuffers frame;
  frame.floats(256);
  frame.floats(grown - 1024);
  EXPECT_EQ(step_buffer_capacity(), grown);
}

// Blocks are mapped at 2 MB boundaries with MADV_HUGEPAGE, so that the system can back them
// with transparent huge pages: a prefill's ~130 MB took ~31,000 page faults in 4 KB pages.
TEST(StepBuffers, ALargeBlockStartsOnA2MBBoundary) {
  std::thread([] {  // a fresh arena: the first buffer is the start of the first block
    StepBuffers frame;
    const float* p = frame.floats(int64_t{1} << 20);  // 4 MB
    EXPECT_EQ(reinterpret_cast<uintptr_t>(p) % (uintptr_t{2} << 20), 0u);
  }).join();
}

TEST(StepBuffers, EachThreadHasItsOwnArena) {
  StepBuffers mine;
  float* here = mine.floats(128);
  float* there = nullptr;
  std::thread([&] {
    StepBuffers theirs;
    there = theirs.floats(128);
    there[0] = 7.0f;
  }).join();
  EXPECT_NE(here, there);
}

#if defined(__SANITIZE_ADDRESS__)
// Under AddressSanitizer (make test-asan) the arena reports what separate allocations would.
TEST(StepBuffersDeathTest, ReadingPastABufferIsReportedUnderAddressSanitizer) {
  EXPECT_DEATH(
      {
        StepBuffers frame;
        volatile float* p = frame.floats(10);
        (void)p[10];
      },
      "use-after-poison");
}

TEST(StepBuffersDeathTest, ABufferUsedAfterItsFrameEndedIsReportedUnderAddressSanitizer) {
  StepBuffers outer;
  volatile float* stale = nullptr;
  {
    StepBuffers inner;
    stale = inner.floats(32);
  }
  EXPECT_DEATH((void)stale[0], "use-after-poison");
}
#endif

}  // namespace
}  // namespace dsv3
