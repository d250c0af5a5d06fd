#pragma once
// Element types as safetensors names them, and the scalar codecs for the narrow float formats.
// These codecs are the oracle: SIMD kernels are tested against them.

#include <cmath>
#include <cstdint>
#include <cstring>
#include <optional>
#include <string_view>

namespace dsv3 {

enum class DType : uint8_t {
  F64, F32, F16, BF16, F8_E4M3, F8_E5M2,
  I64, I32, I16, I8, U64, U32, U16, U8, BOOL,
};

// Parses a safetensors dtype string ("BF16", "F8_E4M3", ...); nullopt for unknown names.
std::optional<DType> dtype_from_name(std::string_view name);
const char* dtype_name(DType t);
// Size of one element in bytes (inline: kernels compute row addresses with it).
constexpr int dtype_size(DType t) {
  switch (t) {
    case DType::F64: case DType::I64: case DType::U64: return 8;
    case DType::F32: case DType::I32: case DType::U32: return 4;
    case DType::F16: case DType::BF16: case DType::I16: case DType::U16: return 2;
    case DType::F8_E4M3: case DType::F8_E5M2: case DType::I8: case DType::U8: case DType::BOOL: return 1;
  }
  return 0;
}
// True for the float types a linear weight may be stored in.
inline bool is_float_weight_dtype(DType t) {
  return t == DType::F32 || t == DType::BF16 || t == DType::F16 || t == DType::F8_E4M3;
}

inline float f32_from_bits(uint32_t u) {
  float f;
  std::memcpy(&f, &u, 4);
  return f;
}
inline uint32_t bits_from_f32(float f) {
  uint32_t u;
  std::memcpy(&u, &f, 4);
  return u;
}

// bfloat16: the top 16 bits of a float32.
inline float bf16_to_f32(uint16_t h) { return f32_from_bits(static_cast<uint32_t>(h) << 16); }
// Round to nearest even; NaN stays NaN (quiet).
inline uint16_t f32_to_bf16(float f) {
  uint32_t u = bits_from_f32(f);
  if ((u & 0x7FFFFFFF) > 0x7F800000) return static_cast<uint16_t>((u >> 16) | 0x40);
  u += 0x7FFF + ((u >> 16) & 1);
  return static_cast<uint16_t>(u >> 16);
}

// IEEE half precision.
float f16_to_f32(uint16_t h);
uint16_t f32_to_f16(float f);

// FP8 e4m3 "fn" variant: 1 sign, 4 exponent bits (bias 7), 3 mantissa bits, no infinities,
// 0x7F/0xFF are NaN, max 448, subnormals below 2^-6.
extern const float kE4M3ToF32[256];
inline float e4m3_to_f32(uint8_t b) { return kE4M3ToF32[b]; }
inline bool e4m3_is_nan(uint8_t b) { return (b & 0x7F) == 0x7F; }
// Nearest e4m3 value, ties to even, saturating at +-448 (NaN maps to 0x7F).
uint8_t f32_to_e4m3(float f);

}  // namespace dsv3
