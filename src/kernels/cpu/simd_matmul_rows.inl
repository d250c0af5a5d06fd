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
//  - fused (decode and batched decode; on AVX-512 also prefill, kFusedMaxTokens tokens at a
//    time): weights decoded in registers straight from the stored rows, kFusedRows rows at a
//    time (streaming); from kBlockedFrom tokens on in column blocks, partials parked exactly.
//  - tiled (AVX2 prefill): a [kRowsPerTile x kColsPerTile] panel is dequantized once into a per-
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
  // vectors and one x vector fit in the registers (16 on AVX2, 32 on AVX-512). On AVX2 the
  // V3 head with 5-8 tokens takes 0.3-0.45x the time of the tiled path.
  static constexpr int kFusedMaxTokens = 8;
  template <int T>
  static constexpr int kFusedRows = std::clamp((L == 8 ? 14 : 28) / (T + 1), 1, 4);

  // ---- fused path ---------------------------------------------------------------------

  // Many tokens (T >= kBlockedFrom): the columns go in blocks of kBlockCols, each swept over
  // kBlockRows rows, their accumulators parked in memory between blocks (exact), so that
  // the T x rows of a block stay in L1 instead of streaming from L2 for every R rows
  // (measured on Zen 5, V3 head, 8 tokens: 1024 x 24 with the x copy below 1.6x whole rows).
  static constexpr int kBlockedFrom = 4;
  static constexpr int64_t kBlockCols = 1024;  // a multiple of L
  static constexpr int64_t kBlockRows = 24;    // a multiple of every kFusedRows<T >= kBlockedFrom>

  // Rows r .. r + R - 1 of the view, the full vectors in [c0, c1) (multiples of L): acc from
  // `from` (the park, or +0 for the first block), back to `park`. Per column vector the
  // R weight vectors are decoded once and each token's x vector loaded once. Prefetches the
  // bytes pf_delta past each weight byte it reads (the same columns of the next rows, or
  // the next block): the hardware prefetchers alone lag on R interleaved row streams
  // (measured ~1.4x on a BF16 head, one token). One way in and one way out for the
  // accumulators: with the first/last choices and the tail inside, GCC kept a second copy of
  // them on the stack, copied in and out at every block.
  template <DType DT, int T, int R>
  static void fused_block(const LinearWeight& w, int64_t r, int64_t c0, int64_t c1, const float* x, int64_t ldx,
                          const F* from, F* park, int64_t pf_delta) {
    static_assert(DT != DType::F8_E4M3, "FP8 weights go through MatmulFp8");
    constexpr int64_t kVecBytes = L * (DT == DType::F32 ? 4 : 2);
    constexpr int64_t kVecsPerLine = kVecBytes >= 64 ? 1 : 64 / kVecBytes;
    const uint8_t* rows[R];
    for (int i = 0; i < R; ++i) rows[i] = w.row_ptr(r + i);
    F acc[T][R];
    for (int t = 0; t < T; ++t)
      for (int i = 0; i < R; ++i) acc[t][i] = from[t * R + i];
    for (int64_t k = c0; k < c1; k += L) {
      if ((k / L) % kVecsPerLine == 0)
        for (int i = 0; i < R; ++i)
          _mm_prefetch(reinterpret_cast<const char*>(rows[i]) + k * (kVecBytes / L) + pf_delta, _MM_HINT_T0);
      F wv[R];
      for (int i = 0; i < R; ++i) wv[i] = WD::template load<DT>(rows[i], k, V::zero());
      for (int t = 0; t < T; ++t) {
        // Loaded once for the R rows: GCC folded a plain load into each of the R FMAs, so
        // that 8 tokens x 3 rows took 27 loads per 24 FMAs instead of 11 (kernel_bench, 2
        // threads, Zen 5: Moonlight's BF16 head at 8 tokens 22.7-24.2 -> 18.0-19.9 ms; in
        // prefill, attention's F32 scores 3.1% -> 2.4% of the samples).
        const F xv = V::load_kept(x + t * ldx + k);
        for (int i = 0; i < R; ++i) acc[t][i] = V::fma(wv[i], xv, acc[t][i]);
      }
    }
    for (int t = 0; t < T; ++t)
      for (int i = 0; i < R; ++i) park[t * R + i] = acc[t][i];
  }

  // The tail vector of rows r .. r + R - 1 (columns K - K % L .. K - 1) on the parked
  // accumulators: x read masked, w zero-padded.
  template <int T, int R>
  static void fused_tail(const LinearWeight& w, int64_t r, const float* x, int64_t ldx, F* park) {
    const int64_t K = w.cols, k_full = K - K % L;
    F wv[R];
    for (int i = 0; i < R; ++i) {
      alignas(64) float tail[L];
      WD::dequant_segment(w, r + i, k_full, K, L, tail);
      wv[i] = V::load(tail);
    }
    for (int t = 0; t < T; ++t) {
      const F xv = V::load_partial(x + t * ldx + k_full, static_cast<int>(K - k_full));
      for (int i = 0; i < R; ++i) park[t * R + i] = V::fma(wv[i], xv, park[t * R + i]);
    }
  }

  // One column block [c0, c1) of rows r .. r + R - 1 (the last block also takes the tail
  // vector), then, when last, the sums into y (T tokens, row stride ldy).
  template <DType DT, int T, int R>
  static void fused_rows_block(const LinearWeight& w, int64_t r, int64_t c0, int64_t c1, const float* x, int64_t ldx,
                               F* park, bool first, bool last, int64_t pf_delta, float* y, int64_t ldy) {
    const int64_t K = w.cols, k_full = K - K % L;
    fused_block<DT, T, R>(w, r, c0, std::min(c1, k_full), x, ldx, first ? MatmulFp8<V>::zeros() : park, park, pf_delta);
    if (!last) return;
    if (k_full < K) fused_tail<T, R>(w, r, x, ldx, park);
    for (int t = 0; t < T; ++t) V::store_hsums(park + t * R, R, 1.0f, y + t * ldy);
  }

  // Rows [r0, r1), whole rows R at a time, each step prefetching the next R rows.
  template <DType DT, int T>
  static void fused_rows_whole(const LinearWeight& w, const float* x, int64_t ldx, float* y, int64_t ldy, int64_t r0,
                               int64_t r1) {
    constexpr int R = kFusedRows<T>;
    const int64_t K = w.cols, row_bytes = K * dtype_size(DT);
    alignas(64) F park[T * R];
    auto rows = [&]<int RR>(int64_t r) {
      fused_rows_block<DT, T, RR>(w, r, 0, K, x, ldx, park, true, true, RR * row_bytes, y + (r - r0), ldy);
    };
    int64_t r = r0;
    for (; r + R <= r1; r += R) rows.template operator()<R>(r);
    if constexpr (R > 2)
      if (r + 2 <= r1) rows.template operator()<2>(r), r += 2;
    if constexpr (R > 1)
      if (r < r1) rows.template operator()<1>(r);
  }

  // Rows [r0, r1) in blocks of kBlockRows x kBlockCols.
  template <DType DT, int T>
  static void fused_rows_blocked(const LinearWeight& w, const float* x, int64_t ldx, float* y, int64_t ldy, int64_t r0,
                                 int64_t r1) {
    constexpr int R = kFusedRows<T>;
    static_assert(kBlockRows % R == 0 && kBlockCols % L == 0);
    alignas(64) F park[kBlockRows / R][T * R];
    const int64_t K = w.cols, k_full = K - K % L, row_bytes = K * dtype_size(DT);
    // Blocks [c0, c0 + kBlockCols) up to k_full; the last one also takes the tail vector.
    const int64_t n_blocks = std::max<int64_t>(1, (k_full + kBlockCols - 1) / kBlockCols);
    for (int64_t r = r0; r < r1;) {
      const int64_t nb = std::min(kBlockRows, r1 - r);
      for (int64_t b = 0; b < n_blocks; ++b) {
        const int64_t c0 = b * kBlockCols, c1 = b + 1 == n_blocks ? K : c0 + kBlockCols;
        const bool first = b == 0, last = b + 1 == n_blocks;
        const int64_t pf_delta = last ? nb * row_bytes - c0 * dtype_size(DT) : kBlockCols * dtype_size(DT);
        int64_t i = 0;
        for (; i + R <= nb; i += R)
          fused_rows_block<DT, T, R>(w, r + i, c0, c1, x, ldx, park[i / R], first, last, pf_delta, y + (r - r0) + i,
                                     ldy);
        for (; i < nb; ++i)  // the rows of a last, partial group of R
          fused_rows_block<DT, T, 1>(w, r + i, c0, c1, x, ldx, park[i / R] + (i % R) * T, first, last, pf_delta,
                                y + (r - r0) + i, ldy);
      }
      r += nb;
    }
  }

  template <DType DT, int T>
  static void fused_rows(const LinearWeight& w, const float* x, int64_t ldx, float* y, int64_t ldy, int64_t r0,
                         int64_t r1) {
    if constexpr (T >= kBlockedFrom) fused_rows_blocked<DT, T>(w, x, ldx, y, ldy, r0, r1);
    else fused_rows_whole<DT, T>(w, x, ldx, y, ldy, r0, r1);
  }

  // fused_rows<T'> for T' = min(n, kFusedMaxTokens), T' >= T.
  template <DType DT, int T = 1>
  static void fused_rows_n(int64_t n, const LinearWeight& w, const float* x, int64_t ldx, float* y, int64_t ldy,
                           int64_t r0, int64_t r1) {
    if constexpr (T < kFusedMaxTokens)
      if (n > T) return fused_rows_n<DT, T + 1>(n, w, x, ldx, y, ldy, r0, r1);
    fused_rows<DT, T>(w, x, ldx, y, ldy, r0, r1);
  }

  // Up to kFusedChunkedMaxTokens tokens at a time the fused path runs kFusedMaxTokens tokens
  // at a time over bands of rows small enough to stay in L2 from one chunk of tokens to the
  // next; more tokens go kFusedChunkedMaxTokens at a time, on AVX-512 only (see
  // simd_matmul_fp8.inl; V3 head, n = 256 and 512, 2 threads, Zen 5: 1.1-1.2x the tiled path).
  static constexpr int64_t kFusedChunkedMaxTokens = 64;
  static constexpr int64_t kFusedAllTokensUpTo = L == 16 ? std::numeric_limits<int64_t>::max() : kFusedChunkedMaxTokens;
  static constexpr int64_t kBandBytes = 512 << 10;

  template <DType DT>
  static void fused(const LinearWeight& w, const float* x, int64_t n, int64_t ldx, float* y, int64_t ldy, int64_t r0,
                    int64_t r1) {
    for (int64_t t0 = 0; t0 < n; t0 += kFusedChunkedMaxTokens)
      fused_chunk<DT>(w, x + t0 * ldx, std::min(kFusedChunkedMaxTokens, n - t0), ldx, y + t0 * ldy, ldy, r0, r1);
  }

  // fused() for n <= kFusedChunkedMaxTokens.
  template <DType DT>
  static void fused_chunk(const LinearWeight& w, const float* x, int64_t n, int64_t ldx, float* y, int64_t ldy,
                          int64_t r0, int64_t r1) {
    // x copied with rows one cache line apart: rows whose stride is a multiple of 4 KiB
    // (hidden sizes 2048, 7168) would share L1 sets (measured 1.6x on the V3 head, 8 tokens).
    const int64_t K = w.cols, ld = (K + 15) / 16 * 16 + 16;
    float* xc = thread_scratch(ScratchSlot::Activations, static_cast<size_t>(n * ld));
    for (int64_t t = 0; t < n; ++t) std::memcpy(xc + t * ld, x + t * ldx, sizeof(float) * K);
    const int64_t band = n <= kFusedMaxTokens
                             ? r1 - r0
                             : std::max<int64_t>(kBlockRows, kBandBytes / (K * dtype_size(DT)) / kBlockRows * kBlockRows);
    for (int64_t b0 = r0; b0 < r1; b0 += band) {
      const int64_t b1 = std::min(r1, b0 + band);
      for (int64_t t = 0; t < n; t += kFusedMaxTokens)
        fused_rows_n<DT>(std::min<int64_t>(kFusedMaxTokens, n - t), w, xc + t * ld, ld, y + t * ldy + (b0 - r0), ldy,
                         b0, b1);
    }
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
    if (w.is_grouped_int()) return IntKernelOf<V>::type::run(w, x, n, ldx, y, ldy, r0, r1);  // simd_matmul_int.inl
    if (n <= kFusedAllTokensUpTo) {
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
