#include "runtime/sampler.h"

#include <algorithm>
#include <cmath>
#include <numeric>

namespace dsv3 {
namespace {
uint64_t splitmix64(uint64_t& x) {
  uint64_t z = (x += 0x9E3779B97F4A7C15ull);
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  return z ^ (z >> 31);
}
uint64_t rotl(uint64_t x, int k) { return (x << k) | (x >> (64 - k)); }
}  // namespace

Sampler::Sampler(const SamplingParams& params) : params_(params) {
  uint64_t s = params.seed;
  for (auto& v : state_) v = splitmix64(s);
}

double Sampler::uniform() {  // xoshiro256**, top 53 bits
  uint64_t result = rotl(state_[1] * 5, 7) * 9, t = state_[1] << 17;
  state_[2] ^= state_[0];
  state_[3] ^= state_[1];
  state_[1] ^= state_[2];
  state_[0] ^= state_[3];
  state_[2] ^= t;
  state_[3] = rotl(state_[3], 45);
  return static_cast<double>(result >> 11) * (1.0 / 9007199254740992.0);
}

int32_t argmax(const float* logits, int64_t n) {
  int64_t best = 0;
  for (int64_t i = 1; i < n; ++i)
    if (logits[i] > logits[best]) best = i;
  return static_cast<int32_t>(best);
}

void log_softmax(const float* logits, int64_t n, float* out) {
  float mx = *std::max_element(logits, logits + n);
  double sum = 0.0;
  for (int64_t i = 0; i < n; ++i) sum += std::exp(static_cast<double>(logits[i]) - mx);
  const double lse = mx + std::log(sum);
  for (int64_t i = 0; i < n; ++i) out[i] = static_cast<float>(logits[i] - lse);
}

Result<int32_t> Sampler::sample(const float* logits, int64_t vocab) {
  float mx = -INFINITY;
  for (int64_t i = 0; i < vocab; ++i) {
    if (std::isnan(logits[i]) || logits[i] == INFINITY) return Error("numerical error: the logits contain NaN or +Inf");
    mx = std::max(mx, logits[i]);
  }
  if (mx == -INFINITY) return Error("every token is masked (all logits are -inf)");
  if (params_.temperature <= 0.0f) return argmax(logits, vocab);

  if (params_.top_k <= 0 && params_.top_p >= 1.0f) {
    // Plain sampling from softmax(l / T): one pass in id order, no sort. Each weight is
    // computed once (the exp is most of the cost: ~0.6 ms per pass over 129,280 ids).
    thread_local std::vector<double> weight;
    weight.resize(static_cast<size_t>(vocab));
    double sum = 0.0;
    for (int64_t i = 0; i < vocab; ++i) {
      weight[i] = std::exp((static_cast<double>(logits[i]) - mx) / params_.temperature);
      sum += weight[i];
    }
    double u = uniform() * sum, acc = 0.0;
    int32_t last = 0;
    for (int64_t i = 0; i < vocab; ++i) {
      const double p = weight[i];
      if (p > 0) last = static_cast<int32_t>(i);
      acc += p;
      if (u < acc) return static_cast<int32_t>(i);
    }
    return last;
  }
  // Candidates sorted by logit (ties: lower id first), cut to top_k. Tokens more than 40
  // temperature units below the best carry under e^-40 of its probability: left out.
  order_.clear();
  const double floor_logit = mx - 40.0 * params_.temperature;
  for (int64_t i = 0; i < vocab; ++i)
    if (logits[i] >= floor_logit) order_.push_back(static_cast<int32_t>(i));
  const int64_t n_cand = static_cast<int64_t>(order_.size());
  int64_t k = params_.top_k > 0 ? std::min<int64_t>(params_.top_k, n_cand) : n_cand;
  auto by_logit = [&](int32_t a, int32_t b) { return logits[a] > logits[b] || (logits[a] == logits[b] && a < b); };
  if (k < n_cand) {
    std::nth_element(order_.begin(), order_.begin() + k, order_.end(), by_logit);
    order_.resize(static_cast<size_t>(k));
  }
  std::sort(order_.begin(), order_.end(), by_logit);
  // softmax((l - max) / T): the top candidate gets exp(0) = 1, so a tiny T cannot overflow
  // and behaves as greedy.
  probs_.resize(order_.size());
  double sum = 0.0;
  for (size_t i = 0; i < order_.size(); ++i) {
    double p = std::exp((static_cast<double>(logits[order_[i]]) - mx) / params_.temperature);
    probs_[i] = static_cast<float>(p);
    sum += p;
  }
  // top-p: the smallest prefix whose mass reaches top_p (at least one token).
  size_t keep = order_.size();
  if (params_.top_p < 1.0f) {
    double acc = 0.0, target = params_.top_p * sum;
    for (size_t i = 0; i < order_.size(); ++i) {
      acc += probs_[i];
      if (acc >= target) {
        keep = i + 1;
        break;
      }
    }
    keep = std::max<size_t>(keep, 1);
  }
  double kept_sum = 0.0;
  for (size_t i = 0; i < keep; ++i) kept_sum += probs_[i];
  double u = uniform() * kept_sum, acc = 0.0;
  for (size_t i = 0; i < keep; ++i) {
    acc += probs_[i];
    if (u < acc) return order_[i];
  }
  return order_[keep - 1];
}

}  // namespace dsv3
