// VecAvx512: 16 float lanes in one zmm register (AVX-512 F/BW/VL/DQ).
// Included inside a DSV3_TARGET_BEGIN(DSV3_ISA_AVX512) region (avx512_table.cpp).
//
// Executed by the tests wherever the CPU has AVX-512 (the development machine, Zen 5, does).
// Each function is the 16-lane twin of a VecAvx2x2 function, which the tests execute on any
// AVX2 machine ("avx512-emulated" table); keep the two in step: same lane order, same hsum
// tree, same decode bit tricks.

struct VecAvx512 {
  using F = __m512;
  static constexpr int kLanes = 16;

  static F zero() { return _mm512_setzero_ps(); }
  static F set1(float v) { return _mm512_set1_ps(v); }
  static F load(const float* p) { return _mm512_loadu_ps(p); }
  static void store(float* p, F v) { _mm512_storeu_ps(p, v); }
  static F load_kept(const float* p) {
    F v = load(p);
    asm("" : "+v"(v));
    return v;
  }
  // Lanes i < n; masked-off lanes are neither read (no fault) nor written.
  static __mmask16 lane_mask(int n) { return static_cast<__mmask16>((1u << n) - 1u); }  // n < 16
  static F load_partial(const float* p, int n) { return _mm512_maskz_loadu_ps(lane_mask(n), p); }
  static void store_partial(float* p, F v, int n) { _mm512_mask_storeu_ps(p, lane_mask(n), v); }

  static F add(F a, F b) { return _mm512_add_ps(a, b); }
  static F sub(F a, F b) { return _mm512_sub_ps(a, b); }
  static F mul(F a, F b) { return _mm512_mul_ps(a, b); }
  static F div(F a, F b) { return _mm512_div_ps(a, b); }
  static F fma(F a, F b, F c) { return _mm512_fmadd_ps(a, b, c); }
  static F min(F a, F b) { return _mm512_min_ps(a, b); }
  static F max(F a, F b) { return _mm512_max_ps(a, b); }

  // Lane i + lane i+8 (lanes 0-7 are the low 256 bits), then VecAvx2's 8-lane tree.
  static float hsum(F v) {
    __m256 s8 = _mm256_add_ps(_mm512_castps512_ps256(v), _mm512_extractf32x8_ps(v, 1));
    __m128 s = _mm_add_ps(_mm256_castps256_ps128(s8), _mm256_extractf128_ps(s8, 1));
    s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    s = _mm_add_ss(s, _mm_movehdup_ps(s));
    return _mm_cvtss_f32(s);
  }
  // {hsum(a), hsum(b), hsum(c), hsum(d)}, each bit for bit (the same additions of the same
  // pairs, in the same order), with the four vectors' lanes reduced side by side: 14
  // instructions instead of 4 x 8. The sums of a register tile end every product, 10-15% of a
  // tile's time with hsum one at a time (K = 2048, perf, Zen 5).
  static __m128 hsum4(F a, F b, F c, F d) {
    // Lane i + lane i+8: [a's 8 | b's 8], [c's 8 | d's 8].
    const F ab = _mm512_add_ps(_mm512_shuffle_f32x4(a, b, 0x44), _mm512_shuffle_f32x4(a, b, 0xEE));
    const F cd = _mm512_add_ps(_mm512_shuffle_f32x4(c, d, 0x44), _mm512_shuffle_f32x4(c, d, 0xEE));
    // Lane i + lane i+4 of those: a 128-bit lane per vector, [a | b | c | d].
    F s = _mm512_add_ps(_mm512_shuffle_f32x4(ab, cd, 0x88), _mm512_shuffle_f32x4(ab, cd, 0xDD));
    // Then hsum's last two steps in each 128-bit lane: (0 + 2, 1 + 3), then their sum.
    s = _mm512_add_ps(s, _mm512_shuffle_ps(s, s, _MM_SHUFFLE(1, 0, 3, 2)));
    s = _mm512_add_ps(s, _mm512_shuffle_ps(s, s, _MM_SHUFFLE(2, 3, 0, 1)));
    const __m512i firsts = _mm512_setr_epi32(0, 4, 8, 12, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0);
    return _mm512_castps512_ps128(_mm512_permutexvar_ps(firsts, s));
  }
  // y[i] = hsum(acc[i]) * scale for i < n, four at a time: the same bits as VecAvx2x2's one
  // at a time (a scale of 1 changes no bits).
  static void store_hsums(const F* acc, int n, float scale, float* y) {
    int i = 0;
    for (; i + 4 <= n; i += 4)
      _mm_storeu_ps(y + i, _mm_mul_ps(hsum4(acc[i], acc[i + 1], acc[i + 2], acc[i + 3]), _mm_set1_ps(scale)));
    for (; i < n; ++i) y[i] = hsum(acc[i]) * scale;
  }

  // Same bit trick as VecAvx2::fp8_to_half_bits on 16 bytes: 16-bit lane = (b << 8) >>arith 1
  // & 0xBFFF, then 16 halves -> 16 floats.
  static F decode_fp8(const uint8_t* p) {
    __m256i b16 = _mm256_cvtepu8_epi16(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p)));
    __m256i h = _mm256_srai_epi16(_mm256_slli_epi16(b16, 8), 1);
    h = _mm256_and_si256(h, _mm256_set1_epi16(static_cast<short>(0xBFFF)));
    return _mm512_cvtph_ps(h);
  }
  static void decode_fp8_pair(const uint8_t* p, F& lo, F& hi) {
    __m512i h = _mm512_cvtepu8_epi16(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(p)));
    h = _mm512_srai_epi16(_mm512_slli_epi16(h, 8), 1);
    h = _mm512_and_si512(h, _mm512_set1_epi16(static_cast<short>(0xBFFF)));
    lo = _mm512_cvtph_ps(_mm512_castsi512_si256(h));
    hi = _mm512_cvtph_ps(_mm512_extracti64x4_epi64(h, 1));
  }
  // VecAvx2's fp8_halves, fp8_vector and decode_fp8_quad on 64 bytes: v[j] lane l =
  // e4m3(p[4l + j]) * 2^-120.
  struct Fp8Halves {
    __m512i even, odd;
  };
  static Fp8Halves fp8_halves(const uint8_t* p) {
    const __m512i b = _mm512_loadu_si512(p);
    return {_mm512_srai_epi16(_mm512_slli_epi16(b, 8), 4), _mm512_srai_epi16(b, 4)};
  }
  static F fp8_vector(const Fp8Halves& h, int j) {
    const __m512i mask = _mm512_set1_epi32(static_cast<int>(0x87F00000u));
    const __m512i half = j % 2 == 0 ? h.even : h.odd;
    return _mm512_castsi512_ps(_mm512_and_si512(j < 2 ? _mm512_slli_epi32(half, 16) : half, mask));
  }
  static void decode_fp8_quad(const uint8_t* p, F v[4]) {
    const Fp8Halves h = fp8_halves(p);
    for (int j = 0; j < 4; ++j) v[j] = fp8_vector(h, j);
  }
  // v[j] lane l = p[4l + j], l < 16. Two rounds of 4 shuffles: columns 4l + {0, 2} and
  // 4l + {1, 3} of each half (p[0..31], p[32..63]) first, then each vector from two halves'
  // 256-bit parts. Before, each vector took 2 two-source permutes and a lane shuffle, 12 in
  // all; the FP8 path's preparation of the activations, which runs this, was 7% of prefill.
  static void deinterleave4(const float* p, F v[4]) {
    const __m512 a = load(p), b = load(p + 16), c = load(p + 32), d = load(p + 48);
    const __m512i even = _mm512_setr_epi32(0, 4, 8, 12, 16, 20, 24, 28, 2, 6, 10, 14, 18, 22, 26, 30);
    const __m512i odd = _mm512_setr_epi32(1, 5, 9, 13, 17, 21, 25, 29, 3, 7, 11, 15, 19, 23, 27, 31);
    const __m512 ab02 = _mm512_permutex2var_ps(a, even, b), ab13 = _mm512_permutex2var_ps(a, odd, b);
    const __m512 cd02 = _mm512_permutex2var_ps(c, even, d), cd13 = _mm512_permutex2var_ps(c, odd, d);
    v[0] = _mm512_shuffle_f32x4(ab02, cd02, 0x44);  // 256-bit low halves: columns 4l
    v[1] = _mm512_shuffle_f32x4(ab13, cd13, 0x44);
    v[2] = _mm512_shuffle_f32x4(ab02, cd02, 0xEE);  // high halves: columns 4l + 2
    v[3] = _mm512_shuffle_f32x4(ab13, cd13, 0xEE);
  }
  static F decode_bf16(const uint16_t* p) {
    __m512i w = _mm512_cvtepu16_epi32(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(p)));
    return _mm512_castsi512_ps(_mm512_slli_epi32(w, 16));
  }
  static F decode_f16(const uint16_t* p) { return _mm512_cvtph_ps(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(p))); }

  static F round_int(F v) { return _mm512_roundscale_ps(v, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC); }
  static F exp2_int(F n) {
    __m512i e = _mm512_add_epi32(_mm512_cvtps_epi32(n), _mm512_set1_epi32(127));
    return _mm512_castsi512_ps(_mm512_slli_epi32(e, 23));
  }
};
