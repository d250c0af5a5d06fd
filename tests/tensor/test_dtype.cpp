#include <gtest/gtest.h>

#include <cmath>

#include "tensor/dtype.h"

using namespace dsv3;

TEST(DType, Names) {
  EXPECT_EQ(dtype_from_name("F8_E4M3"), DType::F8_E4M3);
  EXPECT_EQ(dtype_from_name("BF16"), DType::BF16);
  EXPECT_FALSE(dtype_from_name("F8_E4M3FN").has_value());
  EXPECT_FALSE(dtype_from_name("bf16").has_value());
  EXPECT_FALSE(dtype_from_name("Q4_0").has_value());
  EXPECT_EQ(dtype_size(DType::F8_E4M3), 1);
  EXPECT_EQ(dtype_size(DType::BF16), 2);
}

// e4m3fn values checked from the format's definition, independently of the table code.
TEST(DType, E4M3Table) {
  EXPECT_EQ(e4m3_to_f32(0x00), 0.0f);
  EXPECT_EQ(e4m3_to_f32(0x38), 1.0f);            // exponent 7 = bias
  EXPECT_EQ(e4m3_to_f32(0x7E), 448.0f);          // max finite
  EXPECT_EQ(e4m3_to_f32(0xFE), -448.0f);
  EXPECT_EQ(e4m3_to_f32(0x01), std::ldexp(1.0f, -9));  // smallest subnormal 2^-6 * 1/8
  EXPECT_EQ(e4m3_to_f32(0x08), std::ldexp(1.0f, -6));  // smallest normal
  EXPECT_TRUE(std::isnan(e4m3_to_f32(0x7F)));
  EXPECT_TRUE(std::isnan(e4m3_to_f32(0xFF)));
  EXPECT_TRUE(e4m3_is_nan(0xFF));
  EXPECT_FALSE(e4m3_is_nan(0x7E));
}

TEST(DType, E4M3RoundTripAndNearest) {
  for (int b = 0; b < 256; ++b) {
    if (e4m3_is_nan(static_cast<uint8_t>(b))) continue;
    float v = e4m3_to_f32(static_cast<uint8_t>(b));
    uint8_t back = f32_to_e4m3(v);
    EXPECT_EQ(e4m3_to_f32(back), v) << b;
  }
  EXPECT_EQ(f32_to_e4m3(1000.0f), 0x7E);  // saturates
  EXPECT_EQ(f32_to_e4m3(-1000.0f), 0xFE);
  // 1.0625 lies halfway between 1.0 (mantissa 000, even) and 1.125 (001): ties to even.
  EXPECT_EQ(e4m3_to_f32(f32_to_e4m3(1.0625f)), 1.0f);
  // 1.1875 halfway between 1.125 (001) and 1.25 (010, even)
  EXPECT_EQ(e4m3_to_f32(f32_to_e4m3(1.1875f)), 1.25f);
  EXPECT_EQ(e4m3_to_f32(f32_to_e4m3(1.1f)), 1.125f);
}

TEST(DType, BF16RoundsToNearestEven) {
  EXPECT_EQ(f32_to_bf16(1.0f), 0x3F80);
  EXPECT_EQ(bf16_to_f32(0x3F80), 1.0f);
  // 1 + 2^-8 is halfway between 1 and 1 + 2^-7: ties to even (down to 1.0).
  EXPECT_EQ(f32_to_bf16(1.0f + std::ldexp(1.0f, -8)), 0x3F80);
  // 1 + 3*2^-8 is halfway between 1+2^-7 (odd) and 1+2^-6 (even): up.
  EXPECT_EQ(f32_to_bf16(1.0f + 3 * std::ldexp(1.0f, -8)), 0x3F82);
  EXPECT_TRUE(std::isnan(bf16_to_f32(f32_to_bf16(NAN))));
}

TEST(DType, F16Conversions) {
  EXPECT_EQ(f16_to_f32(0x3C00), 1.0f);
  EXPECT_EQ(f16_to_f32(0x7BFF), 65504.0f);
  EXPECT_EQ(f16_to_f32(0x0001), std::ldexp(1.0f, -24));
  EXPECT_TRUE(std::isinf(f16_to_f32(0x7C00)));
  for (uint32_t h = 0; h < 0x7C00; ++h) {
    float f = f16_to_f32(static_cast<uint16_t>(h));
    EXPECT_EQ(f32_to_f16(f), h);
    EXPECT_EQ(f32_to_f16(-f), h | 0x8000);
  }
  EXPECT_EQ(f32_to_f16(1e6f), 0x7C00);
}

// The fast encoder against a brute-force nearest search over all 127 finite magnitudes.
TEST(DType, E4M3EncoderMatchesNearestSearch) {
  auto nearest = [](float f) -> float {
    float a = std::fabs(f);
    if (a >= 448.0f) return std::copysign(448.0f, f);
    float best = 0.0f;
    int best_code = 0;
    for (int code = 0; code <= 0x7E; ++code) {
      float v = e4m3_to_f32(static_cast<uint8_t>(code));
      float d = std::fabs(v - a), db = std::fabs(best - a);
      if (d < db || (d == db && (code & 1) == 0 && (best_code & 1) == 1)) {
        best = v;
        best_code = code;
      }
    }
    return std::copysign(best, f);
  };
  uint64_t x = 12345;
  for (int i = 0; i < 200000; ++i) {
    x = x * 6364136223846793005ull + 1442695040888963407ull;
    // log-uniform magnitudes from 2^-12 to 2^10, plus exact ties and block edges
    float mag = std::ldexp(1.0f + static_cast<float>((x >> 40) & 0xFFFFFF) / 16777216.0f, static_cast<int>((x >> 20) % 23) - 12);
    float f = (x & 1) ? -mag : mag;
    ASSERT_EQ(e4m3_to_f32(f32_to_e4m3(f)), nearest(f)) << f;
  }
  for (int code = 0; code < 0x7E; ++code) {  // midpoints between neighbours: ties to even
    float mid = 0.5f * (e4m3_to_f32(static_cast<uint8_t>(code)) + e4m3_to_f32(static_cast<uint8_t>(code + 1)));
    EXPECT_EQ(e4m3_to_f32(f32_to_e4m3(mid)), nearest(mid)) << mid;
  }
}
