// VecAvx2x2: 16 float lanes as a pair of ymm registers, lanes 0-7 in lo and 8-15 in hi.
//
// Exists to TEST the 16-lane instantiation of the shared kernels on machines without AVX-512:
// every operation below has the same per-lane result as its VecAvx512 counterpart (same
// lane order, same fma, same reduction tree in hsum), so the "avx512-emulated" table computes
// bit for bit what the real AVX-512 table computes, and its tests exercise the 16-lane
// tiling, remainders and reductions. Only the intrinsics in vec_avx512.inl remain unexecuted.
// Included inside an AVX2 target region; not offered for dispatch (slower than VecAvx2).

struct VecAvx2x2 {
  struct F {
    __m256 lo, hi;
  };
  static constexpr int kLanes = 16;
  using H = VecAvx2;

  static F zero() { return {H::zero(), H::zero()}; }
  static F set1(float v) { return {H::set1(v), H::set1(v)}; }
  static F load(const float* p) { return {H::load(p), H::load(p + 8)}; }
  static F load_kept(const float* p) { return {H::load_kept(p), H::load_kept(p + 8)}; }
  static void store(float* p, F v) {
    H::store(p, v.lo);
    H::store(p + 8, v.hi);
  }
  static F load_partial(const float* p, int n) {
    if (n <= 8) return {H::load_partial(p, n), H::zero()};
    return {H::load(p), H::load_partial(p + 8, n - 8)};
  }
  static void store_partial(float* p, F v, int n) {
    if (n <= 8) {
      H::store_partial(p, v.lo, n);
      return;
    }
    H::store(p, v.lo);
    H::store_partial(p + 8, v.hi, n - 8);
  }

  static F add(F a, F b) { return {H::add(a.lo, b.lo), H::add(a.hi, b.hi)}; }
  static F sub(F a, F b) { return {H::sub(a.lo, b.lo), H::sub(a.hi, b.hi)}; }
  static F mul(F a, F b) { return {H::mul(a.lo, b.lo), H::mul(a.hi, b.hi)}; }
  static F div(F a, F b) { return {H::div(a.lo, b.lo), H::div(a.hi, b.hi)}; }
  static F fma(F a, F b, F c) { return {H::fma(a.lo, b.lo, c.lo), H::fma(a.hi, b.hi, c.hi)}; }
  static F min(F a, F b) { return {H::min(a.lo, b.lo), H::min(a.hi, b.hi)}; }
  static F max(F a, F b) { return {H::max(a.lo, b.lo), H::max(a.hi, b.hi)}; }

  // Lane i + lane i+8, then the 8-lane tree: what VecAvx512::hsum does.
  static float hsum(F v) { return H::hsum(H::add(v.lo, v.hi)); }
  static void store_hsums(const F* acc, int n, float scale, float* y) {
    for (int i = 0; i < n; ++i) y[i] = hsum(acc[i]) * scale;
  }

  static F decode_fp8(const uint8_t* p) { return {H::decode_fp8(p), H::decode_fp8(p + 8)}; }
  static void decode_fp8_pair(const uint8_t* p, F& lo, F& hi) {
    H::decode_fp8_pair(p, lo.lo, lo.hi);
    H::decode_fp8_pair(p + 16, hi.lo, hi.hi);
  }
  // Lanes 0-7 from bytes / floats 0..31, lanes 8-15 from 32..63: lane l holds element 4l + j
  // of the 64, as in VecAvx512.
  struct Fp8Halves {
    H::Fp8Halves lo, hi;
  };
  static Fp8Halves fp8_halves(const uint8_t* p) { return {H::fp8_halves(p), H::fp8_halves(p + 32)}; }
  static F fp8_vector(const Fp8Halves& h, int j) { return {H::fp8_vector(h.lo, j), H::fp8_vector(h.hi, j)}; }
  static void decode_fp8_quad(const uint8_t* p, F v[4]) {
    const Fp8Halves h = fp8_halves(p);
    for (int j = 0; j < 4; ++j) v[j] = fp8_vector(h, j);
  }
  static void deinterleave4(const float* p, F v[4]) {
    H::F lo[4], hi[4];
    H::deinterleave4(p, lo);
    H::deinterleave4(p + 32, hi);
    for (int j = 0; j < 4; ++j) v[j] = {lo[j], hi[j]};
  }
  static F decode_bf16(const uint16_t* p) { return {H::decode_bf16(p), H::decode_bf16(p + 8)}; }
  static F decode_f16(const uint16_t* p) { return {H::decode_f16(p), H::decode_f16(p + 8)}; }
  static F round_int(F v) { return {H::round_int(v.lo), H::round_int(v.hi)}; }
  static F exp2_int(F n) { return {H::exp2_int(n.lo), H::exp2_int(n.hi)}; }
};
