#include "tools/random_weights.h"

#include <cmath>

#include "base/random.h"

namespace dsv3 {
namespace {

// xoshiro256** with a normal draw.
struct Xoshiro : Xoshiro256 {
  using Xoshiro256::Xoshiro256;
  // Approximately N(0, 1): four 16-bit uniforms summed, centred and scaled to unit variance.
  float normal() {
    uint64_t r = next();
    float sum = static_cast<float>(r & 0xFFFF) + static_cast<float>((r >> 16) & 0xFFFF) +
                static_cast<float>((r >> 32) & 0xFFFF) + static_cast<float>(r >> 48);
    // each uniform on [0, 65535]: mean 32767.5, variance 65536^2 / 12
    constexpr float kMean = 4 * 32767.5f;
    constexpr float kInvStd = 1.7320508f / 65536.0f;  // sqrt(12 / 4) / 65536
    return (sum - kMean) * kInvStd;
  }
};

uint64_t mix(uint64_t a, uint64_t b) {
  uint64_t x = a ^ (b * 0xD6E8FEB86659FD93ull);
  return splitmix64(x);
}

}  // namespace

uint64_t hash_name(const std::string& s) {
  uint64_t h = 1469598103934665603ull;  // FNV-1a
  for (unsigned char c : s) {
    h ^= c;
    h *= 1099511628211ull;
  }
  return h;
}

void draw_random_rows(const RandomTensor& t, uint64_t seed, int64_t r0, int64_t r1, float* out) {
  const uint64_t base = mix(seed, hash_name(t.seed_name));
  const float inv_sqrt_in = 1.0f / std::sqrt(static_cast<float>(t.cols));
  const int64_t block_cols = (t.cols + 127) / 128;
  std::vector<float> magnitude(static_cast<size_t>(block_cols));
  int64_t magnitude_row_block = -1;
  for (int64_t r = r0; r < r1; ++r) {
    Xoshiro rng(mix(base, static_cast<uint64_t>(r)));
    float* o = out + (r - r0) * t.cols;
    switch (t.kind) {
      case RandomKind::Projection: {
        if (r / 128 != magnitude_row_block) {
          magnitude_row_block = r / 128;
          for (int64_t bc = 0; bc < block_cols; ++bc) {
            Xoshiro m(mix(mix(base, 0x5C41E5ull + static_cast<uint64_t>(magnitude_row_block)), static_cast<uint64_t>(bc)));
            magnitude[bc] = std::exp(0.5f * m.normal());
          }
        }
        for (int64_t c = 0; c < t.cols; ++c) o[c] = rng.normal() * inv_sqrt_in * magnitude[c / 128];
        break;
      }
      case RandomKind::Matrix:
        for (int64_t c = 0; c < t.cols; ++c) o[c] = rng.normal() * inv_sqrt_in;
        break;
      case RandomKind::Embedding:
        for (int64_t c = 0; c < t.cols; ++c) o[c] = rng.normal();
        break;
      case RandomKind::Norm:
        for (int64_t c = 0; c < t.cols; ++c) o[c] = 1.0f + 0.1f * rng.normal();
        break;
      case RandomKind::Bias:
        for (int64_t c = 0; c < t.cols; ++c) o[c] = 0.1f * rng.normal();
        break;
    }
  }
}

}  // namespace dsv3
