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
//
// Everything a kernel reads for one token and one block is one record of rec_bytes:
//   q:       block_cols bytes: int8: q in column order; int4: the block's even columns' q
//            (byte j: column 2j of the block, the low nibble of weight byte j), then the odd
//            ones' (the high nibbles);
//   scales:  lanes floats: s_g of the group of the lane's columns;
//   offsets: lanes int32: -o * the sum of the lane's q, o = 8 for int4 and 128 for int8: the
//            kernels read the weights as unsigned q + o, and start each lane's integer sum
//            here to take the o's back out.
// The tokens go in chunks of `chunk` (the last one shorter), the kernel's register tile:
// a chunk's records are contiguous, block by block, its tokens' records of one block side by
// side. So a tile's reads are one forward stream at fixed offsets from one pointer (no
// per-token pointers, no token rows a multiple of 4 KiB apart sharing L1 sets).
struct Q8Layout {
  int64_t n = 0, K = 0, group = 0, chunk = 0;
  int lanes = 0;
  bool int4 = false;
  int64_t cols_per_lane = 0, block_cols = 0, blocks = 0;  // blocks * block_cols >= K
  int64_t rec_bytes = 0;                                   // block_cols + 8 * lanes
  bool one_group_per_block = false;                        // group_size a multiple of block_cols
  std::vector<uint8_t> storage;                            // the records, from a 64-byte boundary
  uint8_t* records = nullptr;
  // Per block: the first group the block touches, and per lane its group minus that one
  // (0 .. lanes - 1: a block spans at most 8 groups of 16 columns).
  std::vector<int32_t> first_group, lane_group;
  // Per token, blocks_padded floats (blocks rounded up to 16, zeros past blocks): the scale
  // s_g of each block's first group (its only one where one_group_per_block).
  int64_t blocks_padded = 0;
  std::vector<float> block_scales;

  // Tokens in the chunk that starts at token t0 (a multiple of chunk).
  int64_t chunk_tokens(int64_t t0) const { return n - t0 < chunk ? n - t0 : chunk; }
  // Where token t's record of block b starts, in bytes from `records`.
  int64_t record_offset(int64_t t, int64_t b) const {
    const int64_t t0 = t / chunk * chunk;
    return (t0 * blocks + b * chunk_tokens(t0) + (t - t0)) * rec_bytes;
  }
  const uint8_t* record(int64_t t, int64_t b) const { return records + record_offset(t, b); }
  const float* block_scales_of(int64_t t) const { return block_scales.data() + t * blocks_padded; }
};

// The layout of x (n tokens of K values, row stride ldx) in chunks of `chunk` tokens, for this
// thread: reused while the same thread gets the same activations again (the row bands of one
// product, the experts that share an input), recomputed otherwise. Valid until this thread's
// next call.
const Q8Layout& q8_layout(const float* x, int64_t n, int64_t ldx, int64_t K, int64_t group, int lanes, bool int4,
                          int64_t chunk);

}  // namespace dsv3::kernels
