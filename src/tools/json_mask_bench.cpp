#include "tools/json_mask_bench.h"

#include <algorithm>
#include <chrono>
#include <numeric>

#include "base/random.h"

namespace dsv3 {

double JsonMaskTimes::percentile(double p) const {
  if (micros.empty()) return 0;
  std::vector<double> v = micros;
  const size_t k = std::min(v.size() - 1, static_cast<size_t>(p * static_cast<double>(v.size())));
  std::nth_element(v.begin(), v.begin() + static_cast<std::ptrdiff_t>(k), v.end());
  return v[k];
}
double JsonMaskTimes::median() const { return percentile(0.5); }
double JsonMaskTimes::mean() const {
  return micros.empty() ? 0 : std::accumulate(micros.begin(), micros.end(), 0.0) / static_cast<double>(micros.size());
}

JsonMaskTimes run_json_mask_bench(std::shared_ptr<const grammar::JsonGrammar> grammar, int outputs, int64_t max_tokens,
                                  uint64_t seed) {
  JsonMaskTimes t;
  Xoshiro256 rng(seed);
  const int64_t vocab = grammar->vocabulary->size();
  for (int o = 0; o < outputs; ++o) {
    grammar::TokenConstraint c(grammar, max_tokens);
    for (int64_t step = 0; step < max_tokens; ++step) {
      const auto start = std::chrono::steady_clock::now();
      const grammar::TokenMask& mask = c.allowed();
      t.micros.push_back(std::chrono::duration<double, std::micro>(std::chrono::steady_clock::now() - start).count());
      const int64_t n = mask.count();
      if (n == 0) break;
      int64_t pick = static_cast<int64_t>(rng.next() % static_cast<uint64_t>(n));
      int32_t token = -1;
      for (int64_t id = 0; id < vocab && token < 0; ++id)
        if (mask.test(static_cast<int32_t>(id)) && pick-- == 0) token = static_cast<int32_t>(id);
      if (!c.accept(token).ok()) break;
      ++t.tokens;
      const auto& ends = grammar->end_tokens;
      if (std::find(ends.begin(), ends.end(), token) != ends.end()) break;
    }
    ++t.outputs;
  }
  return t;
}

}  // namespace dsv3
