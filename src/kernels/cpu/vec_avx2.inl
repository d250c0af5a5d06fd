// VecAvx2: 8 float lanes in one ymm register (AVX2 + FMA + F16C).
// Included inside a DSV3_TARGET_BEGIN(DSV3_ISA_AVX2) region (see avx2_table.cpp); the kernels
// in simd_*.inl are written once against this interface and the AVX-512 one.
//
// Interface every Vec type provides (all static, all inline):
//   F                          the register type; kLanes floats
//   zero, set1, load, store, load_partial(p, n), store_partial(p, v, n)  (n < kLanes lanes,
//                              the others read as 0 and are not written; never touch memory
//                              past p + n)
//   load_kept(p)               load into a register the compiler keeps: a vector used by
//                              several FMAs is loaded once, not folded into each FMA's
//                              memory operand (which doubles the loads of a register tile)
//   add, sub, mul, div, fma(a, b, c) = a * b + c (one rounding), min, max
//   hsum(v)                    horizontal sum in a FIXED tree (batch invariance depends on it)
//   store_hsums(acc, n, s, y)  y[i] = hsum(acc[i]) * s for i < n, bit for bit (VecAvx512 sums
//                              four vectors side by side)
//   decode_fp8(p)              kLanes e4m3 bytes -> floats equal to e4m3 value * 2^-8 (exact)
//   decode_fp8_pair(p, lo, hi) the same for 2 * kLanes bytes (lanes 0..L-1 in lo)
//   decode_fp8_quad(p, v)      4 * kLanes e4m3 bytes -> 4 vectors, v[j] lane l = e4m3(p[4l + j])
//                              * 2^-120 (exact; integer operations only; see simd_matmul_fp8.inl)
//   Fp8Halves, fp8_halves(p), fp8_vector(h, j)   the same in two steps: the bytes shifted into
//                              place once (the two integer vectors every v[j] comes from), then
//                              v[j] alone, so that a kernel can make each vector right before
//                              its use and keep fewer registers; decode_fp8_quad is the two steps
//   deinterleave4(p, v)        4 * kLanes floats -> 4 vectors, v[j] lane l = p[4l + j] (the same
//                              order, for the activations)
//   decode_bf16(p), decode_f16(p)   kLanes 16-bit floats -> floats (exact)
//   round_int(v)               round to nearest integer (ties to even), as float
//   exp2_int(n)                2^n for integral n in [-126, 127]

struct VecAvx2 {
  using F = __m256;
  static constexpr int kLanes = 8;

  static F zero() { return _mm256_setzero_ps(); }
  static F set1(float v) { return _mm256_set1_ps(v); }
  static F load(const float* p) { return _mm256_loadu_ps(p); }
  static void store(float* p, F v) { _mm256_storeu_ps(p, v); }
  static F load_kept(const float* p) {
    F v = load(p);
    asm("" : "+x"(v));
    return v;
  }
  // Lane i enabled iff i < n. vmaskmov never faults on disabled lanes.
  static __m256i lane_mask(int n) {
    return _mm256_cmpgt_epi32(_mm256_set1_epi32(n), _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
  }
  static F load_partial(const float* p, int n) { return _mm256_maskload_ps(p, lane_mask(n)); }
  static void store_partial(float* p, F v, int n) { _mm256_maskstore_ps(p, lane_mask(n), v); }

  static F add(F a, F b) { return _mm256_add_ps(a, b); }
  static F sub(F a, F b) { return _mm256_sub_ps(a, b); }
  static F mul(F a, F b) { return _mm256_mul_ps(a, b); }
  static F div(F a, F b) { return _mm256_div_ps(a, b); }
  static F fma(F a, F b, F c) { return _mm256_fmadd_ps(a, b, c); }
  static F min(F a, F b) { return _mm256_min_ps(a, b); }
  static F max(F a, F b) { return _mm256_max_ps(a, b); }

  // ((l0 + l4) + (l2 + l6)) + ((l1 + l5) + (l3 + l7)): the 16-lane types reduce to this tree
  // after adding their upper half onto their lower half.
  static float hsum(F v) {
    __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    s = _mm_add_ss(s, _mm_movehdup_ps(s));
    return _mm_cvtss_f32(s);
  }
  // y[i] = hsum(acc[i]) * scale for i < n (every kernel's last step; VecAvx512 does four at
  // a time).
  static void store_hsums(const F* acc, int n, float scale, float* y) {
    for (int i = 0; i < n; ++i) y[i] = hsum(acc[i]) * scale;
  }

  // e4m3 byte b -> IEEE half bits ((b & 0x80) << 8) | ((b & 0x7F) << 7): the 4 exponent and 3
  // mantissa bits land in the half's low exponent and top mantissa bits, so the half equals
  // the e4m3 value * 2^(7 - 15), normals and subnormals alike (checked against the oracle table
  // for all 256 bytes in tests/kernels). Computed as ((b << 8) >>arith 1) & 0xBFFF.
  // The NaN bytes 0x7F/0xFF decode to +-480 * 2^-8, not NaN (see simd_weights.inl).
  static __m128i fp8_to_half_bits(__m128i bytes_lo8) {
    __m128i h = _mm_unpacklo_epi8(_mm_setzero_si128(), bytes_lo8);  // b << 8 in each 16-bit lane
    h = _mm_srai_epi16(h, 1);
    return _mm_and_si128(h, _mm_set1_epi16(static_cast<short>(0xBFFF)));
  }
  static F decode_fp8(const uint8_t* p) {
    __m128i b = _mm_loadl_epi64(reinterpret_cast<const __m128i*>(p));
    return _mm256_cvtph_ps(fp8_to_half_bits(b));
  }
  // 2 * kLanes bytes at once (16-bit lanes of a whole ymm): fewer integer ops per weight.
  static void decode_fp8_pair(const uint8_t* p, F& lo, F& hi) {
    __m256i h = _mm256_cvtepu8_epi16(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p)));
    h = _mm256_srai_epi16(_mm256_slli_epi16(h, 8), 1);
    h = _mm256_and_si256(h, _mm256_set1_epi16(static_cast<short>(0xBFFF)));
    lo = _mm256_cvtph_ps(_mm256_castsi256_si128(h));
    hi = _mm256_cvtph_ps(_mm256_extracti128_si256(h, 1));
  }
  // Each 32-bit lane holds bytes b0..b3 (b3 on top). An arithmetic shift of a 16-bit lane by
  // 4 puts its high byte's sign on bits 15..11 and its 7 exponent/mantissa bits on 10..4;
  // within a 32-bit lane the high 16 bits are then, after masking with 0x87F0'0000, an f32
  // whose sign is the byte's, whose exponent field is the e4m3 exponent and whose top 3
  // mantissa bits are the e4m3 mantissa: e4m3 * 2^(7 - 127) exactly, subnormals included.
  // The NaN bytes 0x7F/0xFF decode to +-480 * 2^-120, not NaN (see simd_weights.inl).
  struct Fp8Halves {
    __m256i even, odd;  // bytes 4l and 4l + 2 moved up / bytes 4l + 1 and 4l + 3 in place
  };
  static Fp8Halves fp8_halves(const uint8_t* p) {
    const __m256i b = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(p));
    return {_mm256_srai_epi16(_mm256_slli_epi16(b, 8), 4), _mm256_srai_epi16(b, 4)};
  }
  static F fp8_vector(const Fp8Halves& h, int j) {
    const __m256i mask = _mm256_set1_epi32(static_cast<int>(0x87F00000u));
    const __m256i half = j % 2 == 0 ? h.even : h.odd;
    return _mm256_castsi256_ps(_mm256_and_si256(j < 2 ? _mm256_slli_epi32(half, 16) : half, mask));
  }
  static void decode_fp8_quad(const uint8_t* p, F v[4]) {
    const Fp8Halves h = fp8_halves(p);
    for (int j = 0; j < 4; ++j) v[j] = fp8_vector(h, j);
  }
  // 4x4 transposes inside each 128-bit half give [p0 p8 p16 p24 | p4 p12 p20 p28] (+ j);
  // one permute puts the lanes in order.
  static void deinterleave4(const float* p, F v[4]) {
    const __m256 a = load(p), b = load(p + 8), c = load(p + 16), d = load(p + 24);
    const __m256 ab_lo = _mm256_unpacklo_ps(a, b), ab_hi = _mm256_unpackhi_ps(a, b);
    const __m256 cd_lo = _mm256_unpacklo_ps(c, d), cd_hi = _mm256_unpackhi_ps(c, d);
    const __m256i order = _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7);
    v[0] = _mm256_permutevar8x32_ps(_mm256_shuffle_ps(ab_lo, cd_lo, 0x44), order);
    v[1] = _mm256_permutevar8x32_ps(_mm256_shuffle_ps(ab_lo, cd_lo, 0xEE), order);
    v[2] = _mm256_permutevar8x32_ps(_mm256_shuffle_ps(ab_hi, cd_hi, 0x44), order);
    v[3] = _mm256_permutevar8x32_ps(_mm256_shuffle_ps(ab_hi, cd_hi, 0xEE), order);
  }
  static F decode_bf16(const uint16_t* p) {
    __m256i w = _mm256_cvtepu16_epi32(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p)));
    return _mm256_castsi256_ps(_mm256_slli_epi32(w, 16));
  }
  static F decode_f16(const uint16_t* p) { return _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p))); }

  static F round_int(F v) { return _mm256_round_ps(v, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC); }
  static F exp2_int(F n) {
    __m256i e = _mm256_add_epi32(_mm256_cvtps_epi32(n), _mm256_set1_epi32(127));
    return _mm256_castsi256_ps(_mm256_slli_epi32(e, 23));
  }
};
