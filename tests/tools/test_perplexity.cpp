// dsv3 perplexity against values computed here from DeepSeek's reference logits (the goldens'
// log-softmax): perplexity over windows, and KL divergence / top-1 agreement between the FP8
// tiny-v3 and its BF16 conversion against the same quantities from the two reference runs.

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>

#include "model/golden.h"
#include "model/model.h"
#include "test_util.h"
#include "tools/convert.h"
#include "tools/perplexity.h"

using namespace dsv3;
using dsv3::test::Golden;
using dsv3::test::TempDir;

namespace {

const std::string kTiny = dsv3::test::fixtures() + "/tiny-v3";

std::unique_ptr<Model> load(const std::string& dir) {
  ModelOptions opt;
  opt.threads = 2;
  auto m = Model::load(dir, opt);
  EXPECT_TRUE(m.ok()) << m.error().message();
  return m.ok() ? std::move(m).value() : nullptr;
}

// log-softmax of one reference row, in double.
std::vector<double> ref_log_softmax(const std::vector<float>& logits, int64_t row, int64_t V) {
  const float* l = logits.data() + row * V;
  double mx = *std::max_element(l, l + V), sum = 0;
  for (int64_t v = 0; v < V; ++v) sum += std::exp(l[v] - mx);
  std::vector<double> out(static_cast<size_t>(V));
  for (int64_t v = 0; v < V; ++v) out[static_cast<size_t>(v)] = l[v] - mx - std::log(sum);
  return out;
}

// A reference window: the golden logits of `prompt`'s first ctx positions (causal: a prefix's
// logits are the full prompt's first rows), scored at positions ctx/2 .. ctx-2.
struct RefWindow {
  std::vector<int32_t> tokens;
  std::string logits;  // golden tensor name
};

double ref_mean_nll(const Golden& g, const std::vector<RefWindow>& windows, int64_t ctx, int64_t V, int64_t* scored) {
  double sum = 0;
  *scored = 0;
  for (const RefWindow& w : windows) {
    const auto logits = g.f32(w.logits);
    for (int64_t p = ctx / 2; p < ctx - 1; ++p) {
      sum -= ref_log_softmax(logits, p, V)[static_cast<size_t>(w.tokens[static_cast<size_t>(p + 1)])];
      ++*scored;
    }
  }
  return sum / static_cast<double>(*scored);
}

}  // namespace

TEST(Perplexity, OneWindowEqualsReference) {
  Golden g = Golden::load(dsv3::test::fixtures() + "/golden/tiny-v3");
  auto model = load(kTiny);
  ASSERT_TRUE(model);
  const auto prompt = g.prompts()[2];  // 41 tokens, starting with BOS (0)
  ASSERT_EQ(model->config().bos_token_id.value_or(-1), prompt[0]);
  PerplexityOptions opt;
  opt.ctx = static_cast<int64_t>(prompt.size());
  opt.bos = prompt[0];
  auto r = compute_perplexity(*model, prompt, opt);
  ASSERT_TRUE(r.ok()) << r.error().message();
  int64_t scored = 0;
  const double nll = ref_mean_nll(g, {{prompt, "logits.2"}}, opt.ctx, model->vocab_size(), &scored);
  EXPECT_EQ(r->windows, 1);
  EXPECT_EQ(r->scored, scored);
  EXPECT_EQ(scored, 20);  // positions 20 .. 39
  EXPECT_NEAR(r->perplexity, std::exp(nll), 1e-4 * std::exp(nll));
}

TEST(Perplexity, SeveralWindowsEqualReference) {
  // ctx 7: prompt 1 (7 tokens), then the first 7 tokens of prompt 2, then 3 tokens that make
  // no whole window and are dropped.
  Golden g = Golden::load(dsv3::test::fixtures() + "/golden/tiny-v3");
  auto model = load(kTiny);
  ASSERT_TRUE(model);
  const auto p1 = g.prompts()[1], p2 = g.prompts()[2];
  ASSERT_EQ(p1.size(), 7u);
  std::vector<int32_t> stream = p1;
  stream.insert(stream.end(), p2.begin(), p2.begin() + 10);
  PerplexityOptions opt;
  opt.ctx = 7;
  opt.bos = 0;
  auto r = compute_perplexity(*model, stream, opt);
  ASSERT_TRUE(r.ok()) << r.error().message();
  int64_t scored = 0;
  const std::vector<int32_t> p2_head(p2.begin(), p2.begin() + 7);
  const double nll = ref_mean_nll(g, {{p1, "logits.1"}, {p2_head, "logits.2"}}, 7, model->vocab_size(), &scored);
  EXPECT_EQ(r->windows, 2);
  EXPECT_EQ(r->scored, scored);
  EXPECT_EQ(perplexity_scored_tokens(static_cast<int64_t>(stream.size()), 7), scored);
  EXPECT_NEAR(r->perplexity, std::exp(nll), 1e-4 * std::exp(nll));
}

TEST(Perplexity, KlAndAgreementAgainstSavedBaseMatchReference) {
  // Base: the FP8 tiny-v3; compared: its BF16 conversion. The reference ran both
  // (golden/tiny-v3 and golden/tiny-v3-bf16); on these random weights BF16 rounding flips
  // experts, so the KL is far from 0 and the agreement below 1.
  Golden fp8 = Golden::load(dsv3::test::fixtures() + "/golden/tiny-v3");
  Golden bf16 = Golden::load(dsv3::test::fixtures() + "/golden/tiny-v3-bf16");
  TempDir tmp;
  {
    ThreadPool pool(2);
    ConvertOptions c;
    c.model_dir = kTiny;
    c.out_dir = tmp / "bf16";
    c.target = ConvertTarget::Bf16;
    c.stream.durable = false;
    ASSERT_TRUE(convert_checkpoint(c, pool).ok());
  }
  const auto prompt = fp8.prompts()[2];
  PerplexityOptions opt;
  opt.ctx = static_cast<int64_t>(prompt.size());
  opt.bos = prompt[0];
  opt.save_logits = tmp / "base.safetensors";
  auto base_model = load(kTiny);
  ASSERT_TRUE(base_model);
  auto base = compute_perplexity(*base_model, prompt, opt);
  ASSERT_TRUE(base.ok()) << base.error().message();
  opt.save_logits.clear();
  opt.kl_base = tmp / "base.safetensors";
  auto model = load(tmp / "bf16");
  ASSERT_TRUE(model);
  auto r = compute_perplexity(*model, prompt, opt);
  ASSERT_TRUE(r.ok()) << r.error().message();
  ASSERT_TRUE(r->has_base);

  const int64_t V = model->vocab_size();
  const auto lf = fp8.f32("logits.2"), lb = bf16.f32("logits.2");
  std::vector<double> kls;
  int64_t agree = 0;
  for (int64_t p = opt.ctx / 2; p < opt.ctx - 1; ++p) {
    const auto a = ref_log_softmax(lf, p, V), b = ref_log_softmax(lb, p, V);
    double kl = 0;
    for (int64_t v = 0; v < V; ++v) kl += std::exp(a[v]) * (a[v] - b[v]);
    kls.push_back(kl);
    agree += std::max_element(a.begin(), a.end()) - a.begin() == std::max_element(b.begin(), b.end()) - b.begin();
  }
  double mean = 0;
  for (double k : kls) mean += k;
  mean /= static_cast<double>(kls.size());
  std::sort(kls.begin(), kls.end());
  EXPECT_GT(mean, 1e-4);  // the comparison is not trivially 0 = 0
  EXPECT_NEAR(r->kl_mean, mean, 1e-3 * mean + 1e-6);
  EXPECT_NEAR(r->kl_max, kls.back(), 1e-3 * kls.back() + 1e-6);
  EXPECT_NEAR(r->kl_p99, kls.back(), 1e-3 * kls.back() + 1e-6);  // 20 tokens: the 99th percentile is the max
  EXPECT_DOUBLE_EQ(r->top1_agreement, static_cast<double>(agree) / static_cast<double>(kls.size()));
  EXPECT_NEAR(r->base_perplexity, base->perplexity, 1e-5 * base->perplexity);
}

TEST(Perplexity, RefusesMismatchedBaseAndShortText) {
  Golden g = Golden::load(dsv3::test::fixtures() + "/golden/tiny-v3");
  auto model = load(kTiny);
  ASSERT_TRUE(model);
  TempDir tmp;
  const auto prompt = g.prompts()[2];
  PerplexityOptions opt;
  opt.ctx = 20;
  opt.save_logits = tmp / "base.safetensors";
  ASSERT_TRUE(compute_perplexity(*model, prompt, opt).ok());
  opt.save_logits.clear();
  opt.kl_base = tmp / "base.safetensors";
  opt.ctx = 10;
  auto r = compute_perplexity(*model, prompt, opt);
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.error().message().find("ctx 20"), std::string::npos) << r.error().message();
  opt.kl_base.clear();
  opt.ctx = 64;
  r = compute_perplexity(*model, prompt, opt);
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.error().message().find("at least one window"), std::string::npos) << r.error().message();
}

TEST(Perplexity, CommandPrintsTheResult) {
  Golden g = Golden::load(dsv3::test::fixtures() + "/golden/tiny-v3");
  TempDir tmp;
  dsv3::test::write_file(tmp / "ids.txt", dsv3::test::join_ids(g.prompts()[2], " "));
  auto run = dsv3::test::run_dsv3("perplexity --model " + kTiny + " --tokens-file " + (tmp / "ids.txt") +
                                  " --ctx 41 --json -t 2");
  ASSERT_EQ(run.exit_code, 0) << run.err;
  auto j = parse_json(run.out, "stdout");
  ASSERT_TRUE(j.ok()) << run.out;
  EXPECT_EQ((*j)["scored"].get<int64_t>(), 20);
  int64_t scored = 0;
  const double nll = ref_mean_nll(g, {{g.prompts()[2], "logits.2"}}, 41, 1024, &scored);
  EXPECT_NEAR((*j)["perplexity"].get<double>(), std::exp(nll), 1e-4 * std::exp(nll));
}
