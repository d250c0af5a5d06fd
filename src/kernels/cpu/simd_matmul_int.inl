// KernelTable::matmul_rows for the grouped integer formats (I8 int8, U8 packed int4, with an
// F16 scale per group of group_size columns; tensor/linear_weight.h), for one Vec type.
// Included inside a target region after simd_weights.inl and before simd_matmul_rows.inl,
// whose MatmulRows::run hands these weights here.
//
// Integer dot products on int8 activations (kernels/q8_activations.h has the numerics): the
// activations are quantized per group once per product, each 4 * L weight bytes multiply
// their activation bytes in one unsigned x signed byte dot product into L int32 lanes
// (vpdpbusd with AVX512-VNNI; vpmaddubsw + vpmaddwd otherwise, which never saturates here),
// and each lane's exact integer sum per block goes to float once: times the lane's weight
// scale times its activation scale, added into a float accumulator. So a weight byte costs
// about a quarter of an instruction instead of the three or four of decoding it to float.
//   int8: with VNNI, the bytes read as unsigned q + 128 (one xor), the 128s taken back out as
//         int4's 8s below; without, |q| times x with q's sign (vpmaddubsw would saturate);
//   int4: the nibbles read as unsigned q + 8 (one xor of the byte), low nibbles against the
//         block's even columns, high ones against its odd ones (the activations are laid out
//         so), the 8s taken back out by starting each lane at -8 * sum of its activations.
//
// THE REDUCTION ORDER (batch invariance). For every (t, r), one float accumulator of L lanes
// starts at +0 and takes, block by block in increasing column order, fma(float(lane's integer
// sum over the block), sw * sx, acc); then V::hsum. The integer sums are exact, so the only
// roundings are these, whatever the number of tokens or rows computed together: decode and
// prefill, every band and thread split, give the same bits per token. (Different from the
// 8-lane tables' order: paths differ in the last bits, each within the oracle's tolerance.)
//
// Prefill: tiles of up to kMaxTokens tokens x kRows rows, each token's data of a block one
// record of the activation layout (kernels/q8_activations.h), a tile's records side by side.
// Where a block is one group (and on AVX-512), sw * sx is one float per (t, r, block): the
// products mode computes them L blocks at a time (the same IEEE products) and broadcasts each
// into its fma; the order of the roundings above is unchanged.

template <int L, bool kVnni>
struct IntOps;

template <bool kVnni>
struct IntOps<16, kVnni> {
  using I = __m512i;
  using F = __m512;
  static I load(const void* p) { return _mm512_loadu_si512(p); }
  static I zero() { return _mm512_setzero_si512(); }
  static I bytes(char b) { return _mm512_set1_epi8(b); }
  static I and_(I a, I b) { return _mm512_and_si512(a, b); }
  static I xor_(I a, I b) { return _mm512_xor_si512(a, b); }
  static I srl16(I a, int n) { return _mm512_srli_epi16(a, n); }
  static I abs8(I a) { return _mm512_abs_epi8(a); }
  // x with the sign of w (0 where w is 0 is not needed: |w| is 0 there).
  static I sign_of(I x, I w) { return _mm512_mask_sub_epi8(x, _mm512_movepi8_mask(w), _mm512_setzero_si512(), x); }
  // acc + sum over each lane's 4 bytes of u (unsigned) * s (signed).
  static I dot(I acc, I u, I s) {
    if constexpr (kVnni) {
      return _mm512_dpbusd_epi32(acc, u, s);
    } else {
      const I pairs = _mm512_maddubs_epi16(u, s);  // |u * s| pairs <= 2 * 128 * 127 < 2^15
      return _mm512_add_epi32(acc, _mm512_madd_epi16(pairs, _mm512_set1_epi16(1)));
    }
  }
  static F to_float(I a) { return _mm512_cvtepi32_ps(a); }
  static F permute(I idx, F v) { return _mm512_permutexvar_ps(idx, v); }
  // 16 F16 scales (n of them real, the rest 0) as floats.
  static void scales_to_f32(const uint16_t* p, int64_t n, float* out) {
    const __mmask16 m = static_cast<__mmask16>(n >= 16 ? 0xFFFF : n <= 0 ? 0 : (1u << n) - 1);
    _mm512_storeu_ps(out, _mm512_cvtph_ps(_mm256_maskz_loadu_epi16(m, p)));
  }
};

template <bool kVnni>
struct IntOps<8, kVnni> {
  static_assert(!kVnni, "the 8-lane path has no VNNI variant");
  using I = __m256i;
  using F = __m256;
  static I load(const void* p) { return _mm256_loadu_si256(reinterpret_cast<const __m256i*>(p)); }
  static I zero() { return _mm256_setzero_si256(); }
  static I bytes(char b) { return _mm256_set1_epi8(b); }
  static I and_(I a, I b) { return _mm256_and_si256(a, b); }
  static I xor_(I a, I b) { return _mm256_xor_si256(a, b); }
  static I srl16(I a, int n) { return _mm256_srli_epi16(a, n); }
  static I abs8(I a) { return _mm256_abs_epi8(a); }
  static I sign_of(I x, I w) { return _mm256_sign_epi8(x, w); }
  static I dot(I acc, I u, I s) {
    const I pairs = _mm256_maddubs_epi16(u, s);
    return _mm256_add_epi32(acc, _mm256_madd_epi16(pairs, _mm256_set1_epi16(1)));
  }
  static F to_float(I a) { return _mm256_cvtepi32_ps(a); }
  static F permute(I idx, F v) { return _mm256_permutevar8x32_ps(v, idx); }
  static void scales_to_f32(const uint16_t* p, int64_t n, float* out) {
    alignas(16) uint16_t h[8] = {};
    if (n > 0) std::memcpy(h, p, static_cast<size_t>(std::min<int64_t>(n, 8)) * 2);
    _mm256_storeu_ps(out, _mm256_cvtph_ps(_mm_load_si128(reinterpret_cast<const __m128i*>(h))));
  }
};

template <class V>
struct MatmulRows;

template <class V, bool kVnni = false>
struct MatmulInt {
  using F = typename V::F;
  static constexpr int L = V::kLanes;
  using IO = IntOps<L, kVnni>;
  using I = typename IO::I;
  static constexpr int64_t kVecBytes = 4 * L;
  // Tokens per register tile, and per chunk of the activation layout (q8_activations.h):
  // prefill goes kMaxTokens tokens at a time over a band of rows. On AVX-512, 6 tokens x 4
  // rows (int8 with VNNI) or 3 (int4, and int8 without) ran 1.3-1.4x (int8) and 1.2-1.3x
  // (int4) faster than 4 x 3, and faster than 8 x 2 or 8 x 3 (kernel_bench, Moonlight's
  // shared gate/up int8 and expert int4 shapes, n = 256, 1 thread, Zen 5).
  static constexpr int kMaxTokens = L == 16 ? 6 : 4;
  // Tiles of this many tokens and more, with one group per block, precompute their scale
  // products (rows_step's products mode). Not on AVX2: with one row per step there (16
  // registers) it measured no faster.
  static constexpr int kProductsFrom = L == 16 ? 2 : std::numeric_limits<int>::max();
  // Rows per step: T * R float accumulators, R decoded weights (2 vectors each for int4 and
  // for int8 without VNNI), R scale vectors (none in products mode) and about 4 activation
  // and temporary vectors in the registers (16 on AVX2, 32 on AVX-512). Decode (T = 1) on
  // AVX-512 takes 6: still in the registers (int4: 4 * 6 + 7), and 6 row streams with their
  // prefetches in flight instead of 4 read memory faster (kernel_bench, Moonlight's int4
  // experts and int8 shared experts, 1 and 2 threads: +10-20% GB/s).
  static constexpr int rows_for(int t, bool int4, bool one_group) {
    if (L == 8) return std::clamp(9 / (t + 3), 1, 4);
    if (t == 1) return 6;
    if (t <= 4) return std::clamp(24 / (t + 3), 1, 4);
    const int per_row = t + (int4 || !kVnni ? 2 : 1) + (one_group && t >= kProductsFrom ? 0 : 1);
    return std::clamp(28 / per_row, 1, 4);
  }
  template <bool kInt4, bool kOneGroup, int T>
  static constexpr int kRows = rows_for(T, kInt4, kOneGroup);
  static constexpr int kScaleRows = 6;
  // Prefill: rows in bands of about this many weight bytes, swept by every token (L2).
  static constexpr int64_t kBandBytes = 256 << 10;

  // Rows r .. r + R - 1, tokens t0 .. t0 + T - 1 of the layout.
  //
  // Written so that the compiler keeps everything of the block loop in registers: the
  // layout's arrays as local pointers (stores into the tail copy could otherwise alias the
  // layout, so its fields were reloaded every block), the blocks read in place and the
  // copied last block in separate loops (one loop with a per-block branch kept the row
  // pointers and the accumulators on the stack). Every block's operations and their order
  // are unchanged (the reduction order above).
  template <bool kInt4, bool kOneGroup, int T, int R>
  static void rows_step(const LinearWeight& w, const Q8Layout& xl, int64_t t0, int64_t r, float* y, int64_t ldy,
                        float* scale_buf, int64_t scale_ld) {
    static_assert(R <= kScaleRows, "scale_buf holds kScaleRows rows");
    const int64_t row_bytes = w.row_bytes(), groups = w.groups_per_row();
    // The next step's group scales (its R rows' scales follow these rows' in memory): a
    // separate short stream that the hardware prefetchers do not follow, whose miss stalled
    // the start of every step (perf: 13-16% of decode's integer kernel samples on the load
    // just below). Prefetching past the tensor's end is harmless (a hint, never a fault).
    {
      const char* next = reinterpret_cast<const char*>(w.row_group_scales(r + R));
      const int64_t n = R * groups * 2;
      for (int64_t o = 0; o < n; o += 64) _mm_prefetch(next + o, _MM_HINT_T0);
      _mm_prefetch(next + n - 1, _MM_HINT_T0);  // the last line, when the start is not aligned
    }
    const uint8_t* rows[R];
    float* sf[R];
    for (int i = 0; i < R; ++i) {
      rows[i] = w.row_ptr(r + i);
      sf[i] = scale_buf + i * scale_ld;
      const uint16_t* sh = w.row_group_scales(r + i);
      if constexpr (!(kOneGroup && T >= kProductsFrom))
        for (int64_t g = 0; g < scale_ld; g += L) IO::scales_to_f32(sh + g, groups - g, sf[i] + g);
    }
    F acc[T][R];
    for (int t = 0; t < T; ++t)
      for (int i = 0; i < R; ++i) acc[t][i] = V::zero();
    // Token t0 + t's record of block b at rec0 + (b * T + t) * rec (t0 starts a chunk of T).
    const int64_t rec = xl.rec_bytes, block_cols = xl.block_cols;
    const uint8_t* const rec0 = xl.record(t0, 0);
    const int32_t* const first_group = xl.first_group.data();
    const int32_t* const lane_group = xl.lane_group.data();

    // Products mode (a tile of tokens, one group per block): sw * sx is one float per token,
    // row and block; kProducts of them at a time for L blocks in one multiply, kept in
    // prod[t][i][block - first], each broadcast into its fma (from memory: no instruction of
    // its own) instead of a multiply per token, row and block. The same products, so the
    // same bits.
    constexpr bool kProducts = kOneGroup && T >= kProductsFrom;
    alignas(64) float prod[kProducts ? T : 1][kProducts ? R : 1][L];

    // One block b of the R rows, their bytes at src[i]; in products mode its products at
    // prod[t][i][bl].
    auto block = [&](int64_t b, const uint8_t* const* src, int64_t bl) __attribute__((always_inline)) {
      const int64_t g0 = first_group[b];
      I idx;
      if constexpr (!kOneGroup) idx = IO::load(lane_group + b * L);
      I wa[R], wb[R];  // int8: q + 128 (VNNI), or |q| and q; int4: low and high nibbles as q + 8
      F sw[R];
      for (int i = 0; i < R; ++i) {
        const I v = IO::load(src[i]);
        if constexpr (kInt4) {
          const I u = IO::xor_(v, IO::bytes(static_cast<char>(0x88)));
          wa[i] = IO::and_(u, IO::bytes(0x0F));
          wb[i] = IO::and_(IO::srl16(u, 4), IO::bytes(0x0F));
        } else if constexpr (kVnni) {
          wa[i] = IO::xor_(v, IO::bytes(static_cast<char>(0x80)));
        } else {
          wa[i] = IO::abs8(v);
          wb[i] = v;
        }
        if constexpr (kProducts) sw[i] = V::zero();
        else if constexpr (kOneGroup) sw[i] = V::set1(sf[i][g0]);
        else sw[i] = IO::permute(idx, V::load(sf[i] + g0));
      }
      for (int t = 0; t < T; ++t) {
        const uint8_t* const tr = rec0 + (b * T + t) * rec;
        const int8_t* xq = reinterpret_cast<const int8_t*>(tr);
        const F sx = kProducts ? V::zero() : V::load(reinterpret_cast<const float*>(tr + block_cols));
        // sw[i] * sx, the products mode's from memory.
        auto scale = [&](int i) __attribute__((always_inline)) {
          if constexpr (kProducts) return V::set1(prod[t][i][bl]);
          else return V::mul(sw[i], sx);
        };
        const int32_t* const off = reinterpret_cast<const int32_t*>(tr + block_cols + 4 * L);
        if constexpr (kInt4) {
          const I xe = IO::load(xq), xo = IO::load(xq + kVecBytes);
          const I start = IO::load(off);
          for (int i = 0; i < R; ++i) {
            const I s = IO::dot(IO::dot(start, wa[i], xe), wb[i], xo);
            acc[t][i] = V::fma(IO::to_float(s), scale(i), acc[t][i]);
          }
        } else if constexpr (kVnni) {  // vpdpbusd does not saturate: q + 128 against x directly
          const I xv = IO::load(xq), start = IO::load(off);
          for (int i = 0; i < R; ++i) {
            const I s = IO::dot(start, wa[i], xv);
            acc[t][i] = V::fma(IO::to_float(s), scale(i), acc[t][i]);
          }
        } else {  // vpmaddubsw would saturate on q + 128: |q| against x with q's sign
          const I xv = IO::load(xq);
          for (int i = 0; i < R; ++i) {
            const I s = IO::dot(IO::zero(), wa[i], IO::sign_of(xv, wb[i]));
            acc[t][i] = V::fma(IO::to_float(s), scale(i), acc[t][i]);
          }
        }
      }
    };

    const int64_t blocks = xl.blocks, full = std::min(blocks, row_bytes / kVecBytes);  // blocks read in place
    // In products mode, the rows' scales per block (sf[i][b] = the row's scale of block b's
    // group, zeros up to a multiple of L) and the tokens' (the layout's block scales).
    const float* bs0 = nullptr;
    if constexpr (kProducts) {
      for (int i = 0; i < R; ++i) {
        const uint16_t* sh = w.row_group_scales(r + i);
        const int64_t padded = (blocks + L - 1) / L * L;
        for (int64_t b = 0; b < padded; ++b) sf[i][b] = b < blocks ? _cvtsh_ss(sh[first_group[b]]) : 0.0f;
      }
      bs0 = xl.block_scales_of(t0);
    }
    auto products = [&](int64_t b0) __attribute__((always_inline)) {
      if constexpr (kProducts)
        for (int t = 0; t < T; ++t) {
          const F sx = V::load(bs0 + t * xl.blocks_padded + b0);
          for (int i = 0; i < R; ++i) V::store(prod[t][i], V::mul(V::load(sf[i] + b0), sx));
        }
    };
    // One block read in place.
    auto block_in_place = [&](int64_t b, int64_t bl) __attribute__((always_inline)) {
      const uint8_t* src[R];
      // The same bytes of the next step's rows (rows are consecutive in memory): the
      // hardware prefetchers alone lag on R interleaved short row streams (as in
      // simd_matmul_rows.inl).
      for (int i = 0; i < R; ++i) {
        src[i] = rows[i] + b * kVecBytes;
        _mm_prefetch(reinterpret_cast<const char*>(src[i]) + R * row_bytes, _MM_HINT_T0);
      }
      block(b, src, bl);
    };
    if constexpr (kProducts) {
      for (int64_t b0 = 0; b0 < full; b0 += L) {
        products(b0);
        const int64_t b1 = std::min(full, b0 + L);
        for (int64_t b = b0; b < b1; ++b) block_in_place(b, b - b0);
      }
    } else {  // one plain loop, the form decode had before the products mode
      for (int64_t b = 0; b < full; ++b) block_in_place(b, 0);
    }
    if (full < blocks) {  // the last block, past the row's end: its bytes, zero-padded (x is 0 there)
      alignas(64) uint8_t tail[R][kVecBytes];
      const uint8_t* src[R];
      for (int i = 0; i < R; ++i) {
        std::memset(tail[i], 0, kVecBytes);
        std::memcpy(tail[i], rows[i] + full * kVecBytes, static_cast<size_t>(row_bytes - full * kVecBytes));
        src[i] = tail[i];
      }
      if (full % L == 0) products(full);  // (else computed with the blocks before it)
      block(full, src, full % L);
    }
    for (int t = 0; t < T; ++t) V::store_hsums(acc[t], R, 1.0f, y + t * ldy);
  }

  // Rows [r0, r1) for tokens t0 .. t0 + T - 1.
  template <bool kInt4, int T>
  static void rows_range(const LinearWeight& w, const Q8Layout& xl, int64_t t0, int64_t r0, int64_t r1, float* y,
                         int64_t ldy, float* scale_buf, int64_t scale_ld) {
    if (xl.one_group_per_block) rows_range_g<kInt4, true, T>(w, xl, t0, r0, r1, y, ldy, scale_buf, scale_ld);
    else rows_range_g<kInt4, false, T>(w, xl, t0, r0, r1, y, ldy, scale_buf, scale_ld);
  }

  template <bool kInt4, bool kOneGroup, int T>
  static void rows_range_g(const LinearWeight& w, const Q8Layout& xl, int64_t t0, int64_t r0, int64_t r1, float* y,
                           int64_t ldy, float* scale_buf, int64_t scale_ld) {
    constexpr int R = kRows<kInt4, kOneGroup, T>;
    int64_t r = r0;
    for (; r + R <= r1; r += R) rows_step<kInt4, kOneGroup, T, R>(w, xl, t0, r, y + (r - r0), ldy, scale_buf, scale_ld);
    for (; r < r1; ++r) rows_step<kInt4, kOneGroup, T, 1>(w, xl, t0, r, y + (r - r0), ldy, scale_buf, scale_ld);
  }

  // rows_range<T'> for T' = n (1 <= n <= kMaxTokens).
  template <bool kInt4, int T = 1>
  static void rows_range_n(int64_t n, const LinearWeight& w, const Q8Layout& xl, int64_t t0, int64_t r0, int64_t r1,
                           float* y, int64_t ldy, float* scale_buf, int64_t scale_ld) {
    if constexpr (T < kMaxTokens)
      if (n > T) return rows_range_n<kInt4, T + 1>(n, w, xl, t0, r0, r1, y, ldy, scale_buf, scale_ld);
    rows_range<kInt4, T>(w, xl, t0, r0, r1, y, ldy, scale_buf, scale_ld);
  }

  template <bool kInt4>
  static void run_format(const LinearWeight& w, const float* x, int64_t n, int64_t ldx, float* y, int64_t ldy,
                         int64_t r0, int64_t r1) {
    const Q8Layout& xl = q8_layout(x, n, ldx, w.cols, w.group_size, L, kInt4, kMaxTokens);
    // Row scales as floats, padded so that a vector load at any block's first group stays
    // inside (and reads zeros past the last group).
    // (Or, in rows_step's products mode, padded per-block scales.)
    const int64_t scale_ld = (std::max(w.groups_per_row(), xl.blocks) + 2 * L - 1) / L * L;
    float* scale_buf = thread_scratch(ScratchSlot::WeightTile, static_cast<size_t>(kScaleRows * scale_ld));
    const int64_t band = n <= kMaxTokens ? r1 - r0 : std::max<int64_t>(16, kBandBytes / w.row_bytes() / 16 * 16);
    for (int64_t b0 = r0; b0 < r1; b0 += band) {
      const int64_t b1 = std::min(r1, b0 + band);
      for (int64_t t = 0; t < n; t += kMaxTokens)  // the layout's chunks
        rows_range_n<kInt4>(xl.chunk_tokens(t), w, xl, t, b0, b1, y + t * ldy + (b0 - r0), ldy, scale_buf, scale_ld);
    }
  }

  static void run(const LinearWeight& w, const float* x, int64_t n, int64_t ldx, float* y, int64_t ldy, int64_t r0,
                  int64_t r1) {
    DSV3_CHECK(w.group_size > 0 && w.group_size % 16 == 0, "int weight with group size %lld",
               static_cast<long long>(w.group_size));
    if (w.is_int4()) run_format<true>(w, x, n, ldx, y, ldy, r0, r1);
    else run_format<false>(w, x, n, ldx, y, ldy, r0, r1);
  }
};

// The integer kernel of a Vec type: its own, but for the 16-lane emulation on AVX2 (no 512-bit
// integer registers to pair up), which takes the 8-lane one (avx2_table.cpp).
template <class V>
struct IntKernelOf {
  using type = MatmulInt<V>;
};
