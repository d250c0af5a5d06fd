#include "tools/random_weights.h"

#include <cmath>

namespace dsv3 {
namespace {

uint64_t splitmix64(uint64_t& x) {
  uint64_t z = (x += 0x9E3779B97F4A7C15ull);
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  return z ^ (z >> 31);
}

// xoshiro256** generator.
struct Xoshiro {
  uint64_t s[4];
  explicit Xoshiro(uint64_t seed) {
    for (auto& v : s) v = splitmix64(seed);
  }
  static uint64_t rotl(uint64_t x, int k) { return (x << k) | (x >> (64 - k)); }
  uint64_t next() {
    uint64_t result = rotl(s[1] * 5, 7) * 9, t = s[1] << 17;
    s[2] ^= s[0];
    s[3] ^= s[1];
    s[1] ^= s[2];
    s[0] ^= s[3];
    s[2] ^= t;
    s[3] = rotl(s[3], 45);
    return result;
  }
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
