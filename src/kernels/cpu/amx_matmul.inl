// The AMX matmul's packing and loop, written once over a Tiles type (amx_hw.cpp: the real
// tile instructions; amx_emulated.cpp: scalar tiles with TDPBF16PS's arithmetic, run by the
// tests). Included inside a namespace after the Tiles type.
//
// Tiles used: tmm0 = A (16 tokens x 32 bf16), tmm1 = B (16 pairs of k x 16 weight rows, the
// "VNNI" layout), tmm4..7 = C (16 tokens x 16 rows f32) for 4 token tiles at once.
//
// Per C element (token t, weight row r): for each FP8 scale block of block_cols columns,
// C = sum of bf16 products over the block (in tile order, 32 columns per step), then
// acc = fma(C, scale, acc) in block order (BF16 weights: one block spanning K, no scale).

constexpr int64_t kTileRows = 16;   // tokens per A tile, weight rows per B tile
constexpr int64_t kTileK = 32;      // bf16 columns per tile step
constexpr int64_t kTokenTiles = 4;  // C tiles held at once

// e4m3 byte -> bf16 bits, exact (3 mantissa bits and the exponent range fit bf16).
inline uint16_t e4m3_to_bf16_bits(uint8_t b) { return static_cast<uint16_t>(bits_from_f32(e4m3_to_f32(b)) >> 16); }

// B tiles for weight rows [r, r + 16) (rows past `rows_valid` are zero) and all of K:
// packed[kt][kp][n][i] = W[r + n][kt * 32 + 2 kp + i] as bf16, zero past K.
inline void pack_weights(const LinearWeight& w, int64_t r, int64_t rows_valid, int64_t k_pad, uint16_t* packed) {
  std::fill(packed, packed + kTileRows * k_pad, uint16_t{0});
  for (int64_t n = 0; n < rows_valid; ++n) {
    const uint8_t* row = w.row_ptr(r + n);
    for (int64_t k = 0; k < w.cols; ++k) {
      const uint16_t v = w.is_fp8() ? e4m3_to_bf16_bits(row[k]) : reinterpret_cast<const uint16_t*>(row)[k];
      const int64_t kt = k / kTileK, kp = (k % kTileK) / 2, i = k % 2;
      packed[((kt * (kTileK / 2) + kp) * kTileRows + n) * 2 + i] = v;
    }
  }
}

template <class Tiles>
void amx_matmul_impl(ThreadPool& pool, const LinearWeight& w, const float* x, int64_t n, int64_t ldx, float* y,
                     int64_t ldy) {
  const int64_t K = w.cols, k_pad = (K + kTileK - 1) / kTileK * kTileK;
  const int64_t n_pad = (n + kTileRows - 1) / kTileRows * kTileRows;
  const int64_t block = w.is_fp8() ? w.block_cols : k_pad;  // columns per scale block
  // A: activations as bf16 [n_pad, k_pad], zero padded; shared by all tasks.
  std::vector<uint16_t> a(static_cast<size_t>(n_pad * k_pad), 0);
  pool.parallel_for(n, [&](int64_t t) {
    for (int64_t k = 0; k < K; ++k) a[t * k_pad + k] = f32_to_bf16(x[t * ldx + k]);
  });
  const int64_t row_groups = (w.rows + kTileRows - 1) / kTileRows;
  pool.parallel_for(row_groups, [&](int64_t g) {
    const int64_t r0 = g * kTileRows, rows_valid = std::min(kTileRows, w.rows - r0);
    std::vector<uint16_t> b(static_cast<size_t>(kTileRows * k_pad));
    pack_weights(w, r0, rows_valid, k_pad, b.data());
    float scale[kTileRows];  // per weight row, of the current block
    std::vector<float> acc(static_cast<size_t>(n_pad * kTileRows));  // [n_pad, 16 rows]
    alignas(64) float c[kTileRows * kTileRows];
    Tiles::begin();
    for (int64_t tt0 = 0; tt0 < n_pad; tt0 += kTileRows * kTokenTiles) {
      const int64_t tiles = std::min(kTokenTiles, (n_pad - tt0) / kTileRows);
      for (int64_t kb0 = 0; kb0 < k_pad; kb0 += block) {
        const int64_t kb1 = std::min(kb0 + block, k_pad);
        for (int64_t j = 0; j < tiles; ++j) Tiles::zero_c(static_cast<int>(j));
        for (int64_t k = kb0; k < kb1; k += kTileK) {
          Tiles::load_b(b.data() + k * kTileRows, kTileRows * 2 * 2);
          for (int64_t j = 0; j < tiles; ++j)
            Tiles::load_a_dp(static_cast<int>(j), a.data() + (tt0 + j * kTileRows) * k_pad + k, k_pad * 2);
        }
        for (int64_t n_row = 0; n_row < kTileRows; ++n_row)
          scale[n_row] = w.is_fp8() && n_row < rows_valid ? w.row_scales(r0 + n_row)[kb0 / w.block_cols] : 1.0f;
        for (int64_t j = 0; j < tiles; ++j) {
          Tiles::store_c(static_cast<int>(j), c, kTileRows * 4);
          float* acc_tile = acc.data() + (tt0 + j * kTileRows) * kTileRows;
          for (int64_t i = 0; i < kTileRows * kTileRows; ++i) {
            const float prev = kb0 == 0 ? 0.0f : acc_tile[i];
            acc_tile[i] = std::fma(c[i], scale[i % kTileRows], prev);
          }
        }
      }
    }
    Tiles::end();
    for (int64_t t = 0; t < n; ++t)
      for (int64_t i = 0; i < rows_valid; ++i) y[t * ldy + r0 + i] = acc[t * kTileRows + i];
  });
}
