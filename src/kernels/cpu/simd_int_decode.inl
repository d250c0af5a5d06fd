// Decoding the grouped integer formats (tensor/linear_weight.h: I8 int8, U8 packed int4) into
// float lanes, for one Vec type (included inside a target region, before simd_weights.inl).
// Every conversion is exact (small integers to float; F16 scales widened), so a decoded
// value times its group's scale rounds exactly as the oracle's LinearWeight::at.

// 8 int8 values -> 8 floats.
inline __m256 int8x8_to_f32(const uint8_t* p) {
  return _mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(_mm_loadl_epi64(reinterpret_cast<const __m128i*>(p))));
}

// The low 2n bytes of v hold columns 0 .. 2n - 1 as bytes, from the n packed bytes in b:
// column 2j is the low nibble of byte j, 2j + 1 the high one; each sign-extended from 4 bits.
inline __m128i unpack_int4(__m128i b) {
  const __m128i nib = _mm_set1_epi8(0x0F), eight = _mm_set1_epi8(8);
  const __m128i lo = _mm_and_si128(b, nib), hi = _mm_and_si128(_mm_srli_epi16(b, 4), nib);
  const __m128i v = _mm_unpacklo_epi8(lo, hi);
  return _mm_sub_epi8(_mm_xor_si128(v, eight), eight);  // (v ^ 8) - 8: two's complement
}

// 8 int4 values (4 packed bytes) -> 8 floats.
inline __m256 int4x8_to_f32(const uint8_t* p) {
  int32_t bytes;
  std::memcpy(&bytes, p, 4);
  return _mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(unpack_int4(_mm_cvtsi32_si128(bytes))));
}

template <class V>
struct IntDecode {
  using F = typename V::F;
  static constexpr int L = V::kLanes;

  // The 16-lane emulation's F is a pair of 8-lane halves (VecAvx2x2), AVX-512's one register.
  // (Not std::is_same_v<F, __m512>: GCC warns that a vector type's attributes are ignored in
  // a template argument.)
  static constexpr bool kHalves = requires(F f) { f.lo; };

  // L int8 values from p.
  static F int8(const uint8_t* p) {
    if constexpr (L == 8) {
      return int8x8_to_f32(p);
    } else if constexpr (!kHalves) {
      return _mm512_cvtepi32_ps(_mm512_cvtepi8_epi32(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p))));
    } else {  // the 16-lane emulation: a pair of 8-lane halves
      return F{int8x8_to_f32(p), int8x8_to_f32(p + 8)};
    }
  }

  // L int4 values from L / 2 packed bytes at p (the first one an even column).
  static F int4(const uint8_t* p) {
    if constexpr (L == 8) {
      return int4x8_to_f32(p);
    } else if constexpr (!kHalves) {
      return _mm512_cvtepi32_ps(_mm512_cvtepi8_epi32(unpack_int4(_mm_loadl_epi64(reinterpret_cast<const __m128i*>(p)))));
    } else {
      return F{int4x8_to_f32(p), int4x8_to_f32(p + 4)};
    }
  }

  // L weights of a row from column k (k even for int4; all in one group), unscaled.
  static F load(const LinearWeight& w, const uint8_t* row, int64_t k) {
    return w.is_int4() ? int4(row + k / 2) : int8(row + k);
  }

  static float scale(uint16_t f16_bits) { return _cvtsh_ss(f16_bits); }
};
