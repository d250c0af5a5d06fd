// The decode profile's account (kernels/product_profile.h): each product region's weight bytes
// land under the innermost part named on the calling thread, "other" outside any part, and
// nothing is accounted while the profile is off.

#include <gtest/gtest.h>

#include "kernels/kernel_test_util.h"
#include "kernels/ops.h"
#include "kernels/product_profile.h"

using namespace dsv3;

namespace {

const kernels::ProductPartStats* find_part(const std::vector<kernels::ProductPartStats>& parts, const std::string& name) {
  for (const auto& p : parts)
    if (p.part == name) return &p;
  return nullptr;
}

}  // namespace

TEST(ProductProfile, AccountsEachRegionUnderItsPart) {
  ThreadPool pool(2);
  const test::TestWeight a = test::make_weight(DType::F8_E4M3, 256, 384, 1);
  const test::TestWeight b = test::make_weight(DType::BF16, 96, 384, 2);
  const std::vector<float> x = test::random_activations(2 * 384, 3);
  std::vector<float> ya(2 * 256), yb(2 * 96);
  // The views' bytes: FP8 weights with their block scales (2 x 3 blocks of 4 bytes), BF16.
  ASSERT_EQ(a.view.bytes(), 256u * 384 + 2 * 3 * 4);
  ASSERT_EQ(b.view.bytes(), 96u * 384 * 2);

  kernels::matmul(pool, a.view, x.data(), 2, ya.data());  // before the start: not accounted
  kernels::product_profile_start();
  {
    const kernels::ProductPart outer("outer");
    kernels::matmul(pool, a.view, x.data(), 2, ya.data());
    {
      const kernels::ProductPart inner("inner");
      const kernels::MatmulJob jobs[] = {{a.view, x.data(), 2, 384, ya.data(), 256},
                                         {b.view, x.data(), 2, 384, yb.data(), 96}};
      kernels::matmul_batch(pool, jobs);
      kernels::matmul_batch(pool, jobs);
    }
    kernels::matmul(pool, b.view, x.data(), 2, yb.data());  // "outer" again
  }
  kernels::matmul(pool, b.view, x.data(), 2, yb.data());  // no part: "other"
  kernels::product_profile_stop();
  kernels::matmul(pool, a.view, x.data(), 2, ya.data());  // after the stop: not accounted

  const auto parts = kernels::product_profile_parts();
  ASSERT_EQ(parts.size(), 3u);
  EXPECT_EQ(parts[0].part, "outer");  // in the order they first ran
  EXPECT_EQ(parts[1].part, "inner");
  EXPECT_EQ(parts[2].part, "other");
  const auto* outer = find_part(parts, "outer");
  const auto* inner = find_part(parts, "inner");
  const auto* other = find_part(parts, "other");
  ASSERT_TRUE(outer && inner && other);
  EXPECT_EQ(outer->regions, 2);
  EXPECT_EQ(outer->weight_bytes, static_cast<int64_t>(a.view.bytes() + b.view.bytes()));
  EXPECT_EQ(inner->regions, 2);
  EXPECT_EQ(inner->weight_bytes, static_cast<int64_t>(2 * (a.view.bytes() + b.view.bytes())));
  EXPECT_EQ(other->regions, 1);
  EXPECT_EQ(other->weight_bytes, static_cast<int64_t>(b.view.bytes()));
  for (const auto& p : parts) {
    EXPECT_EQ(p.threads, 2) << p.part;
    EXPECT_GT(p.seconds, 0) << p.part;
    // Every task runs inside its region: busy time is within the region's wall time x threads.
    EXPECT_GT(p.busy_seconds, 0) << p.part;
    EXPECT_LE(p.busy_seconds, p.seconds * p.threads * (1 + 1e-9)) << p.part;
  }

  // A new start clears the account.
  kernels::product_profile_start();
  kernels::product_profile_stop();
  EXPECT_TRUE(kernels::product_profile_parts().empty());
}
