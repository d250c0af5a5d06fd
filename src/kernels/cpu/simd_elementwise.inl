// rms_norm_row, silu_mul, exp_affine for one Vec type, and the table that gathers every kernel
// of that type. Included last, after the other simd_*.inl files.

template <class V>
struct Elementwise {
  using F = typename V::F;
  static constexpr int L = V::kLanes;

  // Sum of a[i] * b[i] (rms_norm_row's sum of squares). Four accumulators (lane l of
  // accumulator j takes elements i with i / L = j mod 4) to hide the FMA latency, then
  // (a0 + a1) + (a2 + a3) and hsum: a fixed order for every call.
  static float dot(const float* a, const float* b, int64_t n) {
    F a0 = V::zero(), a1 = V::zero(), a2 = V::zero(), a3 = V::zero();
    int64_t i = 0;
    for (; i + 4 * L <= n; i += 4 * L) {
      a0 = V::fma(V::load(a + i), V::load(b + i), a0);
      a1 = V::fma(V::load(a + i + L), V::load(b + i + L), a1);
      a2 = V::fma(V::load(a + i + 2 * L), V::load(b + i + 2 * L), a2);
      a3 = V::fma(V::load(a + i + 3 * L), V::load(b + i + 3 * L), a3);
    }
    for (; i + L <= n; i += L) a0 = V::fma(V::load(a + i), V::load(b + i), a0);
    if (i < n) {
      const int rest = static_cast<int>(n - i);
      a0 = V::fma(V::load_partial(a + i, rest), V::load_partial(b + i, rest), a0);
    }
    return V::hsum(V::add(V::add(a0, a1), V::add(a2, a3)));
  }

  // y = (x * inv_rms) * weight, rounded like the oracle; the sum of squares is f32 lanes.
  static void rms_norm_row(const float* x, const float* weight, int64_t dim, float eps, float* y) {
    const double ss = dot(x, x, dim);
    const F inv = V::set1(static_cast<float>(1.0 / std::sqrt(ss / static_cast<double>(dim) + eps)));
    int64_t i = 0;
    for (; i + L <= dim; i += L) V::store(y + i, V::mul(V::mul(V::load(x + i), inv), V::load(weight + i)));
    if (i < dim) {
      const int rest = static_cast<int>(dim - i);
      V::store_partial(y + i, V::mul(V::mul(V::load_partial(x + i, rest), inv), V::load_partial(weight + i, rest)),
                       rest);
    }
  }

  // e^x for x clamped to [-87.3, 88.3] (results stay normal and finite): x = n ln2 + r with
  // |r| <= ln2 / 2 (ln2 split in two for an exact n * ln2_hi), a degree-7 polynomial for e^r
  // (relative error ~2 ulp), times 2^n built in the exponent bits.
  static F exp(F x) {
    x = V::min(V::max(x, V::set1(-87.3f)), V::set1(88.3f));
    const F n = V::round_int(V::mul(x, V::set1(1.44269504088896341f)));
    F r = V::fma(n, V::set1(-0.693359375f), x);
    r = V::fma(n, V::set1(2.12194440e-4f), r);
    F p = V::set1(1.9875691500e-4f);
    p = V::fma(p, r, V::set1(1.3981999507e-3f));
    p = V::fma(p, r, V::set1(8.3334519073e-3f));
    p = V::fma(p, r, V::set1(4.1665795894e-2f));
    p = V::fma(p, r, V::set1(1.6666665459e-1f));
    p = V::fma(p, r, V::set1(5.0000001201e-1f));
    p = V::fma(p, V::mul(r, r), V::add(r, V::set1(1.0f)));
    return V::mul(p, V::exp2_int(n));
  }

  static F silu_times(F g, F u) {
    const F e = exp(V::sub(V::zero(), g));
    return V::mul(V::div(g, V::add(V::set1(1.0f), e)), u);
  }

  static void silu_mul(float* gate, const float* up, int64_t n) {
    int64_t i = 0;
    for (; i + L <= n; i += L) V::store(gate + i, silu_times(V::load(gate + i), V::load(up + i)));
    if (i < n) {
      const int rest = static_cast<int>(n - i);
      V::store_partial(gate + i, silu_times(V::load_partial(gate + i, rest), V::load_partial(up + i, rest)), rest);
    }
  }

  static void exp_affine(const float* x, int64_t n, float shift, float scale, float* y) {
    const F s = V::set1(shift), k = V::set1(scale);
    int64_t i = 0;
    for (; i + L <= n; i += L) V::store(y + i, exp(V::mul(V::sub(V::load(x + i), s), k)));
    if (i < n) {
      const int rest = static_cast<int>(n - i);
      V::store_partial(y + i, exp(V::mul(V::sub(V::load_partial(x + i, rest), s), k)), rest);
    }
  }
};

template <class V>
KernelTable make_simd_table(const char* name) {
  return KernelTable{name,
                     &MatmulRows<V>::run,
                     &MatmulTransposed<V>::run,
                     &Elementwise<V>::rms_norm_row,
                     &Elementwise<V>::silu_mul,
                     &Elementwise<V>::exp_affine};
}
