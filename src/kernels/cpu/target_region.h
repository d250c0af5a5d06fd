#pragma once
// Compiling one region of a file for one instruction set, without a global -m flag.
//
// Everything between DSV3_TARGET_BEGIN_* and DSV3_TARGET_END gets the target attribute; code
// included BEFORE the region (standard headers, tensor/, base/) stays baseline x86-64, so an
// out-of-line copy of, say, std::vector<float>::resize emitted by this file can never carry
// AVX-512 instructions into code that runs before dispatch. Functions of the region may only
// run after dispatch.cpp has checked the CPU (cpu_features()).
//
// Include every header a region needs before opening it.

#if defined(__clang__)
#define DSV3_PRAGMA(x) _Pragma(#x)
#define DSV3_TARGET_BEGIN(isa) DSV3_PRAGMA(clang attribute push(__attribute__((target(isa))), apply_to = function))
#define DSV3_TARGET_END DSV3_PRAGMA(clang attribute pop)
#elif defined(__GNUC__)
#define DSV3_PRAGMA(x) _Pragma(#x)
#define DSV3_TARGET_BEGIN(isa) DSV3_PRAGMA(GCC push_options) DSV3_PRAGMA(GCC target(isa))
#define DSV3_TARGET_END DSV3_PRAGMA(GCC pop_options)
#else
#error "dsv3 kernels need GCC or Clang (per-function target attributes)"
#endif

// The instruction sets of each path, one string each so that every file agrees.
#define DSV3_ISA_AVX2 "avx2,fma,f16c"
#define DSV3_ISA_AVX512 "avx2,fma,f16c,avx512f,avx512bw,avx512vl,avx512dq"
#define DSV3_ISA_AVX512_VNNI "avx2,fma,f16c,avx512f,avx512bw,avx512vl,avx512dq,avx512vnni"
#define DSV3_ISA_AVX512_BF16 "avx2,fma,f16c,avx512f,avx512bw,avx512vl,avx512dq,avx512bf16"
#define DSV3_ISA_AMX "avx2,fma,f16c,avx512f,avx512bw,avx512vl,avx512dq,avx512bf16,amx-tile,amx-bf16"
