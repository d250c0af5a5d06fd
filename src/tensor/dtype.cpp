#include "tensor/dtype.h"

#include <array>

namespace dsv3 {

namespace {
struct DTypeInfo {
  DType type;
  const char* name;
  int size;
};
constexpr DTypeInfo kInfos[] = {
    {DType::F64, "F64", 8},  {DType::F32, "F32", 4},        {DType::F16, "F16", 2},
    {DType::BF16, "BF16", 2}, {DType::F8_E4M3, "F8_E4M3", 1}, {DType::F8_E5M2, "F8_E5M2", 1},
    {DType::I64, "I64", 8},  {DType::I32, "I32", 4},        {DType::I16, "I16", 2},
    {DType::I8, "I8", 1},    {DType::U64, "U64", 8},        {DType::U32, "U32", 4},
    {DType::U16, "U16", 2},  {DType::U8, "U8", 1},          {DType::BOOL, "BOOL", 1},
};
constexpr bool sizes_agree() {
  for (const auto& i : kInfos)
    if (dtype_size(i.type) != i.size) return false;
  return true;
}
static_assert(sizes_agree(), "dtype_size (dtype.h) and kInfos disagree");

constexpr float e4m3_value(int b) {
  int s = (b & 0x80) ? -1 : 1;
  int e = (b >> 3) & 0xF;
  int m = b & 0x7;
  if (e == 0xF && m == 0x7) return __builtin_nanf("");
  if (e == 0) return static_cast<float>(s) * (static_cast<float>(m) / 8.0f) * (1.0f / 64.0f);
  float p = 1.0f;
  for (int i = 0; i < e - 7; ++i) p *= 2.0f;
  for (int i = 0; i < 7 - e; ++i) p /= 2.0f;
  return static_cast<float>(s) * (1.0f + static_cast<float>(m) / 8.0f) * p;
}

constexpr std::array<float, 256> make_e4m3_table() {
  std::array<float, 256> t{};
  for (int b = 0; b < 256; ++b) t[b] = e4m3_value(b);
  return t;
}
constexpr std::array<float, 256> kTable = make_e4m3_table();
}  // namespace

const float kE4M3ToF32[256] = {
#define R(i) kTable[i], kTable[i + 1], kTable[i + 2], kTable[i + 3], kTable[i + 4], kTable[i + 5], kTable[i + 6], kTable[i + 7]
    R(0),   R(8),   R(16),  R(24),  R(32),  R(40),  R(48),  R(56),  R(64),  R(72),  R(80),
    R(88),  R(96),  R(104), R(112), R(120), R(128), R(136), R(144), R(152), R(160), R(168),
    R(176), R(184), R(192), R(200), R(208), R(216), R(224), R(232), R(240), R(248),
#undef R
};

std::optional<DType> dtype_from_name(std::string_view name) {
  for (const auto& i : kInfos)
    if (name == i.name) return i.type;
  return std::nullopt;
}

const char* dtype_name(DType t) {
  for (const auto& i : kInfos)
    if (i.type == t) return i.name;
  return "?";
}

float f16_to_f32(uint16_t h) {
  uint32_t sign = static_cast<uint32_t>(h & 0x8000) << 16;
  uint32_t exp = (h >> 10) & 0x1F;
  uint32_t man = h & 0x3FF;
  if (exp == 0) {
    if (man == 0) return f32_from_bits(sign);
    // subnormal: value = man * 2^-24
    float v = static_cast<float>(man) * (1.0f / 16777216.0f);
    return sign ? -v : v;
  }
  if (exp == 31) return f32_from_bits(sign | 0x7F800000 | (man << 13));
  return f32_from_bits(sign | ((exp + 112) << 23) | (man << 13));
}

uint16_t f32_to_f16(float f) {
  uint32_t u = bits_from_f32(f);
  uint16_t sign = static_cast<uint16_t>((u >> 16) & 0x8000);
  uint32_t a = u & 0x7FFFFFFF;
  if (a > 0x7F800000) return sign | 0x7E00;  // NaN
  if (a >= 0x477FF000) return sign | 0x7C00;  // overflow (>= 65520 rounds to inf)
  if (a < 0x38800000) {                        // below 2^-14: subnormal or zero
    // value / 2^-24, rounded to nearest even
    float v = f32_from_bits(a) * 16777216.0f;
    float r = std::nearbyint(v);
    return sign | static_cast<uint16_t>(r);
  }
  uint32_t rounded = a + 0xFFF + ((a >> 13) & 1);
  return sign | static_cast<uint16_t>((rounded - 0x38000000) >> 13);
}

uint8_t f32_to_e4m3(float f) {
  uint32_t u = bits_from_f32(f);
  const uint8_t sign = static_cast<uint8_t>((u >> 24) & 0x80);
  const uint32_t a = u & 0x7FFFFFFF;
  if (a > 0x7F800000) return 0x7F;              // NaN
  if (a >= 0x43E00000) return sign | 0x7E;      // >= 448: saturate to the largest finite
  if (a < 0x3C800000) {                         // below 2^-6: subnormal, steps of 2^-9
    float steps = std::nearbyint(f32_from_bits(a) * 512.0f);  // ties to even
    return sign | static_cast<uint8_t>(steps);  // 8 steps is exactly the smallest normal 0x08
  }
  // Normal: keep 3 mantissa bits, rounding to nearest even on the float's bit pattern (a
  // carry out of the mantissa correctly bumps the exponent).
  const uint32_t rounded = a + 0x7FFFF + ((a >> 20) & 1);
  const uint32_t exponent = (rounded >> 23) - 120;  // rebias 127 -> 7
  const uint32_t code = (exponent << 3) | ((rounded >> 20) & 7);
  return sign | static_cast<uint8_t>(code > 0x7E ? 0x7E : code);
}

}  // namespace dsv3
