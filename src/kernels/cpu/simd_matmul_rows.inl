// KernelTable::matmul_rows for one Vec type: y[t, r - r0] = sum_c x[t, c] W[r, c] for rows
// [r0, r1) of W and all n tokens. Included inside a target region after simd_weights.inl and
// simd_matmul_fp8.inl. FP8 weights go to MatmulFp8 (simd_matmul_fp8.inl: its own column
// order and reduction order); this file computes BF16, F16 and F32 weights.
//
// THE REDUCTION ORDER (batch-invariance contract, BF16/F16/F32). For every (t, r), one
// accumulator of L lanes starts at +0; lane l takes fma(w[r, c], x[t, c], acc) for
// c = l, l + L, l + 2L, ... over the full vectors in increasing c, then one fma over the tail
// vector (columns K - K % L .. K - 1; x read masked, w zero-padded); then V::hsum's fixed
// tree. The weights multiplied are bit-identical on every path (simd_weights.inl). Every path
// below -- fused decode, tiled prefill, every remainder tile shape, every K-block split
// (partials parked in memory between K blocks are exact) -- performs exactly this sequence,
// so y[t, r] depends on neither n, nor the other tokens, nor [r0, r1), nor the thread count.
//
// Two paths:
//  - fused (decode, n <= kFusedMaxTokens): weights decoded in registers straight from the
//    stored rows, each element read once, kFusedRows rows at a time (streaming).
//  - tiled (prefill): a [kRowsPerTile x kColsPerTile] panel is dequantized once into a per-
//    thread f32 tile (L1) and reused by every token of the block through a register-blocked
//    kT x kR microkernel (kT x-vectors and 1 w-vector feed kT * kR FMAs per step).

template <class V>
struct MatmulRows {
  using F = typename V::F;
  using WD = WeightDecode<V>;
  static constexpr int L = V::kLanes;

  static constexpr int kT = L == 8 ? 3 : 4;  // tokens per register tile
  static constexpr int kR = L == 8 ? 4 : 6;  // rows per register tile (kT * kR + kT + 1 registers)
  static constexpr int64_t kRowsPerTile = 8 * kR;
  static constexpr int64_t kColsPerTile = 512;                 // K block, a multiple of L
  static constexpr int64_t kTokensPerBlock = L == 8 ? 128 : 64;  // bounds the parked partials
  // Fused path: up to kFusedMaxTokens tokens (decode and batched decode; see
  // simd_matmul_fp8.inl), kFusedRows<T> rows per step so that the T * R accumulators, R weight
  // vectors and one x vector fit in the registers (16 on AVX2, 32 on AVX-512).
  static constexpr int kFusedMaxTokens = L == 8 ? 4 : 8;
  template <int T>
  static constexpr int kFusedRows = std::clamp((L == 8 ? 14 : 28) / (T + 1), 1, 4);

  // ---- fused path ---------------------------------------------------------------------

  // y[t * ldy + i] for T tokens (x rows t * ldx) and rows r .. r + R - 1 of the view. Per
  // column vector: the R weight vectors decoded once, each token's x vector loaded once.
  template <DType DT, int T, int R>
  static void fused_group(const LinearWeight& w, int64_t r, const float* x, int64_t ldx, float* y, int64_t ldy) {
    static_assert(DT != DType::F8_E4M3, "FP8 weights go through MatmulFp8");
    const int64_t K = w.cols, k_full = K - K % L;
    const uint8_t* rows[R];
    for (int i = 0; i < R; ++i) rows[i] = w.row_ptr(r + i);
    F acc[T][R];
    for (int t = 0; t < T; ++t)
      for (int i = 0; i < R; ++i) acc[t][i] = V::zero();
    auto step = [&](const F (&wv)[R], auto load_x) {
      for (int t = 0; t < T; ++t) {
        const F xv = load_x(t);
        for (int i = 0; i < R; ++i) acc[t][i] = V::fma(wv[i], xv, acc[t][i]);
      }
    };
    for (int64_t k = 0; k < k_full; k += L) {
      F wv[R];
      for (int i = 0; i < R; ++i) wv[i] = WD::template load<DT>(rows[i], k, V::zero());
      step(wv, [&](int t) { return V::load(x + t * ldx + k); });
    }
    if (k_full < K) {
      F wv[R];
      for (int i = 0; i < R; ++i) {
        alignas(64) float tail[L];
        WD::dequant_segment(w, r + i, k_full, K, L, tail);
        wv[i] = V::load(tail);
      }
      step(wv, [&](int t) { return V::load_partial(x + t * ldx + k_full, static_cast<int>(K - k_full)); });
    }
    for (int t = 0; t < T; ++t)
      for (int i = 0; i < R; ++i) y[t * ldy + i] = V::hsum(acc[t][i]);
  }

  template <DType DT, int T>
  static void fused_rows(const LinearWeight& w, const float* x, int64_t ldx, float* y, int64_t ldy, int64_t r0,
                         int64_t r1) {
    constexpr int R = kFusedRows<T>;
    int64_t r = r0;
    for (; r + R <= r1; r += R) fused_group<DT, T, R>(w, r, x, ldx, y + (r - r0), ldy);
    if constexpr (R > 2)
      if (r + 2 <= r1) fused_group<DT, T, 2>(w, r, x, ldx, y + (r - r0), ldy), r += 2;
    if constexpr (R > 1)
      if (r < r1) fused_group<DT, T, 1>(w, r, x, ldx, y + (r - r0), ldy);
  }

  // fused_rows<T'> for T' = min(n, kFusedMaxTokens), T' >= T.
  template <DType DT, int T = 1>
  static void fused_rows_n(int64_t n, const LinearWeight& w, const float* x, int64_t ldx, float* y, int64_t ldy,
                           int64_t r0, int64_t r1) {
    if constexpr (T < kFusedMaxTokens)
      if (n > T) return fused_rows_n<DT, T + 1>(n, w, x, ldx, y, ldy, r0, r1);
    fused_rows<DT, T>(w, x, ldx, y, ldy, r0, r1);
  }

  template <DType DT>
  static void fused(const LinearWeight& w, const float* x, int64_t n, int64_t ldx, float* y, int64_t ldy, int64_t r0,
                    int64_t r1) {
    for (int64_t t = 0; t < n; t += kFusedMaxTokens)
      fused_rows_n<DT>(n - t, w, x + t * ldx, ldx, y + t * ldy, ldy, r0, r1);
  }

  // ---- tiled path ---------------------------------------------------------------------

  struct MicroArgs {
    const float* tile;    // [rows of the register tile][ld_tile]: column k at tile[k - kb0]
    int64_t ld_tile;
    const float* x;       // token 0 of the register tile, row stride ldx
    int64_t ldx;
    int64_t kb0, kb1, K;  // this K block [kb0, kb1) (multiples of L; kb1 may pass K by < L)
    float* park;          // partials: token t, row i at park[(t * park_ld + i) * L]
    int64_t park_ld;
    bool first, last;     // first K block: start from +0; last: reduce into y
    float* y;             // token 0, row 0 of the register tile, row stride ldy
    int64_t ldy;
  };

  template <int T, int R>
  static void micro(const MicroArgs& a) {
    F acc[T][R];
    for (int t = 0; t < T; ++t)
      for (int i = 0; i < R; ++i) acc[t][i] = a.first ? V::zero() : V::load(a.park + (t * a.park_ld + i) * L);
    const int64_t k_full_end = std::min(a.kb1, a.K - a.K % L);
    const float* wrow[R];
    for (int i = 0; i < R; ++i) wrow[i] = a.tile + i * a.ld_tile - a.kb0;
    int64_t k = a.kb0;
    for (; k < k_full_end; k += L) {
      F xv[T];
      for (int t = 0; t < T; ++t) xv[t] = V::load(a.x + t * a.ldx + k);
      for (int i = 0; i < R; ++i) {
        const F wv = V::load(wrow[i] + k);
        for (int t = 0; t < T; ++t) acc[t][i] = V::fma(wv, xv[t], acc[t][i]);
      }
    }
    if (k < a.kb1) {  // the tail vector, in the last K block only
      F xv[T];
      for (int t = 0; t < T; ++t) xv[t] = V::load_partial(a.x + t * a.ldx + k, static_cast<int>(a.K - k));
      for (int i = 0; i < R; ++i) {
        const F wv = V::load(wrow[i] + k);
        for (int t = 0; t < T; ++t) acc[t][i] = V::fma(wv, xv[t], acc[t][i]);
      }
    }
    for (int t = 0; t < T; ++t)
      for (int i = 0; i < R; ++i) {
        if (a.last) a.y[t * a.ldy + i] = V::hsum(acc[t][i]);
        else V::store(a.park + (t * a.park_ld + i) * L, acc[t][i]);
      }
  }

  using MicroFn = void (*)(const MicroArgs&);
  template <size_t... I>
  static constexpr std::array<MicroFn, sizeof...(I)> make_micro_table(std::index_sequence<I...>) {
    return {&micro<static_cast<int>(I / kR) + 1, static_cast<int>(I % kR) + 1>...};
  }
  // The kT x kR microkernel and its remainders (tt <= kT tokens, rr <= kR rows).
  static MicroFn micro_fn(int64_t tt, int64_t rr) {
    static constexpr auto table = make_micro_table(std::make_index_sequence<kT * kR>{});
    return table[(tt - 1) * kR + (rr - 1)];
  }

  static void tiled(const LinearWeight& w, const float* x, int64_t n, int64_t ldx, float* y, int64_t ldy, int64_t r0,
                    int64_t r1) {
    const int64_t K = w.cols, k_pad = (K + L - 1) / L * L;
    const int64_t kc = std::min(kColsPerTile, k_pad);
    const int64_t tokens_per_block = std::min(n, kTokensPerBlock);
    float* tile = thread_scratch(ScratchSlot::WeightTile, static_cast<size_t>(kRowsPerTile * kc));
    float* park = thread_scratch(ScratchSlot::Accumulators, static_cast<size_t>(tokens_per_block * kRowsPerTile * L));
    MicroArgs a{};
    a.ld_tile = kc;
    a.ldx = ldx;
    a.K = K;
    a.park_ld = kRowsPerTile;
    a.ldy = ldy;
    for (int64_t tb0 = 0; tb0 < n; tb0 += kTokensPerBlock) {
      const int64_t nt = std::min(kTokensPerBlock, n - tb0);
      for (int64_t rb0 = r0; rb0 < r1; rb0 += kRowsPerTile) {
        const int64_t nr = std::min(kRowsPerTile, r1 - rb0);
        for (int64_t kb0 = 0; kb0 < k_pad; kb0 += kc) {
          const int64_t kb1 = std::min(kb0 + kc, k_pad);
          for (int64_t i = 0; i < nr; ++i) WD::dequant_segment(w, rb0 + i, kb0, std::min(kb1, K), kb1 - kb0, tile + i * kc);
          a.kb0 = kb0;
          a.kb1 = kb1;
          a.first = kb0 == 0;
          a.last = kb1 == k_pad;
          for (int64_t tg = 0; tg < nt; tg += kT) {
            const int64_t tt = std::min<int64_t>(kT, nt - tg);
            a.x = x + (tb0 + tg) * ldx;
            for (int64_t rg = 0; rg < nr; rg += kR) {
              const int64_t rr = std::min<int64_t>(kR, nr - rg);
              a.tile = tile + rg * kc;
              a.park = park + (tg * kRowsPerTile + rg) * L;
              a.y = y + (tb0 + tg) * ldy + (rb0 - r0 + rg);
              micro_fn(tt, rr)(a);
            }
          }
        }
      }
    }
  }

  // ---- entry point --------------------------------------------------------------------

  static void run(const LinearWeight& w, const float* x, int64_t n, int64_t ldx, float* y, int64_t ldy, int64_t r0,
                  int64_t r1) {
    if (n <= 0 || r1 <= r0) return;
    if (w.is_fp8()) return MatmulFp8<V>::run(w, x, n, ldx, y, ldy, r0, r1);
    if (n <= kFusedMaxTokens) {
      switch (w.dtype) {
        case DType::BF16: return fused<DType::BF16>(w, x, n, ldx, y, ldy, r0, r1);
        case DType::F16: return fused<DType::F16>(w, x, n, ldx, y, ldy, r0, r1);
        case DType::F32: return fused<DType::F32>(w, x, n, ldx, y, ldy, r0, r1);
        default: DSV3_CHECK(false, "unsupported weight dtype %s", dtype_name(w.dtype));
      }
    }
    tiled(w, x, n, ldx, y, ldy, r0, r1);
  }
};
