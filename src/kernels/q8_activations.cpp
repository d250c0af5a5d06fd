#include "kernels/q8_activations.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>

namespace dsv3::kernels {

void quantize_q8_row(const float* x, int64_t cols, int64_t group, int8_t* q, float* scales) {
  for (int64_t g0 = 0; g0 < cols; g0 += group) {
    const int64_t g1 = std::min(cols, g0 + group);
    float a = 0.0f;
    int not_finite = 0;
    for (int64_t c = g0; c < g1; ++c) {
      const float v = std::fabs(x[c]);
      not_finite |= !(v <= std::numeric_limits<float>::max());  // infinity and NaN
      a = v > a ? v : a;
    }
    const bool finite = not_finite == 0;
    float& s = scales[g0 / group];
    if (!finite || a == 0.0f) {
      s = finite ? 0.0f : std::numeric_limits<float>::quiet_NaN();
      std::fill(q + g0, q + g1, int8_t{0});
      continue;
    }
    s = a / 127.0f;
    const float inv = 127.0f / a;
    for (int64_t c = g0; c < g1; ++c) {
      // Round half to even by the 1.5 * 2^23 trick (|x * inv| <= 127.5, far below 2^22): plain
      // f32 additions, the same on every compiler and path, no libm call.
      const float v = x[c] * inv;
      const float r = (v + 12582912.0f) - 12582912.0f;
      q[c] = static_cast<int8_t>(std::min(std::max(r, -127.0f), 127.0f));
    }
  }
}

namespace {

bool same_shapes(const Q8Layout& l, int64_t K, int64_t group, int lanes, bool int4, int64_t chunk) {
  return l.K == K && l.group == group && l.lanes == lanes && l.int4 == int4 && l.chunk == chunk;
}

bool same_activations(const Q8Layout& l, const std::vector<float>& copy, const float* x, int64_t n, int64_t ldx) {
  if (l.n != n) return false;
  const int64_t K = l.K;
  for (int64_t t = 0; t < n; ++t)
    if (std::memcmp(copy.data() + t * K, x + t * ldx, sizeof(float) * K) != 0) return false;
  return true;
}

// The per-block group map, which depends on the shapes only.
void build_group_map(Q8Layout& l, int64_t K, int64_t group, int lanes, bool int4, int64_t chunk) {
  l.n = 0, l.K = K, l.group = group, l.lanes = lanes, l.int4 = int4, l.chunk = chunk;
  l.cols_per_lane = int4 ? 8 : 4;
  l.block_cols = l.cols_per_lane * lanes;
  l.rec_bytes = l.block_cols + 8 * lanes;
  l.blocks = (K + l.block_cols - 1) / l.block_cols;
  l.first_group.resize(static_cast<size_t>(l.blocks));
  l.lane_group.resize(static_cast<size_t>(l.blocks * lanes));
  for (int64_t b = 0; b < l.blocks; ++b) {
    const int64_t c0 = b * l.block_cols;
    l.first_group[b] = static_cast<int32_t>(c0 / group);
    for (int j = 0; j < lanes; ++j) {
      l.lane_group[b * lanes + j] = static_cast<int32_t>((c0 + l.cols_per_lane * j) / group - c0 / group);
    }
  }
  l.one_group_per_block = group % l.block_cols == 0;
  l.blocks_padded = (l.blocks + 15) / 16 * 16;
}

template <class T>
void grow(std::vector<T>& v, int64_t n) {
  if (v.size() < static_cast<size_t>(n)) v.resize(static_cast<size_t>(n));
}

// out[i] = offset * the sum of q[i * kPerLane .. (i + 1) * kPerLane).
template <int kPerLane>
void lane_offsets(const int8_t* q, int64_t lanes, int32_t offset, int32_t* out) {
  for (int64_t i = 0; i < lanes; ++i) {
    int32_t sum = 0;
    for (int k = 0; k < kPerLane; ++k) sum += q[i * kPerLane + k];
    out[i] = offset * sum;
  }
}

// Quantizes and lays out n tokens (the group map already built for these shapes).
void build(Q8Layout& l, const float* x, int64_t n, int64_t ldx) {
  const int64_t K = l.K, lanes = l.lanes, k_pad = l.blocks * l.block_cols, per_lane = l.cols_per_lane;
  const int64_t groups = (k_pad + l.group - 1) / l.group, vec_bytes = 4 * lanes;
  l.n = n;
  // Grown, never shrunk; the records start at a 64-byte boundary of the storage.
  const int64_t bytes = n * l.blocks * l.rec_bytes + 64;
  if (l.storage.size() < static_cast<size_t>(bytes)) l.storage.resize(static_cast<size_t>(bytes));
  const uintptr_t base = reinterpret_cast<uintptr_t>(l.storage.data());
  l.records = l.storage.data() + ((64 - base % 64) % 64);
  thread_local std::vector<int8_t> q;
  thread_local std::vector<float> s, ls;
  thread_local std::vector<int32_t> lo;
  q.resize(static_cast<size_t>(k_pad));
  s.resize(static_cast<size_t>(groups));
  ls.resize(static_cast<size_t>(l.blocks * lanes));
  lo.resize(static_cast<size_t>(l.blocks * lanes));
  if (l.block_scales.size() < static_cast<size_t>(n * l.blocks_padded))
    l.block_scales.resize(static_cast<size_t>(n * l.blocks_padded));
  for (int64_t t = 0; t < n; ++t) {
    std::fill(q.begin() + K, q.end(), int8_t{0});
    std::fill(s.begin(), s.end(), 0.0f);
    quantize_q8_row(x + t * ldx, K, l.group, q.data(), s.data());
    // Lane i holds columns [i * per_lane, (i + 1) * per_lane): whole lanes per group.
    const int64_t lanes_per_group = l.group / per_lane;
    for (int64_t g = 0; g < groups; ++g) {
      const int64_t i0 = g * lanes_per_group, i1 = std::min(l.blocks * lanes, i0 + lanes_per_group);
      std::fill(ls.begin() + i0, ls.begin() + i1, s[static_cast<size_t>(g)]);
    }
    if (l.int4) lane_offsets<8>(q.data(), l.blocks * lanes, -8, lo.data());
    else lane_offsets<4>(q.data(), l.blocks * lanes, -128, lo.data());
    float* bs = l.block_scales.data() + t * l.blocks_padded;
    for (int64_t b = 0; b < l.blocks_padded; ++b) bs[b] = b < l.blocks ? s[static_cast<size_t>(l.first_group[b])] : 0.0f;
    for (int64_t b = 0; b < l.blocks; ++b) {
      uint8_t* rec = l.records + l.record_offset(t, b);
      int8_t* dst = reinterpret_cast<int8_t*>(rec);
      const int8_t* src = q.data() + b * l.block_cols;
      if (l.int4) {
        for (int64_t j = 0; j < vec_bytes; ++j) dst[j] = src[2 * j], dst[vec_bytes + j] = src[2 * j + 1];
      } else {
        std::memcpy(dst, src, static_cast<size_t>(l.block_cols));
      }
      std::memcpy(rec + l.block_cols, ls.data() + b * lanes, sizeof(float) * lanes);
      std::memcpy(rec + l.block_cols + 4 * lanes, lo.data() + b * lanes, sizeof(int32_t) * lanes);
    }
  }
}

}  // namespace

const Q8Layout& q8_layout(const float* x, int64_t n, int64_t ldx, int64_t K, int64_t group, int lanes, bool int4,
                          int64_t chunk) {
  thread_local Q8Layout layout;
  thread_local std::vector<float> copy;  // the activations `layout` was built from
  if (!same_shapes(layout, K, group, lanes, int4, chunk)) build_group_map(layout, K, group, lanes, int4, chunk);
  else if (same_activations(layout, copy, x, n, ldx)) return layout;
  build(layout, x, n, ldx);
  grow(copy, n * K);
  for (int64_t t = 0; t < n; ++t) std::memcpy(copy.data() + t * K, x + t * ldx, sizeof(float) * K);
  return layout;
}

}  // namespace dsv3::kernels
