#pragma once
// Activations quantized to int8 per group, for the products with grouped integer weights
// (I8 int8, U8 packed int4; docs/formats.md "Products"). Integer dot products are exact, so
// every path (the scalar oracle, AVX2, AVX-512 with or without VNNI) computes the same
// per-group integer sums; only the float combination of the groups differs in rounding.
//
// The numerics, per token and per group g of G columns (G the weight's group size):
//   a_g = max |x_c| over the group;   s_g = a_g / 127 (f32);
//   q_c = clamp(round_half_even(x_c * (127 / a_g)), -127, 127)   (each operation f32 IEEE);
//   a group of zeros gives s_g = 0, q = 0; a non-finite a_g gives s_g = NaN, q = 0, so a NaN
//   or infinity in x makes the product NaN, as it would in float.
//   y[t, r] = sum_g  sw[r, g] * s_g * (sum_{c in g} qw[r, c] * q_c)
// Baseline code (no target attribute): the SIMD tables call it, so that every path quantizes
// bit for bit alike.

#include <cstdint>
#include <vector>

namespace dsv3::kernels {

// Quantizes one row of `cols` values: q gets cols values, scales ceil(cols / group) values.
void quantize_q8_row(const float* x, int64_t cols, int64_t group, int8_t* q, float* scales);

// The activations of n tokens laid out for a SIMD kernel of `lanes` 32-bit lanes (8 or 16)
// against one weight format. One weight vector is 4 * lanes bytes (a "block" of block_cols
// columns: 4 * lanes for int8, 8 * lanes for int4), lane l holding cols_per_lane consecutive
// columns (4 for int8, 8 for int4). Columns past K are zero (q = 0, s = 0).
struct Q8Layout {
  int64_t n = 0, K = 0, group = 0;
  int lanes = 0;
  bool int4 = false;
  int64_t cols_per_lane = 0, block_cols = 0, blocks = 0;  // blocks * block_cols >= K
  bool one_group_per_block = false;                        // group_size a multiple of block_cols
  // Per token, blocks * block_cols bytes: int8: q in column order; int4: per block the even
  // columns' q (byte j: column 2j of the block, the low nibble of weight byte j), then the
  // odd ones' (the high nibbles).
  std::vector<int8_t> q;
  // Per token, blocks * lanes floats: s_g of the group of the lane's columns.
  std::vector<float> lane_scales;
  // Per token, blocks * lanes: -o * the sum of the lane's q, o = 8 for int4 and 128 for
  // int8: the kernels read the weights as unsigned q + o, and start each lane's integer sum
  // here to take the o's back out.
  std::vector<int32_t> lane_offsets;
  // Per block: the first group the block touches, and per lane its group minus that one
  // (0 .. lanes - 1: a block spans at most 8 groups of 16 columns).
  std::vector<int32_t> first_group, lane_group;

  const int8_t* q_of(int64_t t, int64_t b) const { return q.data() + (t * blocks + b) * block_cols; }
  const float* scales_of(int64_t t, int64_t b) const { return lane_scales.data() + (t * blocks + b) * lanes; }
  const int32_t* offsets_of(int64_t t, int64_t b) const { return lane_offsets.data() + (t * blocks + b) * lanes; }
};

// The layout of x (n tokens of K values, row stride ldx) for this thread: reused while the
// same thread gets the same activations again (the row bands of one product, the experts that
// share an input), recomputed otherwise. Valid until this thread's next call.
const Q8Layout& q8_layout(const float* x, int64_t n, int64_t ldx, int64_t K, int64_t group, int lanes, bool int4);

}  // namespace dsv3::kernels
