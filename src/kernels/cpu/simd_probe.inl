// The two machine probes' inner loops for one Vec type (see kernels/probe.h). Included after
// simd_elementwise.inl.

template <class V>
struct Probe {
  using F = typename V::F;
  static constexpr int L = V::kLanes;

  // Sum of n floats (n a multiple of 4L) with four independent accumulators: a read-only
  // stream the hardware prefetchers can follow, at most one add per loaded vector.
  static float read_sum(const float* p, int64_t n) {
    F a0 = V::zero(), a1 = V::zero(), a2 = V::zero(), a3 = V::zero();
    for (int64_t i = 0; i + 4 * L <= n; i += 4 * L) {
      a0 = V::add(a0, V::load(p + i));
      a1 = V::add(a1, V::load(p + i + L));
      a2 = V::add(a2, V::load(p + i + 2 * L));
      a3 = V::add(a3, V::load(p + i + 3 * L));
    }
    return V::hsum(V::add(V::add(a0, a1), V::add(a2, a3)));
  }

  // `iterations` x 12 independent FMA chains (enough to cover latency x throughput of two
  // FMA pipes on every core we target); returns the floating-point operations done.
  static double fma_burst(int64_t iterations, float* sink) {
    F acc[12];
    for (int i = 0; i < 12; ++i) acc[i] = V::set1(0.001f * static_cast<float>(i));
    const F m = V::set1(0.999999f), c = V::set1(1e-7f);
    for (int64_t it = 0; it < iterations; ++it)
      for (int i = 0; i < 12; ++i) acc[i] = V::fma(acc[i], m, c);
    F s = acc[0];
    for (int i = 1; i < 12; ++i) s = V::add(s, acc[i]);
    *sink = V::hsum(s);  // keeps the loop alive
    return static_cast<double>(iterations) * 12 * L * 2;
  }
};

template <class V>
ProbeKernels make_probe_kernels() {
  return ProbeKernels{&Probe<V>::read_sum, &Probe<V>::fma_burst};
}
