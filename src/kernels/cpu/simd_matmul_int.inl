// KernelTable::matmul_rows for the grouped integer formats (I8 int8, U8 packed int4, with an
// F16 scale per group of group_size columns; tensor/linear_weight.h), for one Vec type.
// Included inside a target region after simd_weights.inl and before simd_matmul_rows.inl,
// whose MatmulRows::run hands these weights here.
//
// Same reduction order as the BF16 / F16 / F32 paths (simd_matmul_rows.inl): per (t, r) one
// accumulator of L lanes, fma(w[r, c], x[t, c]) over the full vectors in increasing c, then
// the tail vector (w zero-padded, x masked), then V::hsum; the weights multiplied are q * scale
// rounded to float, bit-identical on every path (simd_weights.inl dequant_segment). So
//   - decode (n <= kFusedMaxTokens): the fused path below, weights decoded in registers
//     straight from the stored bytes (1 or 0.5 byte per weight streamed instead of 2 for BF16);
//   - prefill: MatmulRows' tiled path (panels dequantized once into an f32 tile, reused by
//     every token of the block);
// give the same bits for a row and token, whatever the batch.
// Group sizes are multiples of 16 (config validation), so no vector straddles two groups.

template <class V>
struct MatmulRows;

template <class V>
struct MatmulInt {
  using F = typename V::F;
  using D = IntDecode<V>;
  static constexpr int L = V::kLanes;
  static constexpr int kFusedMaxTokens = 8;
  // Rows per step: T * R accumulators, R weight vectors, R scales and an x vector in the
  // registers (16 on AVX2, 32 on AVX-512).
  template <int T>
  static constexpr int kRows = std::clamp((L == 8 ? 12 : 26) / (T + 2), 1, 4);

  // Rows r .. r + R - 1, all T tokens: y[t * ldy + i].
  template <bool kInt4, int T, int R>
  static void rows_step(const LinearWeight& w, int64_t r, const float* x, int64_t ldx, float* y, int64_t ldy) {
    const int64_t K = w.cols, k_full = K - K % L, G = w.group_size;
    // Bytes of one vector's weights, and the prefetch distance ahead of the read (in bytes).
    constexpr int64_t kVecBytes = kInt4 ? L / 2 : L;
    constexpr int64_t kAhead = 1024;
    const uint8_t* rows[R];
    const uint16_t* scales[R];
    for (int i = 0; i < R; ++i) rows[i] = w.row_ptr(r + i), scales[i] = w.row_group_scales(r + i);
    F acc[T][R];
    for (int t = 0; t < T; ++t)
      for (int i = 0; i < R; ++i) acc[t][i] = V::zero();
    for (int64_t g0 = 0; g0 < k_full; g0 += G) {
      const int64_t g1 = std::min(g0 + G, k_full);
      F s[R];
      for (int i = 0; i < R; ++i) s[i] = V::set1(D::scale(scales[i][g0 / G]));
      for (int64_t k = g0; k < g1; k += L) {
        const int64_t byte = kInt4 ? k / 2 : k;
        if (byte % 64 < kVecBytes)
          for (int i = 0; i < R; ++i) _mm_prefetch(reinterpret_cast<const char*>(rows[i]) + byte + kAhead, _MM_HINT_T0);
        F wv[R];
        for (int i = 0; i < R; ++i) wv[i] = V::mul(kInt4 ? D::int4(rows[i] + k / 2) : D::int8(rows[i] + k), s[i]);
        for (int t = 0; t < T; ++t) {
          const F xv = V::load(x + t * ldx + k);
          for (int i = 0; i < R; ++i) acc[t][i] = V::fma(wv[i], xv, acc[t][i]);
        }
      }
    }
    if (k_full < K) {  // the tail vector: w zero-padded, x masked
      for (int i = 0; i < R; ++i) {
        alignas(64) float tail[L];
        WeightDecode<V>::dequant_segment(w, r + i, k_full, K, L, tail);
        const F wv = V::load(tail);
        for (int t = 0; t < T; ++t)
          acc[t][i] = V::fma(wv, V::load_partial(x + t * ldx + k_full, static_cast<int>(K - k_full)), acc[t][i]);
      }
    }
    for (int t = 0; t < T; ++t)
      for (int i = 0; i < R; ++i) y[t * ldy + i] = V::hsum(acc[t][i]);
  }

  template <bool kInt4, int T>
  static void fused(const LinearWeight& w, const float* x, int64_t ldx, float* y, int64_t ldy, int64_t r0, int64_t r1) {
    constexpr int R = kRows<T>;
    int64_t r = r0;
    for (; r + R <= r1; r += R) rows_step<kInt4, T, R>(w, r, x, ldx, y + (r - r0), ldy);
    for (; r < r1; ++r) rows_step<kInt4, T, 1>(w, r, x, ldx, y + (r - r0), ldy);
  }

  // fused<T'> for T' = n (1 <= n <= kFusedMaxTokens).
  template <bool kInt4, int T = 1>
  static void fused_n(int64_t n, const LinearWeight& w, const float* x, int64_t ldx, float* y, int64_t ldy, int64_t r0,
                      int64_t r1) {
    if constexpr (T < kFusedMaxTokens)
      if (n > T) return fused_n<kInt4, T + 1>(n, w, x, ldx, y, ldy, r0, r1);
    fused<kInt4, T>(w, x, ldx, y, ldy, r0, r1);
  }

  static void run(const LinearWeight& w, const float* x, int64_t n, int64_t ldx, float* y, int64_t ldy, int64_t r0,
                  int64_t r1) {
    DSV3_CHECK(w.group_size > 0 && w.group_size % 16 == 0, "int weight with group size %lld",
               static_cast<long long>(w.group_size));
    if (n > kFusedMaxTokens) return MatmulRows<V>::tiled(w, x, n, ldx, y, ldy, r0, r1);
    // Up to kFusedMaxTokens tokens at a time; rows of a chunk of tokens stream once.
    if (w.is_int4()) fused_n<true>(n, w, x, ldx, y, ldy, r0, r1);
    else fused_n<false>(n, w, x, ldx, y, ldy, r0, r1);
  }
};
