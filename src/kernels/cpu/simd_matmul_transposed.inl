// KernelTable::matmul_t_cols for one Vec type: y[t, c - c0] = sum_r x[t, r] W[r, c] for
// columns [c0, c1) of W and all n tokens. Included after simd_weights.inl.
//
// Reduction order (batch-invariance contract): y[t, c] lives in one lane; it starts at +0
// and takes fma(w[r, c], x[t, r], acc) for r = 0 .. rows - 1 in order. Lanes never mix, so
// the value depends only on column c's own sequence: not on n, the token's neighbours, the
// column range, the tile shape or the thread count. Partials parked in y between row blocks
// are exact.
//
// Shape in the model: W_UK of one head, [nope = 128 rows, kv_lora_rank = 512 cols], FP8.

template <class V>
struct MatmulTransposed {
  using F = typename V::F;
  using WD = WeightDecode<V>;
  static constexpr int L = V::kLanes;

  static constexpr int kT = 4;                    // tokens per register tile
  static constexpr int kCV = L == 8 ? 3 : 6;      // column vectors per register tile
  // The tile spans the task's whole column range (up to kMaxColsPerTile) so that the rows
  // are read contiguously (streaming), and as many rows as fit kTileFloats (32 KB, L1).
  static constexpr int64_t kMaxColsPerTile = 1024;
  static constexpr int64_t kTileFloats = 8192;
  // F32 rows read in place (the latent cache in attention): rows per block. A register
  // tile's slice of them (64 rows x kCV vectors, 24 KB on AVX-512) stays in L1 while every
  // token group sweeps it, and the partials are parked in y once per 64 rows instead of once
  // per 8 (kTileFloats / kMaxColsPerTile), which cost a load and a store per accumulator
  // every 8 rows.
  static constexpr int64_t kInPlaceRows = 64;

  struct MicroArgs {
    const float* tile;  // [rows][ld_tile] dequantized (or F32 rows in place), register tile's first column at tile[0]
    int64_t ld_tile;
    int64_t rows;       // rows of this row block
    const float* x;     // x[t * ldx + i] = activation of token t for row i of the block
    int64_t ldx;
    int64_t valid_cols; // columns of the register tile that exist (the rest are padding)
    bool first;         // first row block: start from +0, else from the partials in y
    float* y;           // y[t * ldy + j]
    int64_t ldy;
  };

  static int lanes_in(int64_t valid_cols, int j) {
    return static_cast<int>(std::min<int64_t>(L, valid_cols - static_cast<int64_t>(j) * L));
  }

  template <int T, int CV>
  static void micro(const MicroArgs& a) {
    F acc[T][CV];
    for (int t = 0; t < T; ++t)
      for (int j = 0; j < CV; ++j) {
        const int lanes = lanes_in(a.valid_cols, j);
        float* yp = a.y + t * a.ldy + j * L;
        acc[t][j] = a.first ? V::zero() : (lanes == L ? V::load(yp) : V::load_partial(yp, lanes));
      }
    for (int64_t i = 0; i < a.rows; ++i) {
      F wv[CV];
      for (int j = 0; j < CV; ++j) wv[j] = V::load(a.tile + i * a.ld_tile + j * L);
      for (int t = 0; t < T; ++t) {
        const F xb = V::set1(a.x[t * a.ldx + i]);
        for (int j = 0; j < CV; ++j) acc[t][j] = V::fma(wv[j], xb, acc[t][j]);
      }
    }
    for (int t = 0; t < T; ++t)
      for (int j = 0; j < CV; ++j) {
        const int lanes = lanes_in(a.valid_cols, j);
        float* yp = a.y + t * a.ldy + j * L;
        if (lanes == L) V::store(yp, acc[t][j]);
        else V::store_partial(yp, acc[t][j], lanes);
      }
  }

  using MicroFn = void (*)(const MicroArgs&);
  template <size_t... I>
  static constexpr std::array<MicroFn, sizeof...(I)> make_micro_table(std::index_sequence<I...>) {
    return {&micro<static_cast<int>(I / kCV) + 1, static_cast<int>(I % kCV) + 1>...};
  }
  static MicroFn micro_fn(int64_t tt, int64_t vv) {
    static constexpr auto table = make_micro_table(std::make_index_sequence<kT * kCV>{});
    return table[(tt - 1) * kCV + (vv - 1)];
  }

  // One token (decode's absorbed query, W_UK^T q_nope per head): each column vector's
  // accumulator stays in a register for all the rows, and each weight vector is dequantized
  // in a register right before its FMA, instead of going through the tile (dequantized
  // there, read back by the micro-kernel, partials parked in y every few rows). perf,
  // int4-experts decode, 2 threads: 2.8% of the samples that way, for about 1% of the bytes
  // read; 1.4% this way. The same values (dequantized as by dequant_segment, WeightDecode's
  // contract) in the same order, so the same bits (tests: BatchInvariance, IntKernels).
  // Column vectors per pass: the accumulators plus a weight vector and x fit the registers.
  static constexpr int kDirectVectors = std::is_same_v<F, __m512> ? 16 : L == 8 ? 8 : 4;

  // Whether the direct path takes these columns: whole vectors, each inside one scale block
  // (FP8) or group (integers), and weights that go through a decode at all.
  static bool direct_fits(const LinearWeight& w, int64_t c0, int64_t c1) {
    if (c0 % L != 0 || (c1 - c0) % L != 0) return false;
    if (w.is_fp8()) return w.block_cols % L == 0;
    if (w.dtype == DType::I8 || w.dtype == DType::U8) return w.group_size % L == 0;
    return false;
  }

  // Columns [c, c + NV * L) of the one-token product, into y. Written with a fixed vector
  // count so that the accumulators stay in registers; each vector's scale index computed
  // once per pass, not per row (a division per weight vector had taken a third of the time).
  template <int NV>
  static void one_token_pass(const LinearWeight& w, const float* x, float* y, int64_t c) {
    const bool fp8 = w.is_fp8();
    const int64_t per_scale = fp8 ? w.block_cols : w.group_size;
    int64_t si[NV];  // the scale of vector j: row's scales[si[j]]
    for (int j = 0; j < NV; ++j) si[j] = (c + j * L) / per_scale;
    F acc[NV];
    for (int j = 0; j < NV; ++j) acc[j] = V::zero();
    for (int64_t r = 0; r < w.rows; ++r) {
      const uint8_t* row = w.row_ptr(r);
      const F xb = V::set1(x[r]);
      if (fp8) {
        const float* scales = w.row_scales(r);
        for (int j = 0; j < NV; ++j) {
          const F wv = WD::template load<DType::F8_E4M3>(row, c + j * L, V::set1(scales[si[j]] * 256.0f));
          acc[j] = V::fma(wv, xb, acc[j]);
        }
      } else {
        const uint16_t* scales = w.row_group_scales(r);
        for (int j = 0; j < NV; ++j) {
          const F wv = V::mul(IntDecode<V>::load(w, row, c + j * L), V::set1(IntDecode<V>::scale(scales[si[j]])));
          acc[j] = V::fma(wv, xb, acc[j]);
        }
      }
    }
    for (int j = 0; j < NV; ++j) V::store(y + j * L, acc[j]);
  }

  static void run_one_token(const LinearWeight& w, const float* x, float* y, int64_t c0, int64_t c1) {
    using PassFn = void (*)(const LinearWeight&, const float*, float*, int64_t);
    static constexpr auto passes = []<size_t... I>(std::index_sequence<I...>) {
      return std::array<PassFn, sizeof...(I)>{&one_token_pass<static_cast<int>(I) + 1>...};
    }(std::make_index_sequence<kDirectVectors>{});
    for (int64_t c = c0; c < c1; c += kDirectVectors * L) {
      const int64_t nv = std::min<int64_t>(kDirectVectors, (c1 - c) / L);
      passes[static_cast<size_t>(nv - 1)](w, x, y + (c - c0), c);
    }
  }

  static void run(const LinearWeight& w, const float* x, int64_t n, int64_t ldx, float* y, int64_t ldy, int64_t c0,
                  int64_t c1) {
    if (n <= 0 || c1 <= c0) return;
    if (n == 1 && w.rows > 0 && direct_fits(w, c0, c1)) return run_one_token(w, x, y, c0, c1);
    const int64_t cols_per_tile = std::min(kMaxColsPerTile, (c1 - c0 + L - 1) / L * L);
    const int64_t rows_per_tile = std::max<int64_t>(4, kTileFloats / cols_per_tile);
    float* tile = thread_scratch(ScratchSlot::WeightTile, static_cast<size_t>(rows_per_tile * cols_per_tile));
    MicroArgs a{};
    a.ldx = ldx;
    a.ldy = ldy;
    if (w.rows == 0) {  // empty sum
      for (int64_t t = 0; t < n; ++t) std::fill(y + t * ldy, y + t * ldy + (c1 - c0), 0.0f);
      return;
    }
    for (int64_t cc0 = c0; cc0 < c1; cc0 += cols_per_tile) {
      const int64_t nc = std::min(cols_per_tile, c1 - cc0);
      const int64_t width = (nc + L - 1) / L * L, n_vec = width / L;
      // F32 weights in whole vectors (the latent KV cache as attention's weight: its
      // kv_lora_rank columns in ranges of multiples of L) are read where they lie: the tile
      // would only copy them (that copy was a third of long-context decode's attention time).
      // The same values in the same order, so the same bits.
      const bool in_place = w.dtype == DType::F32 && nc % L == 0;
      a.ld_tile = in_place ? w.row_bytes() / static_cast<int64_t>(sizeof(float)) : width;
      const int64_t block_rows = in_place ? kInPlaceRows : rows_per_tile;
      for (int64_t rb0 = 0; rb0 < w.rows; rb0 += block_rows) {
        const int64_t nr = std::min(block_rows, w.rows - rb0);
        const float* rows = in_place ? reinterpret_cast<const float*>(w.row_ptr(rb0)) + cc0 : tile;
        if (!in_place)
          for (int64_t i = 0; i < nr; ++i) WD::dequant_segment(w, rb0 + i, cc0, cc0 + nc, width, tile + i * width);
        a.rows = nr;
        a.first = rb0 == 0;
        for (int64_t vg = 0; vg < n_vec; vg += kCV) {  // a slice of columns, swept by every token group
          const int64_t vv = std::min<int64_t>(kCV, n_vec - vg);
          a.tile = rows + vg * L;
          a.valid_cols = nc - vg * L;
          for (int64_t tg = 0; tg < n; tg += kT) {
            const int64_t tt = std::min<int64_t>(kT, n - tg);
            a.x = x + tg * ldx + rb0;
            a.y = y + tg * ldy + (cc0 - c0) + vg * L;
            micro_fn(tt, vv)(a);
          }
        }
      }
    }
  }
};
