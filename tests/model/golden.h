#pragma once
// Reading the reference goldens (tests/fixtures/golden/*.json + .safetensors, tests/data/ref/*/golden.*).

#include <gtest/gtest.h>

#include <cmath>
#include <functional>
#include <string>
#include <vector>

#include "base/json.h"
#include "format/safetensors.h"
#include "model/model.h"
#include "test_util.h"

namespace dsv3::test {

struct Golden {
  Json meta;
  std::unique_ptr<SafetensorsFile> tensors;

  // `base`: path without the .json / .safetensors extension.
  static Golden load(const std::string& base) {
    Golden g;
    g.meta = parse_json(read_file(base + ".json"), base + ".json").value();
    auto st = SafetensorsFile::open(base + ".safetensors");
    EXPECT_TRUE(st.ok()) << st.error().message();
    g.tensors = std::move(st).value();
    return g;
  }
  std::vector<std::vector<int32_t>> prompts() const { return meta["prompts"].get<std::vector<std::vector<int32_t>>>(); }
  std::vector<int32_t> greedy(size_t i) const { return meta["greedy"][i].get<std::vector<int32_t>>(); }
  bool has(const std::string& name) const { return tensors->find(name) != nullptr; }
  // F32 tensor as a flat vector.
  std::vector<float> f32(const std::string& name) const {
    const TensorInfo* t = tensors->find(name);
    EXPECT_NE(t, nullptr) << name;
    if (!t) return {};
    std::vector<float> v(t->numel());
    std::memcpy(v.data(), tensors->data(*t), v.size() * 4);
    return v;
  }
};

struct Diff {
  double max_abs = 0;
  size_t worst = 0;
};

inline Diff max_abs_diff(const std::vector<float>& a, const std::vector<float>& b) {
  Diff d;
  EXPECT_EQ(a.size(), b.size());
  for (size_t i = 0; i < a.size() && i < b.size(); ++i) {
    double e = std::fabs(static_cast<double>(a[i]) - b[i]);
    if (!(e <= d.max_abs)) {  // NaN counts as worst
      d.max_abs = std::isnan(e) ? INFINITY : e;
      d.worst = i;
    }
  }
  return d;
}

// Greedy decoding with the cache, as the reference's greedy() does it: the prompt in one
// forward, then `steps` tokens (test::argmax of the last logits), each fed back. `before` and
// `after` run around each token's forward (step 0 is the first token fed back), e.g. to trace
// it. A failed forward is a test failure and ends the decoding early.
inline std::vector<int32_t> greedy_decode(Model& model, const std::vector<int32_t>& prompt, int steps,
                                          const std::function<void(int step)>& before = {},
                                          const std::function<void(int step)>& after = {}) {
  KVCache cache = model.new_cache();
  ForwardOutput out;
  SequenceInput in{&cache, prompt, Logits::Last};
  std::vector<int32_t> got;
  Status st = model.forward({&in, 1}, &out);
  EXPECT_TRUE(st.ok()) << st.error().message();
  for (int step = 0; step < steps && st.ok(); ++step) {
    got.push_back(argmax(out.logits.data(), model.vocab_size()));
    const std::vector<int32_t> one = {got.back()};
    SequenceInput next{&cache, one, Logits::Last};
    if (before) before(step);
    st = model.forward({&next, 1}, &out);
    EXPECT_TRUE(st.ok()) << st.error().message();
    if (after) after(step);
  }
  return got;
}

}  // namespace dsv3::test
