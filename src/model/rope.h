#pragma once
// Rotary position embedding with YaRN frequency interpolation, as DeepSeek's reference
// precompute_freqs_cis / apply_rotary_emb (model.py). Pairs are interleaved: elements 2j and
// 2j+1 of a rope slice form one complex number rotated by t * f_j.

#include <cstdint>
#include <vector>

#include "format/model_config.h"

namespace dsv3 {

class Rope {
 public:
  explicit Rope(const ModelConfig& config);
  int64_t dim() const { return dim_; }
  // Frequencies f_j, j in [0, dim/2), float32 as the reference computes them.
  const std::vector<float>& inv_freq() const { return inv_freq_; }
  // cos/sin of t * f_j for one position: out arrays of dim/2.
  void angles(int64_t position, float* cos_out, float* sin_out) const;
  // Rotates `count` rope slices of `dim` values, `stride` floats apart, all at `position`.
  void apply(float* x, int64_t count, int64_t stride, int64_t position) const;
  // The same rotation with half-split pairs: elements j and j + dim/2 form the complex number
  // rotated by t * f_j (DeepSeek-V3.2's indexer; MLA itself stays interleaved).
  void apply_half_split(float* x, int64_t count, int64_t stride, int64_t position) const;

 private:
  int64_t dim_;
  std::vector<float> inv_freq_;
};

}  // namespace dsv3
