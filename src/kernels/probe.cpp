#include "kernels/probe.h"

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <vector>

#include "base/mapped_file.h"
#include "base/result.h"
#include "kernels/cpu/bf16_dot.h"
#include "kernels/cpu/tables.h"
#include "kernels/matmul_math.h"

namespace dsv3::kernels {
namespace {

using Clock = std::chrono::steady_clock;

double seconds_since(Clock::time_point t0) { return std::chrono::duration<double>(Clock::now() - t0).count(); }

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v.empty() ? 0.0 : v[v.size() / 2];
}

// Baseline (any x86-64) versions for Isa::Scalar.
float scalar_read_sum(const float* p, int64_t n) {
  float s[4] = {0, 0, 0, 0};
  for (int64_t i = 0; i + 4 <= n; i += 4)
    for (int j = 0; j < 4; ++j) s[j] += p[i + j];
  return (s[0] + s[1]) + (s[2] + s[3]);
}
double scalar_fma_burst(int64_t iterations, float* sink) {
  float acc[12];
  for (int i = 0; i < 12; ++i) acc[i] = 0.001f * static_cast<float>(i);
  for (int64_t it = 0; it < iterations; ++it)
    for (int i = 0; i < 12; ++i) acc[i] = acc[i] * 0.999999f + 1e-7f;
  float s = 0;
  for (float a : acc) s += a;
  *sink = s;
  return static_cast<double>(iterations) * 12 * 2;
}
const cpu::ProbeKernels kScalarProbes{&scalar_read_sum, &scalar_fma_burst};

const cpu::ProbeKernels& probes_for(Isa isa) {
  (void)table_for(isa);  // checks that this CPU runs `isa`
  switch (isa) {
    case Isa::Avx2: return cpu::avx2_probe_kernels();
    case Isa::Avx512: return cpu::avx512_probe_kernels();
    default: return kScalarProbes;
  }
}

}  // namespace

ReadBandwidthProbe::ReadBandwidthProbe(ThreadPool& pool, size_t bytes) : pool_(&pool) {
  const int threads = pool.size();
  // Each thread's slice is a whole number of 64-float groups.
  per_thread_ = std::max<int64_t>(64, static_cast<int64_t>(bytes / sizeof(float) / threads) / 64 * 64);
  const int64_t total = per_thread_ * threads;
  // In 2 MB pages where the system gives them, as the weights are (base/mapped_file.h): with
  // 4 KB pages this probe read 1.2-2x slower on this project's VMs, below what decode reached.
  buffer_ = allocate_huge_pages(static_cast<uint64_t>(total) * sizeof(float));
  DSV3_CHECK(buffer_ != nullptr, "bandwidth probe: cannot allocate %zu bytes", static_cast<size_t>(total * 4));
  float* data = reinterpret_cast<float*>(buffer_.get());
  pool.run_on_all([&](int t) {  // first touch by the reading thread
    float* p = data + t * per_thread_;
    for (int64_t i = 0; i < per_thread_; ++i) p[i] = static_cast<float>(i & 7);
  });
}

BandwidthProbe ReadBandwidthProbe::measure(int passes) {
  const cpu::ProbeKernels& k = probes_for(best_isa());
  const int threads = pool_->size();
  const int64_t total = per_thread_ * threads;
  const float* data = reinterpret_cast<const float*>(buffer_.get());
  std::vector<float> sinks(static_cast<size_t>(threads));
  std::vector<double> rates;
  for (int pass = 0; pass <= std::max(passes, 1); ++pass) {
    const auto t0 = Clock::now();
    pool_->run_on_all([&](int t) { sinks[t] = k.read_sum(data + t * per_thread_, per_thread_); });
    const double s = seconds_since(t0);
    if (pass > 0) rates.push_back(static_cast<double>(total) * sizeof(float) / s);  // pass 0 warms up
  }
  BandwidthProbe r;
  r.best_bytes_per_s = *std::max_element(rates.begin(), rates.end());
  r.median_bytes_per_s = median(rates);
  r.bytes = static_cast<size_t>(total) * sizeof(float);
  r.threads = threads;
  return r;
}

BandwidthProbe measure_read_bandwidth(ThreadPool& pool, size_t bytes, int passes) {
  return ReadBandwidthProbe(pool, bytes).measure(passes);
}

namespace {
FlopsProbe measure_burst(ThreadPool& pool, double (*burst)(int64_t, float*), double seconds, int passes);
}  // namespace

FlopsProbe measure_peak_flops(ThreadPool& pool, Isa isa, double seconds, int passes) {
  FlopsProbe r = measure_burst(pool, probes_for(isa).fma_burst, seconds, passes);
  r.isa = isa;
  return r;
}

FlopsProbe measure_peak_bf16_dot_flops(ThreadPool& pool, double seconds, int passes) {
  DSV3_CHECK(matmul_math_supported(MatmulMath::Bf16), "bf16 dot probe: this CPU lacks AVX512-BF16");
  FlopsProbe r = measure_burst(pool, &cpu::bf16_dot_burst, seconds, passes);
  r.isa = Isa::Avx512;
  return r;
}

FlopsProbe measure_matmul_math_peak(ThreadPool& pool, double seconds, int passes) {
  return matmul_math() == MatmulMath::Bf16 ? measure_peak_bf16_dot_flops(pool, seconds, passes)
                                           : measure_peak_flops(pool, active_isa(), seconds, passes);
}

namespace {
// Runs `burst` (independent chains in registers; returns the FLOPs done) on every thread.
FlopsProbe measure_burst(ThreadPool& pool, double (*burst)(int64_t, float*), double seconds, int passes) {
  const int threads = pool.size();
  // Calibrate the iteration count on one thread so that a pass lasts about `seconds`.
  float sink = 0;
  int64_t iterations = 1 << 14;
  for (;;) {
    const auto t0 = Clock::now();
    burst(iterations, &sink);
    const double s = seconds_since(t0);
    if (s >= seconds / 4 || iterations > (int64_t{1} << 40)) {
      iterations = static_cast<int64_t>(static_cast<double>(iterations) * seconds / std::max(s, 1e-9));
      break;
    }
    iterations *= 4;
  }
  std::vector<float> sinks(static_cast<size_t>(threads));
  std::vector<double> flops(static_cast<size_t>(threads));
  std::vector<double> rates;
  for (int pass = 0; pass <= passes; ++pass) {
    const auto t0 = Clock::now();
    pool.run_on_all([&](int t) { flops[t] = burst(iterations, &sinks[t]); });
    const double s = seconds_since(t0);
    double total = 0;
    for (double f : flops) total += f;
    if (pass > 0) rates.push_back(total / s);
  }
  FlopsProbe r;
  r.best_flops_per_s = *std::max_element(rates.begin(), rates.end());
  r.median_flops_per_s = median(rates);
  r.threads = threads;
  return r;
}
}  // namespace

}  // namespace dsv3::kernels
