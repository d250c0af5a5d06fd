#include "model/rope.h"

#include <algorithm>
#include <cmath>

namespace dsv3 {

Rope::Rope(const ModelConfig& c) : dim_(c.qk_rope_head_dim) {
  const int64_t half = dim_ / 2;
  inv_freq_.resize(static_cast<size_t>(half));
  // f_j = theta^(-2j/dim), computed in float32 like the reference's torch expression.
  for (int64_t j = 0; j < half; ++j) {
    float exponent = static_cast<float>(2 * j) / static_cast<float>(dim_);
    inv_freq_[j] = 1.0f / std::pow(static_cast<float>(c.rope_theta), exponent);
  }
  if (!c.rope_scaling) return;
  // YaRN: frequencies below the correction range are divided by `factor`, those above are
  // kept, a linear ramp blends the two in between.
  const YarnRopeScaling& y = *c.rope_scaling;
  const double orig = static_cast<double>(y.original_max_position_embeddings);
  auto corr_dim = [&](double rotations) {
    return static_cast<double>(dim_) * std::log(orig / (rotations * 2.0 * M_PI)) / (2.0 * std::log(c.rope_theta));
  };
  double low = std::max(std::floor(corr_dim(y.beta_fast)), 0.0);
  double high = std::min(std::ceil(corr_dim(y.beta_slow)), static_cast<double>(dim_ - 1));
  if (low == high) high += 0.001;
  const float factor = static_cast<float>(y.factor);
  for (int64_t j = 0; j < half; ++j) {
    float ramp = static_cast<float>((static_cast<double>(j) - low) / (high - low));
    ramp = std::clamp(ramp, 0.0f, 1.0f);
    float smooth = 1.0f - ramp;
    inv_freq_[j] = inv_freq_[j] / factor * (1.0f - smooth) + inv_freq_[j] * smooth;
  }
}

void Rope::angles(int64_t position, float* cos_out, float* sin_out) const {
  const float t = static_cast<float>(position);
  for (size_t j = 0; j < inv_freq_.size(); ++j) {
    float angle = t * inv_freq_[j];  // float32 product, as torch.outer(t, freqs)
    cos_out[j] = static_cast<float>(std::cos(static_cast<double>(angle)));
    sin_out[j] = static_cast<float>(std::sin(static_cast<double>(angle)));
  }
}

void Rope::apply(float* x, int64_t count, int64_t stride, int64_t position) const {
  const int64_t half = dim_ / 2;
  float cs[512], sn[512];
  std::vector<float> big_c, big_s;
  float* c = cs;
  float* s = sn;
  if (half > 512) {
    big_c.resize(half);
    big_s.resize(half);
    c = big_c.data();
    s = big_s.data();
  }
  angles(position, c, s);
  for (int64_t k = 0; k < count; ++k) {
    float* v = x + k * stride;
    for (int64_t j = 0; j < half; ++j) {
      float re = v[2 * j], im = v[2 * j + 1];
      v[2 * j] = re * c[j] - im * s[j];
      v[2 * j + 1] = re * s[j] + im * c[j];
    }
  }
}

void Rope::apply_half_split(float* x, int64_t count, int64_t stride, int64_t position) const {
  const int64_t half = dim_ / 2;
  std::vector<float> c(static_cast<size_t>(half)), s(static_cast<size_t>(half));
  angles(position, c.data(), s.data());
  for (int64_t k = 0; k < count; ++k) {
    float* v = x + k * stride;
    for (int64_t j = 0; j < half; ++j) {
      float re = v[j], im = v[j + half];
      v[j] = re * c[j] - im * s[j];
      v[j + half] = re * s[j] + im * c[j];
    }
  }
}

}  // namespace dsv3
