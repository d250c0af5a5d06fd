// Weight dequantization for the BF16/F16/F32 matmul paths, the transposed product and
// generic tails (included inside a target region, after a Vec type; see avx2_table.cpp).
// (FP8 matmul_rows decodes differently and folds the scale into the activations:
// simd_matmul_fp8.inl.) One contract: every float produced here is bit-identical to the
// oracle's LinearWeight::at(r, c), whichever code path produced it:
//   FP8:  e4m3 decoded to half (VecX::decode_fp8, exact, value * 2^-8) times scale_inv * 256
//         (exact power-of-two fold). The real product equals e4m3 * scale_inv, so the f32
//         rounding equals the oracle's `e4m3_to_f32(b) * scale`.
//   BF16, F16: exact widening.  F32: as stored.
// Because of this, the fused (decode) and tiled (prefill) paths of a product multiply the
// same numbers and can share one reduction order (simd_matmul_rows.inl,
// simd_matmul_transposed.inl).
//
// FP8 NaN bytes (0x7F, 0xFF) decode to +-480 * scale here instead of NaN: checkpoints hold
// none (the e4m3 "fn" encoder saturates at 448); a loader that wants to be sure can scan
// for them (dsv3::e4m3_is_nan).

template <class V>
struct WeightDecode {
  using F = typename V::F;
  static constexpr int L = V::kLanes;

  // L weights of one stored row starting at column k (all inside the row), dequantized.
  // `scale256` is the row's scale_inv for k's block times 256 (FP8 only; the whole vector
  // must lie in one scale block).
  template <DType DT>
  static F load(const uint8_t* row, int64_t k, F scale256) {
    if constexpr (DT == DType::F8_E4M3) {
      return V::mul(V::decode_fp8(row + k), scale256);
    } else if constexpr (DT == DType::BF16) {
      return V::decode_bf16(reinterpret_cast<const uint16_t*>(row) + k);
    } else if constexpr (DT == DType::F16) {
      return V::decode_f16(reinterpret_cast<const uint16_t*>(row) + k);
    } else {
      return V::load(reinterpret_cast<const float*>(row) + k);
    }
  }

  // True when every L-aligned vector of a row lies in one scale block, which the fused
  // path needs; otherwise (odd block_cols) kernels go through dequant_segment, which
  // handles any block size element by element.
  static bool vectors_within_blocks(const LinearWeight& w) { return !w.is_fp8() || w.block_cols % L == 0; }

  // out[j] = w.at(r, k0 + j) for j < k1 - k0, then zeros up to `width` (a multiple of L
  // >= k1 - k0). k0 need not be aligned to anything.
  static void dequant_segment(const LinearWeight& w, int64_t r, int64_t k0, int64_t k1, int64_t width, float* out) {
    const uint8_t* row = w.row_ptr(r);
    int64_t k = k0;
    switch (w.dtype) {
      case DType::F8_E4M3: {
        // Block by block (no division per vector): the elements of a block that do not fill
        // a whole vector (odd block_cols, unaligned k0) go through the scalar oracle codec,
        // which yields the same bits.
        const float* scales = w.row_scales(r);
        const int64_t bc = w.block_cols;
        while (k < k1) {
          const int64_t b = k / bc, block_end = std::min((b + 1) * bc, k1);
          const F s = V::set1(scales[b] * 256.0f);
          for (; k + 2 * L <= block_end; k += 2 * L) {
            F lo, hi;
            V::decode_fp8_pair(row + k, lo, hi);
            V::store(out + (k - k0), V::mul(lo, s));
            V::store(out + (k - k0) + L, V::mul(hi, s));
          }
          for (; k + L <= block_end; k += L) V::store(out + (k - k0), load<DType::F8_E4M3>(row, k, s));
          for (; k < block_end; ++k) out[k - k0] = e4m3_to_f32(row[k]) * scales[b];
        }
        break;
      }
      case DType::I8:
      case DType::U8: {
        // Group by group (simd_int_decode.inl); an int4 segment starting on an odd column
        // takes that one value alone, then whole vectors from even columns.
        const uint16_t* scales = w.row_group_scales(r);
        const int64_t G = w.group_size;
        while (k < k1) {
          const int64_t g = k / G, group_end = std::min((g + 1) * G, k1);
          const float s = IntDecode<V>::scale(scales[g]);
          if (w.is_int4() && (k & 1)) out[k - k0] = static_cast<float>(int4_at(row, k)) * s, ++k;
          for (; k + L <= group_end; k += L) V::store(out + (k - k0), V::mul(IntDecode<V>::load(w, row, k), V::set1(s)));
          for (; k < group_end; ++k)
            out[k - k0] = static_cast<float>(w.is_int4() ? int4_at(row, k) : static_cast<int8_t>(row[k])) * s;
        }
        break;
      }
      case DType::BF16:
        for (; k + L <= k1; k += L) V::store(out + (k - k0), load<DType::BF16>(row, k, V::zero()));
        break;
      case DType::F16:
        for (; k + L <= k1; k += L) V::store(out + (k - k0), load<DType::F16>(row, k, V::zero()));
        break;
      case DType::F32:
        for (; k + L <= k1; k += L) V::store(out + (k - k0), load<DType::F32>(row, k, V::zero()));
        break;
      default:
        DSV3_CHECK(false, "unsupported weight dtype");
    }
    // The row's tail (fewer than L columns).
    for (; k < k1; ++k) out[k - k0] = w.at(r, k);
    for (int64_t j = k1 - k0; j < width; ++j) out[j] = 0.0f;
  }
};
