// KernelTable::matmul_rows for FP8 e4m3 weights with block scales, for one Vec type:
// y[t, r - r0] = sum_c x[t, c] W[r, c] for rows [r0, r1) and all n tokens. Included inside a
// target region after simd_weights.inl; MatmulRows<V>::run hands every FP8 weight here.
//
// Why a scheme of its own. Decode (n = 1) reads each weight byte once and does one FMA with
// it, so its speed is the cost of turning a byte into a float. Two things make that cheap:
//   - V::decode_fp8_quad turns 4L bytes into 4 vectors with 9 integer operations and no
//     conversion instruction, at the price of a column order inside each group of 4L
//     columns (vector j, lane l holds column 4l + j);
//   - the block scale is folded into the activations, once per scale block of rows, instead
//     of multiplying every weight vector.
//
// Definitions (L lanes; G = 4L columns per group; K_pad = K rounded up to G):
//   w'[r, c] = e4m3(W[r, c]) * 2^-120    exact (the byte's bits placed in an f32; e4m3
//                                        subnormals become f32 subnormals), 0 for c >= K
//   x'[t, c] = x[t, c] * (s[r / block_rows][c / block_cols] * 2^90)   one f32 rounding;
//                                        0 for c >= K
// so w' * x' = e4m3 * fl(x * s) * 2^-30. Against the oracle's fl(e4m3 * s) * x each product
// moves by at most one rounding (u = 2^-24 relative), which the tolerance of the kernel tests
// covers. The 2^90 / 2^30 split keeps x' finite for |x * s| < 2^38 and the products normal
// down to |x * s * e4m3| ~ 2^-96.
//
// Both operands are laid out in the group order: [token][K_pad], vector j of group g at
// gG + jL (lane l: column gG + 4l + j). Activations are put in that order and scaled in one
// pass per scale block of rows (permute_scaled); weights are decoded in that order by
// construction.
//
// THE REDUCTION ORDER (batch-invariance contract, FP8). For every (t, r), one accumulator of
// L lanes starts at +0 and takes fma(w' vector, x' vector, acc) for the vectors in layout
// order (group 0's vectors 0..3, group 1's, ...); then y = V::hsum(acc) * 2^30. Both paths
// below -- fused (decode, batched decode, AVX-512 prefill: weights decoded in registers; for
// many tokens in column blocks) and tiled (AVX2 prefill: a decoded tile reused by a block of
// tokens) -- with partials parked in memory between column blocks, exactly -- perform this
// sequence, so y[t, r] depends on neither n, nor the other tokens, nor [r0, r1), nor the
// thread count.

template <class V>
struct MatmulFp8 {
  using F = typename V::F;
  static constexpr int L = V::kLanes;
  static constexpr int64_t G = 4 * L;
  static constexpr float kXScale = 0x1p90f;
  static constexpr float kYScale = 0x1p30f;  // 2^120 / 2^90

  // Fused path: up to kFusedMaxTokens tokens (decode, and the batched decode of a server:
  // experts with a few tokens each, attention and the shared experts with one per
  // sequence), each weight byte decoded once in registers and used by every token. Rows per
  // step: enough independent accumulator chains (T * R) to hide the FMA latency, as the
  // registers allow (16 on AVX2: one row from 5 tokens on; 32 on AVX-512).
  static constexpr int kFusedMaxTokens = 8;
  // Few tokens: one row's group decoded at a time, the token's x' vector loaded for each
  // FMA. Many (AVX-512, T >= 4): the rows' groups decoded together, each x' vector loaded
  // once and used for several rows, in column blocks (fused_rows_blocked). T = 4 went the
  // first way (R = 4, 1.2x faster than 4 tokens x 2 rows the second way) until the second
  // took 4 tokens x 4 rows: then 1.2-1.7x faster at 4 tokens from memory (kernel_bench,
  // V3 and Moonlight shapes, 1 and 2 threads, Zen 5), a batched decode of 4 sequences
  // 1.01-1.35x in 6 rounds. On AVX2, 5-8 tokens fused take 0.6-0.7x the time of the tiled
  // path.
  template <int T>
  static constexpr bool kSharedLoads = L == 16 && T >= 4;
  static constexpr int fused_rows_for(int t) {
    if (t == 1) return 8;
    if (L == 16) return t <= 3 ? 8 : 2;  // 2: the blocked loop at 5-7 tokens (4 and 8: 4 rows)
    return t == 2 ? 4 : t <= 4 ? 2 : 1;  // AVX2: T * R + 4 decoded + temps <= 16
  }
  template <int T>
  static constexpr int kFusedRows = fused_rows_for(T);
  // Tiled path: a [kRowsPerTile x kColsPerTile] panel of w' is decoded once into a per-thread
  // tile (L2) and used by every token of the block through a kT x kR register tile (kT
  // x'-vectors and 1 w'-vector feed kT * kR FMAs per step).
  static constexpr int kT = L == 8 ? 3 : 4;
  static constexpr int kR = L == 8 ? 4 : 6;
  static constexpr int64_t kRowsPerTile = 8 * kR;
  static constexpr int64_t kColsPerTile = 512;                   // K block, a multiple of G
  static constexpr int64_t kTokensPerBlock = L == 8 ? 128 : 64;  // bounds the parked partials

  static int64_t padded(int64_t k) { return (k + G - 1) / G * G; }
  // Row stride of the activation buffers: K_pad plus one cache line, so that the token rows
  // a register tile reads together do not all map to the same L1 sets (K_pad * 4 bytes is
  // often a multiple of 4 KiB).
  static int64_t act_stride(int64_t k) { return padded(k) + 16; }

  // xs[t * ld + ...] = x' of n tokens (x rows ldx apart) for the scale row of view row r: x
  // in the group order, times the scales (times 2^90), zeros past K. One pass per scale block
  // of rows, straight from x: before, x was put in order once per call into a buffer and
  // scaled from there per scale block, and prefill spent 3% of its time ordering and 5%
  // scaling, mostly moving the 64-token blocks through L2 (perf, Zen 5); 7% in this one.
  static void permute_scaled(const LinearWeight& w, int64_t r, const float* x, int64_t n, int64_t ldx, int64_t ld,
                             float* xs) {
    const int64_t k = w.cols, kp = padded(k), full = k / G * G, bc = w.block_cols;
    const float* s = w.row_scales(r);
    for (int64_t c = 0; c < kp; c += G) {
      F sv[4];  // the scale of each vector's lanes (columns c + 4l + j), times 2^90
      if (bc % G == 0) {
        sv[0] = sv[1] = sv[2] = sv[3] = V::set1(s[c / bc] * kXScale);
      } else {
        for (int j = 0; j < 4; ++j) {
          alignas(64) float f[L];
          for (int l = 0; l < L; ++l) {
            const int64_t col = c + 4 * l + j;
            f[l] = col < k ? s[col / bc] * kXScale : 0.0f;
          }
          sv[j] = V::load(f);
        }
      }
      for (int64_t t = 0; t < n; ++t) {
        F v[4];
        if (c < full) {
          V::deinterleave4(x + t * ldx + c, v);
        } else {  // the last, partial group: zeros past K
          alignas(64) float tail[G] = {};
          std::copy(x + t * ldx + c, x + t * ldx + k, tail);
          V::deinterleave4(tail, v);
        }
        for (int j = 0; j < 4; ++j) V::store(xs + t * ld + c + j * L, V::mul(v[j], sv[j]));
      }
    }
  }

  // First view row past r's scale block.
  static int64_t block_end(const LinearWeight& w, int64_t r) {
    return ((w.first_row + r) / w.block_rows + 1) * w.block_rows - w.first_row;
  }

  // The group at column c of a row as V::Fp8Halves (V::fp8_vector makes its 4 vectors of w');
  // bytes past K read as 0 (never reads past the row).
  static typename V::Fp8Halves group_halves(const uint8_t* row, int64_t c, int64_t k) {
    if (c + G <= k) return V::fp8_halves(row + c);
    alignas(64) uint8_t pad[G] = {};
    if (c < k) std::memcpy(pad, row + c, static_cast<size_t>(k - c));
    return V::fp8_halves(pad);
  }
  // Its 4 vectors.
  static void decode_group(const uint8_t* row, int64_t c, int64_t k, F v[4]) {
    const auto h = group_halves(row, c, k);
    for (int j = 0; j < 4; ++j) v[j] = V::fp8_vector(h, j);
  }

  // ---- fused path ---------------------------------------------------------------------

  // acc[t][i] += the group at column c of row i times token t's x', j = 0..3 in order (the
  // reduction order above, whichever loop nest). decode(i, v) yields row i's 4 vectors.
  template <int T, int R, class Decode>
  static void accumulate_group(int64_t c, const float* xs, int64_t ld, F (&acc)[T][R], Decode decode) {
    if constexpr (kSharedLoads<T>) {
      F v[R][4];
      for (int i = 0; i < R; ++i) decode(i, v[i]);
      for (int j = 0; j < 4; ++j)
        for (int t = 0; t < T; ++t) {
          const F xv = V::load_kept(xs + t * ld + c + j * L);
          for (int i = 0; i < R; ++i) acc[t][i] = V::fma(v[i][j], xv, acc[t][i]);
        }
    } else {
      for (int i = 0; i < R; ++i) {
        F v[4];
        decode(i, v);
        for (int j = 0; j < 4; ++j)
          for (int t = 0; t < T; ++t) acc[t][i] = V::fma(v[j], V::load(xs + t * ld + c + j * L), acc[t][i]);
      }
    }
  }

  // The same sum for 4 tokens of 4 rows in the blocked path: halves(i) yields row i's
  // V::Fp8Halves, and vector j of the 4 rows is made right before its 16 FMAs. All 16
  // vectors made first (accumulate_group) would not fit in 32 registers beside 16
  // accumulators; this way 16 accumulators, 8 halves, 4 vectors and one x' vector do.
  template <int T, int R, class Halves>
  static void accumulate_group_per_vector(int64_t c, const float* xs, int64_t ld, F (&acc)[T][R], Halves halves) {
    typename V::Fp8Halves h[R];
    for (int i = 0; i < R; ++i) h[i] = halves(i);
    for (int j = 0; j < 4; ++j) {
      F v[R];
      for (int i = 0; i < R; ++i) v[i] = V::fp8_vector(h[i], j);
      for (int t = 0; t < T; ++t) {
        const F xv = V::load_kept(xs + t * ld + c + j * L);
        for (int i = 0; i < R; ++i) acc[t][i] = V::fma(v[i], xv, acc[t][i]);
      }
    }
  }

  // y[t * ldy + i] for T tokens (x' rows t * ld) and view rows r .. r + R - 1 (one scale
  // block).
  template <int T, int R>
  static void fused_step(const LinearWeight& w, int64_t r, const float* xs, int64_t ld, float* y, int64_t ldy) {
    const int64_t k = w.cols, full = k / G * G;
    const uint8_t* rows[R];
    for (int i = 0; i < R; ++i) rows[i] = w.row_ptr(r + i);
    F acc[T][R];
    for (int t = 0; t < T; ++t)
      for (int i = 0; i < R; ++i) acc[t][i] = V::zero();
    // Prefetch the next R rows (stored right after these), spread over the loop: the
    // hardware prefetchers alone ramp up too slowly on R short interleaved streams (rows of
    // 1-7 KB; measured 1.5-2x on expert-sized matrices).
    const char* next = reinterpret_cast<const char*>(rows[0]) + R * k * dtype_size(DType::F8_E4M3);
    const int64_t per_group = (R * G + 63) / 64;  // lines of the next rows per group of these
    for (int64_t c = 0, line = 0; c < full; c += G) {
      for (int64_t p = 0; p < per_group; ++p, ++line) _mm_prefetch(next + line * 64, _MM_HINT_T0);
      accumulate_group<T, R>(c, xs, ld, acc, [&](int i, F* v) { V::decode_fp8_quad(rows[i] + c, v); });
    }
    if (full < k) accumulate_group<T, R>(full, xs, ld, acc, [&](int i, F* v) { decode_group(rows[i], full, k, v); });
    for (int t = 0; t < T; ++t) V::store_hsums(acc[t], R, kYScale, y + t * ldy);
  }

  // Many tokens (kSharedLoads): T tokens' x' rows (T * K_pad floats) would not stay in L1,
  // and streaming them from L2 for every pair of rows halves the FMA rate. So the columns go
  // in blocks (an x' block of T * block-columns floats stays in L1), each block swept over
  // kBlockRows rows, R at a time, their accumulators parked in memory between blocks
  // (exactly, as the tiled path does): the same FMAs in the same order. Measured on Zen 5
  // (V3 expert_down 7168 x 2048, 8 tokens, 2 threads): 256 x 32, with each x' vector kept in
  // a register for its R rows (V::load_kept), 1.6x whole rows; then, once a block's
  // accumulators stayed in registers (fused_block), 512 x 32 beat 256, 768 and 1024 wide
  // blocks (1 thread: 1.21 against 1.38 ms for 256).
  //
  // 8 tokens (a prefill chunk's usual step) go as two groups of 4 tokens x 4 rows over
  // 1024-column blocks instead (kGroupTokens), and 4 tokens as one such group. A block's
  // fixed cost (its accumulators loaded and parked, its pointers set up: ~30 cycles, against
  // 256 for a 512-column block of 8 x 2) is then spread over twice the FMAs, with the same
  // 16 KB of x' in L1; each x' vector serves 4 rows instead of 2, and each decoded weight
  // vector 4 tokens instead of 8 (its integer work runs beside the FMAs). Both groups sweep
  // a band's 32 rows before the next band, so the second reads the band's weights from L2.
  static constexpr int64_t kBlockCols = 512;  // a multiple of G
  static constexpr int64_t kBlockRows = 32;
  template <int T>
  static constexpr bool kGroupsOf4 = T % 4 == 0;
  template <int T>
  static constexpr int kGroupTokens = kGroupsOf4<T> ? 4 : T;
  template <int T>
  static constexpr int kBlockedRows = kGroupsOf4<T> ? 4 : kFusedRows<T>;
  template <int T>
  static constexpr int64_t kBlockedCols = kGroupsOf4<T> ? 2 * kBlockCols : kBlockCols;

  // +0 accumulators for a first block to start from (T * R <= 32).
  static const F* zeros() {
    alignas(64) static const F z[32] = {};
    return z;
  }

  // Rows r .. r + R - 1, the groups in [c0, c1): acc from `from` (the park, or +0 for the
  // first block), back to `park`; halves(row, c) yields a row's group at column c as
  // V::Fp8Halves. With 4 rows (kBlockedRows), each vector is made right before its FMAs
  // (accumulate_group_per_vector); else all 4 of each row first.
  // Prefetches the bytes pf_delta past each byte it reads (the next block of these rows, or
  // the first block of the next rows). One way in and one way out for the accumulators:
  // with the first/last choices and the partial last group inside, GCC kept a second copy of
  // them on the stack, copied in and out at every block (a quarter of the time at 8 tokens,
  // Zen 5); so the partial group is a call of its own (group_halves).
  template <int T, int R, class Halves>
  static void fused_block(const LinearWeight& w, int64_t r, int64_t c0, int64_t c1, const float* xs, int64_t ld,
                          const F* from, F* park, int64_t pf_delta, Halves halves) {
    const uint8_t* rows[R];
    for (int i = 0; i < R; ++i) rows[i] = w.row_ptr(r + i);
    F acc[T][R];
    for (int t = 0; t < T; ++t)
      for (int i = 0; i < R; ++i) acc[t][i] = from[t * R + i];
    for (int64_t c = c0; c < c1; c += G) {
      for (int i = 0; i < R; ++i) _mm_prefetch(reinterpret_cast<const char*>(rows[i] + c + pf_delta), _MM_HINT_T0);
      if constexpr (R == 4) {
        accumulate_group_per_vector<T, R>(c, xs, ld, acc, [&](int i) { return halves(rows[i], c); });
      } else {
        accumulate_group<T, R>(c, xs, ld, acc, [&](int i, F* v) {
          const auto h = halves(rows[i], c);
          for (int j = 0; j < 4; ++j) v[j] = V::fp8_vector(h, j);
        });
      }
    }
    for (int t = 0; t < T; ++t)
      for (int i = 0; i < R; ++i) park[t * R + i] = acc[t][i];
  }

  template <int T>
  static void fused_rows_blocked(const LinearWeight& w, int64_t r, int64_t r_end, const float* xs, int64_t ld,
                                 float* y, int64_t ldy) {
    constexpr int TG = kGroupTokens<T>, R = kBlockedRows<T>, NG = T / TG;
    constexpr int64_t BC = kBlockedCols<T>;
    static_assert(T % TG == 0 && kBlockRows % R == 0 && BC % G == 0 && TG * R <= 32);
    alignas(64) F park[NG][kBlockRows / R][TG * R];
    const int64_t k = w.cols, kp = padded(k), full = k / G * G;
    // Group of RR rows at view row rr, its park p, the tokens at x' rows xg: one column block.
    auto block = [&]<int RR>(int64_t rr, const float* xg, F* p, int64_t c0, int64_t c1, bool first,
                             int64_t pf_delta) {
      const int64_t full_end = std::min(c1, full);
      fused_block<TG, RR>(w, rr, c0, full_end, xg, ld, first ? zeros() : p, p, pf_delta,
                          [](const uint8_t* row, int64_t c) { return V::fp8_halves(row + c); });
      if (full_end < c1)  // the last, partial group of the rows (columns full .. K - 1)
        fused_block<TG, RR>(w, rr, full_end, c1, xg, ld, p, p, 0,
                            [&](const uint8_t* row, int64_t c) { return group_halves(row, c, k); });
    };
    for (; r < r_end; y += kBlockRows) {
      const int64_t nb = std::min(kBlockRows, r_end - r), whole = nb / R * R;
      for (int g = 0; g < NG; ++g) {
        const float* xg = xs + g * TG * ld;
        for (int64_t c0 = 0; c0 < kp; c0 += BC) {
          const int64_t c1 = std::min(kp, c0 + BC);
          const bool first = c0 == 0, last = c1 == kp;
          // Next: this block's rows further on, else the next group's first block (these
          // rows), else the next band's.
          const int64_t pf_delta = !last ? BC : g + 1 < NG ? -c0 : nb * k - c0;
          int64_t i = 0;
          for (; i < whole; i += R) block.template operator()<R>(r + i, xg, park[g][i / R], c0, c1, first, pf_delta);
          for (; i < nb; ++i)  // the rows of a last, partial group of R
            block.template operator()<1>(r + i, xg, park[g][i / R] + (i % R) * TG, c0, c1, first, pf_delta);
        }
      }
      // The band's sums, four rows of a token at a time.
      // Row i's accumulator of token t (group g = t / TG, u = t % TG): rows in whole groups
      // of R at park[g][i / R][u * R + i % R], the rest one row per group at
      // park[g][i / R][(i % R) * TG + u] (see block<1> above).
      auto acc = [&](int64_t i, int t) -> const F& {
        const int g = t / TG, u = t % TG;
        return i < whole ? park[g][i / R][u * R + i % R] : park[g][i / R][(i % R) * TG + u];
      };
      for (int t = 0; t < T; ++t) {
        int64_t i = 0;
        for (; i + 4 <= nb; i += 4) {
          const F four[4] = {acc(i, t), acc(i + 1, t), acc(i + 2, t), acc(i + 3, t)};
          V::store_hsums(four, 4, kYScale, y + t * ldy + i);
        }
        for (; i < nb; ++i) y[t * ldy + i] = V::hsum(acc(i, t)) * kYScale;
      }
      r += nb;
    }
  }

  template <int T>
  static void fused_rows(const LinearWeight& w, int64_t r, int64_t r_end, const float* xs, int64_t ld, float* y,
                         int64_t ldy) {
    if constexpr (kSharedLoads<T>) {
      fused_rows_blocked<T>(w, r, r_end, xs, ld, y, ldy);
    } else {
      constexpr int R = kFusedRows<T>;
      for (; r + R <= r_end; r += R, y += R) fused_step<T, R>(w, r, xs, ld, y, ldy);
      if constexpr (R > 4)
        if (r + 4 <= r_end) fused_step<T, 4>(w, r, xs, ld, y, ldy), r += 4, y += 4;
      if (r + 2 <= r_end) fused_step<T, 2>(w, r, xs, ld, y, ldy), r += 2, y += 2;
      if (r < r_end) fused_step<T, 1>(w, r, xs, ld, y, ldy);
    }
  }

  // fused_rows<n> for n in [T, kFusedMaxTokens].
  template <int T>
  static void fused_rows_n(int64_t n, const LinearWeight& w, int64_t r, int64_t r_end, const float* xs, int64_t ld,
                           float* y, int64_t ldy) {
    if constexpr (T < kFusedMaxTokens)
      if (n > T) return fused_rows_n<T + 1>(n, w, r, r_end, xs, ld, y, ldy);
    fused_rows<T>(w, r, r_end, xs, ld, y, ldy);
  }

  // Up to kFusedChunkedMaxTokens tokens at a time (a prefill chunk, or a batch of many
  // sequences) the fused path runs kFusedMaxTokens tokens at a time over each scale block of
  // rows, whose weights (128 rows) stay in L2 from one chunk of tokens to the next: faster
  // than the tiled path there (V3 expert_down, 2 threads, Zen 5: n = 12 1.9 -> 1.2 ms, n = 32
  // 4.2 -> 3.0 ms). More tokens go kFusedChunkedMaxTokens at a time, which bounds the rows
  // of x read again for each scale block (64 tokens x 2048 floats: 512 KB, in L2; 32 ran as
  // fast in prefill, 128 slower). On AVX-512 that beats the tiled path at any count (2
  // threads, Zen 5, n = 256 and 512: V3 expert gate/up and down, dense gate/up, kv_a
  // 1.15-1.3x); on AVX2 (half the registers, no shared loads) the tiled path stays 1.35x
  // faster at 256.
  static constexpr int64_t kFusedChunkedMaxTokens = 64;
  static constexpr int64_t kFusedAllTokensUpTo = L == 16 ? std::numeric_limits<int64_t>::max() : kFusedChunkedMaxTokens;

  static void fused(const LinearWeight& w, const float* x, int64_t n, int64_t ldx, float* y, int64_t ldy, int64_t r0,
                    int64_t r1) {
    for (int64_t t0 = 0; t0 < n; t0 += kFusedChunkedMaxTokens)
      fused_chunk(w, x + t0 * ldx, std::min(kFusedChunkedMaxTokens, n - t0), ldx, y + t0 * ldy, ldy, r0, r1);
  }

  // fused() for n <= kFusedChunkedMaxTokens. x' is prepared for kFusedMaxTokens tokens at a
  // time, right before the rows use it, so that it is written and read in L1/L2: prepared
  // for the whole chunk at once (528 KB at K = 2048), it pushed the scale block's weights
  // out of L2 (exact prefill of 512 tokens, Moonlight 8 layers, 2 threads, Zen 5: 1.025-1.04x
  // in two alternated A/Bs of 5 and 6 rounds).
  static void fused_chunk(const LinearWeight& w, const float* x, int64_t n, int64_t ldx, float* y, int64_t ldy,
                          int64_t r0, int64_t r1) {
    const int64_t ld = act_stride(w.cols);
    float* xs = thread_scratch(ScratchSlot::ScaledActivations,
                               static_cast<size_t>(std::min<int64_t>(n, kFusedMaxTokens) * ld));
    for (int64_t r = r0; r < r1;) {
      const int64_t r_end = std::min(r1, block_end(w, r));
      for (int64_t t = 0; t < n; t += kFusedMaxTokens) {
        const int64_t nt = std::min<int64_t>(kFusedMaxTokens, n - t);
        permute_scaled(w, r, x + t * ldx, nt, ldx, ld, xs);
        fused_rows_n<1>(nt, w, r, r_end, xs, ld, y + t * ldy + (r - r0), ldy);
      }
      r = r_end;
    }
  }

  // ---- tiled path ---------------------------------------------------------------------

  struct MicroArgs {
    const float* tile;  // w' of the register tile's row 0, this K block; row stride kColsPerTile
    const float* xs;    // x' of the register tile's token 0, this K block; row stride ld_xs
    int64_t ld_xs;
    int64_t width;      // columns of this K block (a multiple of G)
    float* park;        // partials: token t, row i at park[(t * kRowsPerTile + i) * L]
    bool first, last;   // first K block: start from +0; last: reduce into y
    float* y;           // token 0, row 0 of the register tile, row stride ldy
    int64_t ldy;
  };

  template <int T, int R>
  static void micro(const MicroArgs& a) {
    F acc[T][R];
    for (int t = 0; t < T; ++t)
      for (int i = 0; i < R; ++i) acc[t][i] = a.first ? V::zero() : V::load(a.park + (t * kRowsPerTile + i) * L);
    for (int64_t c = 0; c < a.width; c += L) {
      F xv[T];
      for (int t = 0; t < T; ++t) xv[t] = V::load(a.xs + t * a.ld_xs + c);
      for (int i = 0; i < R; ++i) {
        const F wv = V::load(a.tile + i * kColsPerTile + c);
        for (int t = 0; t < T; ++t) acc[t][i] = V::fma(wv, xv[t], acc[t][i]);
      }
    }
    for (int t = 0; t < T; ++t)
      for (int i = 0; i < R; ++i) {
        if (a.last) a.y[t * a.ldy + i] = V::hsum(acc[t][i]) * kYScale;
        else V::store(a.park + (t * kRowsPerTile + i) * L, acc[t][i]);
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
    static_assert(kColsPerTile % G == 0);
    const int64_t k = w.cols, kp = padded(k), ld = act_stride(k), full = k / G * G;
    const int64_t block_tokens = std::min(n, kTokensPerBlock);
    float* tile = thread_scratch(ScratchSlot::WeightTile, static_cast<size_t>(kRowsPerTile * kColsPerTile));
    float* park = thread_scratch(ScratchSlot::Accumulators, static_cast<size_t>(block_tokens * kRowsPerTile * L));
    float* xs = thread_scratch(ScratchSlot::ScaledActivations, static_cast<size_t>(block_tokens * ld));
    MicroArgs a{};
    a.ld_xs = ld;
    a.ldy = ldy;
    for (int64_t tb0 = 0; tb0 < n; tb0 += kTokensPerBlock) {
      const int64_t nt = std::min(kTokensPerBlock, n - tb0);
      int64_t scaled_until = r0;  // xs holds x' for the scale block of the rows before this
      for (int64_t rt0 = r0; rt0 < r1;) {
        const int64_t b_end = block_end(w, rt0);
        if (rt0 >= scaled_until) {
          permute_scaled(w, rt0, x + tb0 * ldx, nt, ldx, ld, xs);
          scaled_until = b_end;
        }
        // A tile never spans two scale blocks: one x' serves all its rows.
        const int64_t nr = std::min({kRowsPerTile, r1 - rt0, b_end - rt0});
        for (int64_t kb0 = 0; kb0 < kp; kb0 += kColsPerTile) {
          const int64_t width = std::min(kColsPerTile, kp - kb0), full_end = std::min(kb0 + width, full);
          for (int64_t i = 0; i < nr; ++i) {
            const uint8_t* row = w.row_ptr(rt0 + i);
            float* dst = tile + i * kColsPerTile - kb0;
            int64_t c = kb0;
            for (; c < full_end; c += G) {
              F v[4];
              V::decode_fp8_quad(row + c, v);
              for (int j = 0; j < 4; ++j) V::store(dst + c + j * L, v[j]);
            }
            for (; c < kb0 + width; c += G) {
              F v[4];
              decode_group(row, c, k, v);
              for (int j = 0; j < 4; ++j) V::store(dst + c + j * L, v[j]);
            }
          }
          a.width = width;
          a.first = kb0 == 0;
          a.last = kb0 + width == kp;
          for (int64_t tg = 0; tg < nt; tg += kT) {
            const int64_t tt = std::min<int64_t>(kT, nt - tg);
            a.xs = xs + tg * ld + kb0;
            for (int64_t rg = 0; rg < nr; rg += kR) {
              const int64_t rr = std::min<int64_t>(kR, nr - rg);
              a.tile = tile + rg * kColsPerTile;
              a.park = park + (tg * kRowsPerTile + rg) * L;
              a.y = y + (tb0 + tg) * ldy + (rt0 - r0 + rg);
              micro_fn(tt, rr)(a);
            }
          }
        }
        rt0 += nr;
      }
    }
  }

  static void run(const LinearWeight& w, const float* x, int64_t n, int64_t ldx, float* y, int64_t ldy, int64_t r0,
                  int64_t r1) {
    if (n <= kFusedAllTokensUpTo) return fused(w, x, n, ldx, y, ldy, r0, r1);
    tiled(w, x, n, ldx, y, ldy, r0, r1);
  }
};
