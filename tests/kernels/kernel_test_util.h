#pragma once
// Shared by the kernel tests: random weights in every storage format, the tables this CPU
// can run, and comparison against the scalar oracle with a tolerance derived from f32
// rounding (see tolerance()).

#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <cstring>
#include <random>
#include <string>
#include <vector>

#include "base/cpu_features.h"
#include "kernels/cpu/tables.h"
#include "kernels/dispatch.h"
#include "kernels/kernel_table.h"
#include "tensor/linear_weight.h"

namespace dsv3::test {

// A weight tensor [full_rows, cols] owned by the test, viewed as LinearWeight.
struct TestWeight {
  std::vector<uint8_t> bytes;
  std::vector<float> scales;
  LinearWeight view;
};

// Values ~ N(0, 0.05) (F32/BF16/F16, rounded to the format) or random non-NaN e4m3 bytes with
// scales in [2^-10, 2^-6) per block (FP8), which is what DeepSeek's checkpoints look like.
inline TestWeight make_weight(DType dtype, int64_t full_rows, int64_t cols, uint32_t seed, int64_t block_rows = 128,
                              int64_t block_cols = 128) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> normal(0.0f, 0.05f);
  TestWeight w;
  const int64_t n = full_rows * cols;
  w.bytes.resize(static_cast<size_t>(n * dtype_size(dtype)));
  for (int64_t i = 0; i < n; ++i) {
    switch (dtype) {
      case DType::F8_E4M3: {
        uint8_t b;
        do b = static_cast<uint8_t>(rng()); while (e4m3_is_nan(b));
        w.bytes[i] = b;
        break;
      }
      case DType::BF16: {
        uint16_t h = f32_to_bf16(normal(rng));
        std::memcpy(&w.bytes[i * 2], &h, 2);
        break;
      }
      case DType::F16: {
        uint16_t h = f32_to_f16(normal(rng));
        std::memcpy(&w.bytes[i * 2], &h, 2);
        break;
      }
      default: {
        float f = normal(rng);
        std::memcpy(&w.bytes[i * 4], &f, 4);
      }
    }
  }
  w.view.dtype = dtype;
  w.view.rows = full_rows;
  w.view.cols = cols;
  w.view.data = w.bytes.data();
  if (dtype == DType::F8_E4M3) {
    w.view.block_rows = block_rows;
    w.view.block_cols = block_cols;
    const int64_t sr = (full_rows + block_rows - 1) / block_rows, sc = (cols + block_cols - 1) / block_cols;
    std::uniform_real_distribution<float> u(1.0f / 1024, 1.0f / 64);
    w.scales.resize(static_cast<size_t>(sr * sc));
    for (float& s : w.scales) s = u(rng);
    w.view.scale_inv = w.scales.data();
  }
  return w;
}

inline std::vector<float> random_activations(int64_t count, uint32_t seed, float sd = 1.0f) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> normal(0.0f, sd);
  std::vector<float> v(static_cast<size_t>(count));
  for (float& f : v) f = normal(rng);
  return v;
}

struct NamedTable {
  std::string name;
  const kernels::KernelTable* table;
};

// Every SIMD table this CPU can execute, including the 16-lane emulation of AVX-512 on AVX2.
inline std::vector<NamedTable> fast_tables() {
  std::vector<NamedTable> out;
  if (cpu_features().has_avx2_path()) {
    out.push_back({"avx2", &kernels::cpu::avx2_table()});
    out.push_back({"avx512_emulated", &kernels::cpu::avx512_emulated_table()});
  }
  if (cpu_features().has_avx512_path()) out.push_back({"avx512", &kernels::cpu::avx512_table()});
  if (cpu_features().has_avx512_path() && cpu_features().avx512_vnni)
    out.push_back({"avx512_vnni", &kernels::cpu::avx512_vnni_table()});
  return out;
}

// Worst-case bound for a float32 sum computed as `depth` dependent roundings (lane chains of
// FMAs plus the reduction tree), against an exact sum rounded once: each rounding adds at most
// u = 2^-24 relative to the partial sum, and every partial sum is bounded by sum |terms|, so
// |fast - exact| <= depth * u * sum|terms|, and the oracle's own final rounding adds one more u.
// (Standard gamma_n bound, first order: depth * u << 1 here.)
inline double tolerance(int64_t depth, double sum_abs_terms) {
  const double u = std::ldexp(1.0, -24);
  return static_cast<double>(depth + 2) * u * sum_abs_terms + 1e-35;
}

// Compares got[i] with want[i] under tol[i]; on failure prints the worst element (by
// error / tolerance) with its index decoded by `where`.
template <typename Where>
void expect_close(const std::vector<float>& got, const std::vector<float>& want, const std::vector<double>& tol,
                  const std::string& what, Where where) {
  ASSERT_EQ(got.size(), want.size()) << what;
  double worst_ratio = 0;
  size_t worst = 0;
  for (size_t i = 0; i < got.size(); ++i) {
    double err = std::fabs(static_cast<double>(got[i]) - want[i]);
    double ratio = std::isnan(err) ? INFINITY : err / tol[i];
    if (ratio > worst_ratio) {
      worst_ratio = ratio;
      worst = i;
    }
  }
  EXPECT_LE(worst_ratio, 1.0) << what << ": worst at " << where(worst) << " got " << got[worst] << " want "
                              << want[worst] << " |err| " << std::fabs(got[worst] - want[worst]) << " tol "
                              << tol[worst];
}

}  // namespace dsv3::test
