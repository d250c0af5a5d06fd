#pragma once
// Symmetric grouped integer quantization (the dsv3_int format, docs/formats.md): each row is
// cut into groups of group_size consecutive values (the last one may be shorter), and each
// group gets one F16 scale s and integers q with w ~ q * s:
//   int8: q in [-127, 127], s = f16(amax / 127), q = round_half_even(w / s);
//   int4: q in [-8, 7], s chosen among f16(amax / 7 * f) for f in kInt4ScaleFactors as the one
//         with the least squared error of the group (ties: the first), q = clamp(round(w / s)).
// A group of zeros gets s = 0, q = 0. Values must be finite.

#include <cstdint>

namespace dsv3 {

// int4: 16 levels are coarse, and the largest value of a group rarely sits where amax / 7
// puts it best; a few candidate scales halve the error of a plain amax rule on Gaussian-like
// rows (and q = -8 becomes usable).
inline constexpr float kInt4ScaleFactors[] = {1.0f, 0.95f, 0.9f, 0.875f, 0.85f, 0.8f, 0.75f};

// Quantizes one row of `cols` values. bits 8: q gets cols bytes (int8); bits 4: q gets
// ceil(cols / 2) bytes, column 2j in the low nibble of byte j (two's complement), a last odd
// column's high nibble 0. scales: ceil(cols / group_size) F16 bit patterns.
void quantize_int_row(const float* x, int64_t cols, int64_t group_size, int bits, uint8_t* q, uint16_t* scales);

}  // namespace dsv3
