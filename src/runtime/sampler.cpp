#include "runtime/sampler.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <numeric>

#include "kernels/ops.h"

namespace dsv3 {
namespace {
// Vocabulary-sized buffers kept per thread (the engine draws for its sequences on the pool
// threads): not a fresh allocation per draw, nor a megabyte held by every sequence.
struct Scratch {
  std::vector<float> weight;   // e^((l - max) / T) per id, 0 for non-candidates
  std::vector<int64_t> count;  // candidates per bucket
  std::vector<double> mass;    // their weight per bucket
  std::vector<int32_t> order;  // one bucket's candidates, sorted
};
Scratch& scratch() {
  thread_local Scratch s;
  return s;
}

constexpr int kBuckets = 4096;

// top-k / top-p without sorting the vocabulary. The kept set is what sorting every candidate
// by (logit desc, id asc) and cutting that order would keep; only the one bucket of logits
// where a cut falls is sorted. (Sorting all 129,280 candidates of a flat distribution took
// ~12 ms per draw, more than a whole 8-sequence decode step's share of a token.)
//
//   candidates  logits >= max - 40 T (the rest carry under e^-40 of the best's probability)
//   buckets     kBuckets equal slices of [max - 40 T, max] by distance from the max: a
//               higher logit never lands in a later bucket, so "buckets before b" is a
//               prefix of the sorted order, and within a bucket the order is a small sort
//   weights     e^((l - max) / T) in f32 (kernels::exp_affine), the top candidate's exactly
//               1 (a tiny T cannot overflow)
// One pass fills each bucket's count and weight; the top_k cut is the bucket where the
// count reaches k, the top_p cut the bucket where the weight (of the top_k set) reaches
// top_p of its total; the draw walks the kept set: whole buckets in id order, then the cut
// bucket's kept prefix in sorted order.

// The kept set: the candidates of buckets before `cut` whole, then scratch().order[0, keep)
// (bucket `cut`'s kept prefix, sorted); `mass` its weight.
struct KeptSet {
  int cut = kBuckets;
  size_t keep = 0;
  double mass = 0.0;
};

// The candidates of one draw and the cuts (apply() fills scratch()).
class Restriction {
 public:
  Restriction(const float* logits, int64_t vocab, float mx, double temperature)
      : logits_(logits),
        vocab_(vocab),
        mx_(mx),
        floor_logit_(mx - 40.0 * temperature),
        per_bucket_(kBuckets / (40.0 * temperature)),
        temperature_(temperature) {}

  // Monotone: l1 >= l2 gives bucket(l1) <= bucket(l2).
  int bucket(float l) const {
    return static_cast<int>(std::min<double>(kBuckets - 1, (mx_ - static_cast<double>(l)) * per_bucket_));
  }
  bool candidate(int64_t i) const { return logits_[i] >= floor_logit_; }

  KeptSet apply(const SamplingParams& params) {
    Scratch& sc = scratch();
    sc.weight.resize(static_cast<size_t>(vocab_));
    sc.count.assign(kBuckets, 0);
    sc.mass.assign(kBuckets, 0.0);
    // The exps in SIMD (most of a draw's cost when done one double at a time: ~0.5 ms over
    // 129,280 ids); masses summed in double.
    kernels::exp_affine(logits_, vocab_, mx_, static_cast<float>(1.0 / temperature_), sc.weight.data());
    KeptSet k;
    if (params.top_k <= 0 && params.top_p >= 1.0f) {  // no cut: every candidate, no buckets
      for (int64_t i = 0; i < vocab_; ++i) {
        if (!candidate(i)) sc.weight[i] = 0.0f;
        k.mass += sc.weight[i];
      }
      return k;
    }
    for (int64_t i = 0; i < vocab_; ++i) {
      if (!candidate(i)) {
        sc.weight[i] = 0.0f;
        continue;
      }
      const int b = bucket(logits_[i]);
      ++sc.count[b];
      sc.mass[b] += sc.weight[i];
    }
    for (int b = 0; b < kBuckets; ++b) k.mass += sc.mass[b];
    if (params.top_k > 0) cut_top_k(params.top_k, k);
    if (params.top_p < 1.0f) cut_top_p(params.top_p, k);
    return k;
  }

  // Calls f(id, weight) for every kept token: the whole buckets before the cut in id order,
  // then the cut bucket's kept prefix in sorted order; stops when f returns true.
  template <class F>
  void for_each_kept(const KeptSet& k, F f) const {
    const Scratch& sc = scratch();
    for (int64_t i = 0; i < vocab_; ++i)
      if (sc.weight[i] != 0.0f && (k.cut == kBuckets || bucket(logits_[i]) < k.cut) &&
          f(static_cast<int32_t>(i), sc.weight[i]))
        return;
    for (size_t j = 0; j < k.keep; ++j)
      if (f(sc.order[j], sc.weight[sc.order[j]])) return;
  }

 private:
  // scratch().order = bucket b's candidates in the sorted order (logit desc, id asc).
  void sort_bucket(int b) const {
    std::vector<int32_t>& order = scratch().order;
    order.clear();
    for (int64_t i = 0; i < vocab_; ++i)
      if (candidate(i) && bucket(logits_[i]) == b) order.push_back(static_cast<int32_t>(i));
    std::sort(order.begin(), order.end(),
              [&](int32_t a, int32_t c) { return logits_[a] > logits_[c] || (logits_[a] == logits_[c] && a < c); });
  }

  // The first top_k candidates: the cut is the bucket where the count reaches top_k.
  void cut_top_k(int64_t top_k, KeptSet& k) const {
    const Scratch& sc = scratch();
    int64_t before = 0;
    double mass_before = 0.0;
    for (int b = 0; b < kBuckets; ++b) {
      if (before + sc.count[b] >= top_k) {
        if (before + sc.count[b] == top_k) {  // the k-th candidate ends bucket b
          k = {b + 1, 0, mass_before + sc.mass[b]};
        } else {  // it is inside bucket b
          sort_bucket(b);
          k = {b, static_cast<size_t>(top_k - before), mass_before};
          for (size_t j = 0; j < k.keep; ++j) k.mass += sc.weight[sc.order[j]];
        }
        return;
      }
      before += sc.count[b];
      mass_before += sc.mass[b];
    }
  }

  // The smallest prefix of the kept set whose weight reaches top_p of its weight (at least
  // one token): the cut is the bucket where the running weight reaches it.
  void cut_top_p(float top_p, KeptSet& k) const {
    const Scratch& sc = scratch();
    const double target = top_p * k.mass;
    double acc = 0.0;
    for (int b = 0; b < kBuckets && b <= k.cut; ++b) {
      const bool partial = b == k.cut;  // the top_k cut's bucket: only order[0, keep) is kept
      if (partial ? k.keep == 0 : sc.count[b] == 0) continue;
      if (!partial && acc + sc.mass[b] < target) {
        acc += sc.mass[b];
        continue;
      }
      if (!partial) sort_bucket(b);
      const size_t limit = partial ? k.keep : sc.order.size();
      size_t m = 0;
      for (double prefix = acc; m < limit;) {
        prefix += sc.weight[sc.order[m++]];
        if (prefix >= target) break;
      }
      k = {b, m, acc};  // m >= 1: the bucket is not empty
      for (size_t j = 0; j < k.keep; ++j) k.mass += sc.weight[sc.order[j]];
      return;
    }
  }

  const float* logits_;
  int64_t vocab_;
  float mx_;
  double floor_logit_, per_bucket_, temperature_;
};

}  // namespace

Sampler::Sampler(const SamplingParams& params, int64_t max_tokens) : params_(params), rng_(params.seed) {
  if (params_.grammar) constraint_ = std::make_unique<grammar::TokenConstraint>(params_.grammar, max_tokens);
  else if (params_.tool_call_grammar)
    constraint_ = std::make_unique<grammar::ToolCallConstraint>(params_.tool_call_grammar, max_tokens);
}

const float* Sampler::process(const float* logits, int64_t vocab, std::vector<float>& scratch) {
  if (!params_.has_logit_processing()) return logits;
  scratch.assign(logits, logits + vocab);
  for (const auto& [id, bias] : params_.logit_bias)
    if (id >= 0 && id < vocab) scratch[id] += bias;  // (requests are checked against the vocabulary before)
  for (const auto& [id, count] : counts_)
    scratch[id] -= params_.presence_penalty + params_.frequency_penalty * static_cast<float>(count);
  if (constraint_) {
    // -inf wherever the mask is clear, 64 ids at a time (ids past the tokenizer's vocabulary,
    // which the model's head may have, are never allowed).
    const std::vector<uint64_t>& words = constraint_->allowed().words;
    constexpr float kMasked = -std::numeric_limits<float>::infinity();
    for (int64_t w = 0; w * 64 < vocab; ++w) {
      const uint64_t bits = w < static_cast<int64_t>(words.size()) ? words[static_cast<size_t>(w)] : 0;
      const int64_t end = std::min<int64_t>(vocab, (w + 1) * 64);
      if (bits == ~uint64_t{0}) continue;
      for (int64_t i = w * 64; i < end; ++i)
        if (!(bits >> (i & 63) & 1)) scratch[static_cast<size_t>(i)] = kMasked;
    }
  }
  return scratch.data();
}

Status Sampler::accept(int32_t token) {
  if (params_.presence_penalty != 0.0f || params_.frequency_penalty != 0.0f) ++counts_[token];
  if (constraint_) return constraint_->accept(token);
  return {};
}

int32_t argmax(const float* logits, int64_t n) {
  int64_t best = 0;
  for (int64_t i = 1; i < n; ++i)
    if (logits[i] > logits[best]) best = i;
  return static_cast<int32_t>(best);
}

std::vector<std::pair<int32_t, float>> top_values(const float* x, int64_t n, int64_t k) {
  std::vector<std::pair<int32_t, float>> best;  // sorted by (value desc, index asc)
  k = std::clamp<int64_t>(k, 0, n);
  if (k == 0) return best;
  best.reserve(static_cast<size_t>(k) + 1);
  for (int64_t i = 0; i < n; ++i) {
    // Indices come in increasing order, so a value equal to the k-th best loses the tie.
    if (static_cast<int64_t>(best.size()) == k && !(x[i] > best.back().second)) continue;
    auto at = std::find_if(best.begin(), best.end(), [&](const auto& e) { return x[i] > e.second; });
    best.insert(at, {static_cast<int32_t>(i), x[i]});
    if (static_cast<int64_t>(best.size()) > k) best.pop_back();
  }
  return best;
}

void log_softmax(const float* logits, int64_t n, float* out) {
  float mx = *std::max_element(logits, logits + n);
  std::vector<float>& e = scratch().weight;  // e^(l - max) in SIMD, summed in double
  e.resize(static_cast<size_t>(n));
  kernels::exp_affine(logits, n, mx, 1.0f, e.data());
  double sum = 0.0;
  for (int64_t i = 0; i < n; ++i) sum += e[i];
  const double lse = mx + std::log(sum);
  for (int64_t i = 0; i < n; ++i) out[i] = static_cast<float>(logits[i] - lse);
}

Status validate_sampling(const SamplingParams& p) {
  if (!std::isfinite(p.temperature) || p.temperature < 0.0f)
    return error_f("temperature must be a finite number >= 0 (got %g)", p.temperature);
  if (!std::isfinite(p.top_p) || p.top_p < 0.0f || p.top_p > 1.0f)
    return error_f("top_p must be a number in [0, 1] (got %g)", p.top_p);
  if (p.top_k < 0) return error_f("top_k must be >= 0 (got %d)", p.top_k);
  return {};
}

namespace {

// The largest logit; error if the logits hold NaN or +Inf, or every one is -inf.
Result<float> checked_max(const float* logits, int64_t vocab) {
  float mx = -INFINITY;
  for (int64_t i = 0; i < vocab; ++i) {
    if (std::isnan(logits[i]) || logits[i] == INFINITY) return Error("numerical error: the logits contain NaN or +Inf");
    mx = std::max(mx, logits[i]);
  }
  if (mx == -INFINITY) return Error("every token is masked (all logits are -inf)");
  return mx;
}

}  // namespace

Result<int32_t> Sampler::sample(const float* logits, int64_t vocab) {
  DSV3_TRY(validate_sampling(params_));
  DSV3_ASSIGN(const float mx, checked_max(logits, vocab));
  if (params_.temperature <= 0.0f) return argmax(logits, vocab);

  Restriction restriction(logits, vocab, mx, params_.temperature);
  const KeptSet kept = restriction.apply(params_);
  const double u = rng_.uniform() * kept.mass;
  double acc = 0.0;
  int32_t chosen = -1;
  restriction.for_each_kept(kept, [&](int32_t id, double w) {
    chosen = id;  // if rounding leaves u at the very top: the last kept token
    acc += w;
    return u < acc;
  });
  return chosen;
}

Result<Sampler::Verdict> Sampler::verify(const float* logits, int64_t vocab, int32_t draft) {
  DSV3_TRY(validate_sampling(params_));
  DSV3_ASSIGN(const float mx, checked_max(logits, vocab));
  if (params_.temperature <= 0.0f) {
    const int32_t best = argmax(logits, vocab);
    return Verdict{best, best == draft};
  }
  Restriction restriction(logits, vocab, mx, params_.temperature);
  const KeptSet kept = restriction.apply(params_);
  double draft_weight = 0.0;  // 0 when the restriction drops the draft
  restriction.for_each_kept(kept, [&](int32_t id, double w) {
    if (id == draft) draft_weight = w;
    return id == draft;
  });
  // Keep the draft with probability p(draft) = its weight / the kept mass.
  if (rng_.uniform() * kept.mass < draft_weight) return Verdict{draft, true};
  // Rejected: draw from the rest, whose weights are p without the draft, renormalized.
  const double u = rng_.uniform() * (kept.mass - draft_weight);
  double acc = 0.0;
  int32_t chosen = -1;
  restriction.for_each_kept(kept, [&](int32_t id, double w) {
    if (id == draft) return false;
    chosen = id;
    acc += w;
    return u < acc;
  });
  return Verdict{chosen, false};
}

std::vector<int32_t> sampling_support(const float* logits, int64_t vocab, const SamplingParams& params) {
  float mx = -INFINITY;
  for (int64_t i = 0; i < vocab; ++i) mx = std::max(mx, logits[i]);
  if (params.temperature <= 0.0f) return {argmax(logits, vocab)};
  std::vector<int32_t> ids;
  Restriction restriction(logits, vocab, mx, params.temperature);
  const KeptSet kept = restriction.apply(params);
  restriction.for_each_kept(kept, [&](int32_t id, double) {
    ids.push_back(id);
    return false;
  });
  std::sort(ids.begin(), ids.end());
  return ids;
}

}  // namespace dsv3
