// Kernel microbenchmarks at DeepSeek-V3's real shapes, with the machine's measured ceilings
// next to them:
//   BM_Matmul/<shape>/<n>/<threads>  decode (n = 1): weight GB/s and its ratio to the read
//                                    bandwidth probe at the same thread count ("bw_ratio");
//                                    prefill (n = 512): GFLOP/s and the ratio to the FMA probe
//                                    ("peak_ratio").
//   BM_ReadBandwidth/<threads>, BM_PeakFlops/<threads>: the probes themselves.
// Weights are random FP8 (BF16 for the head; int8 / int4 where the name says) and, for decode, rotated over enough copies that
// every pass comes from memory, not the last-level cache (as MoE decode reads new experts).
// With DSV3_KB_WEIGHTS=cached, decode reuses one copy instead, which then comes from the caches
// where it fits (L2/L3): the kernel's own ceiling (its instructions per byte) next to the
// figure from memory; a kernel that is no faster this way is bound by its compute.
// The kernel path is the best this CPU has, or DSV3_ISA=scalar|avx2|avx512. FP8 products run
// exact (f32 FMAs), or on vdpbf16ps with DSV3_MATH=bf16 (peak_ratio then against that
// instruction's probe, BM_PeakBf16Dot).

#include <benchmark/benchmark.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <algorithm>
#include <iterator>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "base/mapped_file.h"
#include "kernels/ops.h"
#include "kernels/matmul_math.h"
#include "kernels/probe.h"

using namespace dsv3;

namespace {

constexpr size_t kCacheFlushBytes = size_t{256} << 20;  // weights rotated per decode pass >= this
constexpr size_t kProbeBytes = size_t{1} << 30;

struct Shape {
  const char* name;
  int64_t rows, cols;
  DType dtype;
};
// [out, in] as stored.
const Shape kShapes[] = {
    {"expert_gate_up_2048x7168", 2048, 7168, DType::F8_E4M3},
    {"expert_down_7168x2048", 7168, 2048, DType::F8_E4M3},
    {"dense_gate_up_18432x7168", 18432, 7168, DType::F8_E4M3},
    {"kv_a_576x7168", 576, 7168, DType::F8_E4M3},
    {"head_129280x7168_bf16", 129280, 7168, DType::BF16},
    // Moonlight-16B-A3B (bench-moonlight-8l): 2048 wide, 2816-row shared experts.
    {"moonlight_shared_gate_up_2816x2048", 2816, 2048, DType::F8_E4M3},
    {"moonlight_shared_down_2048x2816", 2048, 2816, DType::F8_E4M3},
    {"moonlight_head_129280x2048_bf16", 129280, 2048, DType::BF16},
    // The grouped integer formats (docs/formats.md), group size 64: I8 int8, U8 packed int4.
    {"expert_gate_up_2048x7168_int8", 2048, 7168, DType::I8},
    {"expert_gate_up_2048x7168_int4", 2048, 7168, DType::U8},
    {"moonlight_head_129280x2048_int8", 129280, 2048, DType::I8},
    // The int4-experts mix of Moonlight (docs/benchmarks.md): short int4 expert rows, int8 rest.
    {"moonlight_expert_gate_up_1408x2048_int4", 1408, 2048, DType::U8},
    {"moonlight_expert_down_2048x1408_int4", 2048, 1408, DType::U8},
    {"moonlight_shared_gate_up_2816x2048_int8", 2816, 2048, DType::I8},
    // The int8 mix's routed experts.
    {"moonlight_expert_gate_up_1408x2048_int8", 1408, 2048, DType::I8},
    {"moonlight_expert_down_2048x1408_int8", 2048, 1408, DType::I8},
};
constexpr int64_t kGroupSize = 64;

ThreadPool& pool_of(int threads) {
  static std::map<int, std::unique_ptr<ThreadPool>> pools;
  auto& p = pools[threads];
  if (!p) p = std::make_unique<ThreadPool>(threads);
  return *p;
}

// Bytes in 2 MB pages where the system gives them, as a model's weights are (base/mapped_file.h):
// with 4 KB pages a kernel streaming from memory also pays a TLB miss per page.
struct HugePageBytes {
  HugePageBuffer p;
  void resize(size_t bytes) {
    p = allocate_huge_pages(bytes);
    if (!p && bytes > 0) std::abort();
  }
  uint8_t* data() { return p.get(); }
  uint8_t& operator[](size_t i) { return p.get()[i]; }
};

// Random-looking but cheap to generate weights (a 100 GB/s fill, not a Mersenne twister).
struct OwnedWeight {
  HugePageBytes bytes;
  std::vector<float> scales;
  std::vector<uint16_t> group_scales;
  LinearWeight view;
};
OwnedWeight make_weight(const Shape& s, uint64_t seed) {
  OwnedWeight w;
  const int64_t row_bytes = s.dtype == DType::U8 ? (s.cols + 1) / 2 : s.cols * dtype_size(s.dtype);
  const size_t n = static_cast<size_t>(s.rows * row_bytes);
  w.bytes.resize(n);
  uint64_t x = seed * 0x9E3779B97F4A7C15ull + 1;
  for (size_t i = 0; i < n; i += 8) {
    x ^= x << 13, x ^= x >> 7, x ^= x << 17;
    uint64_t v = x & 0x3F3F3F3F3F3F3F3Full;  // small-magnitude e4m3 / bf16 bytes, never NaN
    std::memcpy(&w.bytes[i], &v, std::min<size_t>(8, n - i));
  }
  w.view.dtype = s.dtype;
  w.view.rows = s.rows;
  w.view.cols = s.cols;
  w.view.data = w.bytes.data();
  if (s.dtype == DType::F8_E4M3) {
    w.view.block_rows = w.view.block_cols = 128;
    w.scales.assign(static_cast<size_t>((s.rows + 127) / 128 * ((s.cols + 127) / 128)), 1.0f / 256);
    w.view.scale_inv = w.scales.data();
  }
  if (s.dtype == DType::I8 || s.dtype == DType::U8) {
    w.view.group_size = kGroupSize;
    w.group_scales.assign(static_cast<size_t>(s.rows * ((s.cols + kGroupSize - 1) / kGroupSize)), f32_to_f16(1.0f / 256));
    w.view.group_scales = w.group_scales.data();
  }
  return w;
}

bool weights_cached() {
  static const bool cached = [] {
    const char* e = std::getenv("DSV3_KB_WEIGHTS");
    return e != nullptr && std::strcmp(e, "cached") == 0;
  }();
  return cached;
}

// The probes, measured once per thread count (and kernel path) and reused by every benchmark.
double read_bandwidth(int threads) {
  static std::map<int, double> cache;
  auto it = cache.find(threads);
  if (it != cache.end()) return it->second;
  return cache[threads] = kernels::measure_read_bandwidth(pool_of(threads), kProbeBytes).best_bytes_per_s;
}
double peak_flops(int threads) {
  static std::map<int, double> cache;
  auto it = cache.find(threads);
  if (it != cache.end()) return it->second;
  // The peak of the instructions the FP8 products run on: f32 FMAs, or vdpbf16ps (DSV3_MATH=bf16).
  return cache[threads] = kernels::measure_matmul_math_peak(pool_of(threads)).best_flops_per_s;
}

// The weights of the shape being benchmarked (one set alive at a time: the head is 1.8 GB).
const std::vector<OwnedWeight>& weights_for(int shape, int copies) {
  static int cached_shape = -1;
  static std::vector<OwnedWeight> cached;
  if (cached_shape != shape || static_cast<int>(cached.size()) < copies) {
    cached.clear();
    for (int c = 0; c < copies; ++c) cached.push_back(make_weight(kShapes[shape], c + 1));
    cached_shape = shape;
  }
  return cached;
}

void BM_Matmul(benchmark::State& state) {
  const int shape = static_cast<int>(state.range(0));
  const int64_t n = state.range(1);
  const int threads = static_cast<int>(state.range(2));
  const Shape& s = kShapes[shape];
  const uint64_t weight_bytes = make_weight({s.name, 1, s.cols, s.dtype}, 0).view.bytes() * s.rows;
  // Decode streams weights from memory: rotate over copies worth more than any cache.
  const int copies = n <= 8 && !weights_cached()
                         ? static_cast<int>(std::max<uint64_t>(1, (kCacheFlushBytes + weight_bytes - 1) / weight_bytes))
                         : 1;
  const auto& ws = weights_for(shape, copies);
  std::vector<float> x(static_cast<size_t>(n * s.cols)), y(static_cast<size_t>(n * s.rows));
  for (size_t i = 0; i < x.size(); ++i) x[i] = static_cast<float>((i * 2654435761u) % 1000) * 1e-3f - 0.5f;
  ThreadPool& pool = pool_of(threads);
  const double bw = read_bandwidth(threads), peak = peak_flops(threads);
  size_t next = 0;
  for (auto _ : state) {
    kernels::matmul(pool, ws[next].view, x.data(), n, y.data());
    benchmark::DoNotOptimize(y.data());
    next = (next + 1) % copies;  // ws may hold more copies, made for another n
  }
  const double bytes = static_cast<double>(ws[0].view.bytes());
  const double flops = 2.0 * static_cast<double>(n) * s.rows * s.cols;
  using C = benchmark::Counter;
  state.counters["GB/s"] = C(bytes * 1e-9, C::kIsIterationInvariantRate);
  state.counters["GFLOP/s"] = C(flops * 1e-9, C::kIsIterationInvariantRate);
  state.counters["bw_ratio"] = C(bytes / bw, C::kIsIterationInvariantRate);      // achieved / probe
  state.counters["peak_ratio"] = C(flops / peak, C::kIsIterationInvariantRate);  // achieved / probe
  state.SetLabel(std::string(kernels::isa_name(kernels::active_isa())) + " " + s.name +
                 (weights_cached() && n <= 8 ? " (weights cached)" : ""));
}

// MLA decode's per-head products on kv_b_proj [H * (nope + v), kv_lora] = [32768, 512] FP8:
// W_UK_h^T q_nope_h and W_UV_h o_lat_h for 128 heads, as 256 separate calls (batched = 0) or
// one matmul_batch (batched = 1); the difference is the thread synchronisation.
void BM_KvBHeads(benchmark::State& state) {
  const bool batched = state.range(0) != 0;
  const int threads = static_cast<int>(state.range(1));
  const int64_t H = 128, nope = 128, v = 128, R = 512, n = 1;
  static const OwnedWeight kv_b = make_weight({"kv_b", H * (nope + v), R, DType::F8_E4M3}, 7);
  std::vector<float> q(H * nope, 0.01f), q_abs(H * R), o_lat(H * R, 0.01f), o(H * v);
  std::vector<kernels::MatmulJob> jobs;
  for (int64_t h = 0; h < H; ++h) {
    jobs.push_back({kv_b.view.row_band(h * (nope + v), nope), q.data() + h * nope, n, H * nope, q_abs.data() + h * R,
                    H * R, true});
    jobs.push_back({kv_b.view.row_band(h * (nope + v) + nope, v), o_lat.data() + h * R, n, H * R, o.data() + h * v,
                    H * v, false});
  }
  ThreadPool& pool = pool_of(threads);
  for (auto _ : state) {
    if (batched) {
      kernels::matmul_batch(pool, jobs);
    } else {
      for (const auto& j : jobs) {
        if (j.transposed) kernels::matmul_transposed(pool, j.w, j.x, j.n, j.ldx, j.y, j.ldy);
        else kernels::matmul(pool, j.w, j.x, j.n, j.ldx, j.y, j.ldy);
      }
    }
    benchmark::DoNotOptimize(o.data());
  }
  state.counters["GB/s"] = benchmark::Counter(static_cast<double>(kv_b.view.bytes()) * 1e-9,
                                              benchmark::Counter::kIsIterationInvariantRate);
}

void BM_ReadBandwidth(benchmark::State& state) {
  const int threads = static_cast<int>(state.range(0));
  kernels::BandwidthProbe p;
  for (auto _ : state) p = kernels::measure_read_bandwidth(pool_of(threads), kProbeBytes);
  state.counters["best_GB/s"] = p.best_bytes_per_s * 1e-9;
  state.counters["median_GB/s"] = p.median_bytes_per_s * 1e-9;
}

void BM_PeakBf16Dot(benchmark::State& state) {
  const int threads = static_cast<int>(state.range(0));
  kernels::FlopsProbe p;
  for (auto _ : state) p = kernels::measure_peak_bf16_dot_flops(pool_of(threads));
  state.counters["best_GFLOP/s"] = p.best_flops_per_s * 1e-9;
  state.counters["median_GFLOP/s"] = p.median_flops_per_s * 1e-9;
  state.SetLabel("vdpbf16ps");
}

void BM_PeakFlops(benchmark::State& state) {
  const int threads = static_cast<int>(state.range(0));
  kernels::FlopsProbe p;
  for (auto _ : state) p = kernels::measure_peak_flops(pool_of(threads), kernels::active_isa());
  state.counters["best_GFLOP/s"] = p.best_flops_per_s * 1e-9;
  state.counters["median_GFLOP/s"] = p.median_flops_per_s * 1e-9;
  state.SetLabel(kernels::isa_name(kernels::active_isa()));
}

std::vector<int64_t> thread_counts() {
  std::vector<int64_t> t = {1, 2};
  const int cores = ThreadPool::available_cores();
  if (cores > 2) t.push_back(cores);
  return t;
}

void register_benchmarks() {
  for (int64_t threads : thread_counts()) {
    benchmark::RegisterBenchmark("BM_ReadBandwidth", BM_ReadBandwidth)->Arg(threads)->Iterations(1)->UseRealTime();
    benchmark::RegisterBenchmark("BM_PeakFlops", BM_PeakFlops)->Arg(threads)->Iterations(1)->UseRealTime();
    if (kernels::matmul_math_supported(kernels::MatmulMath::Bf16))
      benchmark::RegisterBenchmark("BM_PeakBf16Dot", BM_PeakBf16Dot)->Arg(threads)->Iterations(1)->UseRealTime();
  }
  for (int64_t threads : thread_counts())
    for (int64_t batched : {0, 1})
      benchmark::RegisterBenchmark("BM_KvBHeads", BM_KvBHeads)
          ->Args({batched, threads})
          ->ArgNames({"batched", "threads"})
          ->UseRealTime()
          ->Unit(benchmark::kMicrosecond);
  for (int shape = 0; shape < static_cast<int>(std::size(kShapes)); ++shape)
    for (int64_t n : {1, 2, 3, 4, 5, 6, 8, 12, 16, 32, 64, 256, 512})  // decode, the expert sizes of a batched decode, prefill
      for (int64_t threads : thread_counts()) {
        auto* b = benchmark::RegisterBenchmark((std::string("BM_Matmul/") + kShapes[shape].name).c_str(), BM_Matmul)
                      ->Args({shape, n, threads})
                      ->ArgNames({"shape", "n", "threads"})
                      ->UseRealTime()
                      ->Unit(benchmark::kMillisecond);
        if (n > 8 && kShapes[shape].rows > 100000) b->Iterations(1);  // ~1 TFLOP per call
      }
}

}  // namespace

int main(int argc, char** argv) {
  if (Status st = kernels::set_matmul_math_from_env(); !st.ok()) {
    std::fprintf(stderr, "%s\n", st.error().message().c_str());
    return 2;
  }
  if (Status st = kernels::select_isa_from_env(); !st.ok()) {
    std::fprintf(stderr, "%s\n", st.error().message().c_str());
    return 2;
  }
  register_benchmarks();
  benchmark::Initialize(&argc, argv);
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}
