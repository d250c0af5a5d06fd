#pragma once
// What this CPU can run, read once with CPUID/XGETBV (instruction set and OS state support).

#include <string>

namespace dsv3 {

struct CpuFeatures {
  bool avx2 = false, fma = false, f16c = false;
  bool avx512f = false, avx512bw = false, avx512vl = false, avx512dq = false;
  bool avx512_bf16 = false, avx512_fp16 = false, avx512_vnni = false;
  bool amx_tile = false, amx_bf16 = false, amx_int8 = false;
  std::string model_name;  // brand string

  // Baseline fast path: AVX2 + FMA + F16C (every x86-64 server of the last decade).
  bool has_avx2_path() const { return avx2 && fma && f16c; }
  bool has_avx512_path() const { return has_avx2_path() && avx512f && avx512bw && avx512vl && avx512dq; }
  std::string summary() const;
};

const CpuFeatures& cpu_features();

// Asks the kernel for permission to use AMX tile state (Linux arch_prctl); false if refused.
bool request_amx_permission();

}  // namespace dsv3
