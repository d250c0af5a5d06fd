// The built-in default model (assets/default-model) computes in dsv3 what it computed in the
// torch model that scripts/train_default_model.py trained and exported: the same held-out
// perplexity and the same greedy continuations. The expected figures are the script's own
// (assets/default-model/eval.json, measured on the exported weights in float32).

#include <gtest/gtest.h>

#include <cmath>
#include <sstream>
#include <string>
#include <vector>

#include "base/json.h"
#include "model/model.h"
#include "test_util.h"
#include "tools/default_model.h"

namespace dsv3 {
namespace {

std::string assets() { return std::string(DSV3_SOURCE_DIR) + "/assets/default-model"; }

const Json& eval_json() {
  static const Json j = parse_json(test::read_file(assets() + "/eval.json"), "eval.json").value();
  return j;
}

// The model installed once per test binary, as ensure_default_model installs it.
const std::string& installed_model() {
  static test::TempDir dir;
  static const std::string path = dir / "model";
  static bool done = false;
  if (!done) {
    Status st = install_default_model(assets(), test::v3_tokenizer_dir(), path);
    EXPECT_TRUE(st.ok()) << st.error().message();
    done = true;
  }
  return path;
}

std::unique_ptr<Model> load(bool mtp) {
  ModelOptions opt;
  opt.threads = 2;
  opt.load_mtp = mtp;
  opt.max_context = 1024;
  auto m = Model::load(installed_model(), opt);
  EXPECT_TRUE(m.ok()) << m.error().message();
  return m.ok() ? std::move(m).value() : nullptr;
}

// -log softmax(row)[target], in double.
double nll(const float* row, int64_t vocab, int32_t target) {
  double mx = row[0];
  for (int64_t v = 1; v < vocab; ++v) mx = std::max(mx, static_cast<double>(row[v]));
  double sum = 0;
  for (int64_t v = 0; v < vocab; ++v) sum += std::exp(row[v] - mx);
  return mx + std::log(sum) - row[target];
}

// `dsv3 generate` on the installed model from `prompt` (token ids), greedy, at most `n`
// tokens, with `flags`: the ids it printed, and its stderr (the report line).
struct Generated {
  std::vector<int32_t> ids;
  std::string report;
};
Generated generate(const std::vector<int32_t>& prompt, size_t n, const std::string& flags) {
  auto r = test::run_dsv3("generate --model " + installed_model() + " --tokens " + test::join_ids(prompt) + " -n " +
                          std::to_string(n) + " --temperature 0 -t 2 " + flags);
  EXPECT_EQ(r.exit_code, 0) << r.err;
  Generated g{{}, r.err};
  std::istringstream ss(r.out);
  for (int32_t t; ss >> t;) g.ids.push_back(t);
  return g;
}

TEST(DefaultModel, InstallsFromTheCommittedFiles) {
  const std::string& dir = installed_model();
  for (const char* f : {"config.json", "model.safetensors.index.json", "tokenizer.json", "tokenizer_config.json"})
    EXPECT_TRUE(std::filesystem::exists(dir + "/" + f)) << f;
  auto r = test::run_dsv3("inspect --model " + dir + " --json");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.out.find("\"deepseek_v3\""), std::string::npos);
  // A target that exists already is refused and left alone.
  Status again = install_default_model(assets(), test::v3_tokenizer_dir(), dir);
  EXPECT_FALSE(again.ok());
  EXPECT_TRUE(std::filesystem::exists(dir + "/config.json"));
}

// Held-out perplexity (and the MTP module's) over the committed slice, through
// Model::forward with logits for every position, equals the torch model's within 1e-3.
TEST(DefaultModel, HeldOutPerplexityMatchesTorch) {
  const Json& slice = eval_json()["test_slice"];
  const auto tokens = slice["tokens"].get<std::vector<int32_t>>();
  const int64_t n = static_cast<int64_t>(tokens.size());
  ASSERT_GE(n, 64);
  auto model = load(/*mtp=*/true);
  ASSERT_TRUE(model);
  const int64_t V = model->vocab_size();

  KVCache cache = model->new_cache();
  SequenceInput in{&cache, tokens, Logits::All};
  ForwardOutput out;
  ASSERT_TRUE(model->forward({&in, 1}, &out, /*want_hidden=*/true).ok());
  double sum = 0;
  for (int64_t i = 0; i + 1 < n; ++i) sum += nll(out.logits.data() + i * V, V, tokens[i + 1]);
  const double ppl = std::exp(sum / static_cast<double>(n - 1));
  const double torch_ppl = slice["perplexity"].get<double>();
  EXPECT_NEAR(ppl / torch_ppl, 1.0, 1e-3) << "dsv3 " << ppl << ", torch " << torch_ppl;

  // MTP row j drafts token j+2 from hidden j and token j+1.
  KVCache mtp_cache = model->new_mtp_cache();
  const std::vector<int32_t> next(tokens.begin() + 1, tokens.end());
  std::vector<float> mtp_logits(static_cast<size_t>((n - 1) * V));
  ASSERT_TRUE(model->mtp_forward(out.hidden.data(), next, &mtp_cache, mtp_logits.data()).ok());
  double mtp_sum = 0;
  int64_t hits = 0;
  for (int64_t j = 0; j + 2 < n; ++j) {
    mtp_sum += nll(mtp_logits.data() + j * V, V, tokens[j + 2]);
    hits += test::argmax(mtp_logits.data() + j * V, V) == test::argmax(out.logits.data() + (j + 1) * V, V);
  }
  const double mtp_ppl = std::exp(mtp_sum / static_cast<double>(n - 2));
  const double torch_mtp_ppl = slice["mtp_perplexity"].get<double>();
  EXPECT_NEAR(mtp_ppl / torch_mtp_ppl, 1.0, 1e-3) << "dsv3 " << mtp_ppl << ", torch " << torch_mtp_ppl;
  // Teacher-forced acceptance of one MTP draft: a count of argmax agreements, which a near
  // tie may flip; allow two positions.
  const double acceptance = static_cast<double>(hits) / static_cast<double>(n - 2);
  EXPECT_NEAR(acceptance, slice["mtp_acceptance_teacher_forced"].get<double>(), 2.0 / static_cast<double>(n - 2));
}

// `dsv3 generate --tokens ... --temperature 0` continues the committed prompts exactly as the
// torch model did (a plain-text prompt and a chat prompt at least).
TEST(DefaultModel, GreedyContinuationsMatchTorch) {
  const Json& cases = eval_json()["greedy_cases"];
  ASSERT_GE(cases.size(), 2u);
  // The first held-out document's prompt (plain text) and the last case (a chat prompt).
  for (size_t i : {size_t(0), size_t(1), cases.size() - 1}) {
    const auto prompt = cases[i]["prompt"].get<std::vector<int32_t>>();
    const auto expected = cases[i]["greedy"].get<std::vector<int32_t>>();
    EXPECT_EQ(generate(prompt, expected.size(), "--ids").ids, expected) << "case " << i;
  }
}

// The MTP module's greedy acceptance, with the script's definition (eval.json
// "mtp_greedy_acceptance"): over each case's greedy continuation, the draft for every
// generated token after the first -- made from the hidden state of the position before the
// last and the last token -- counts as kept when it equals the main model's greedy token.
// dsv3 computes it teacher-forced over the same sequences (one forward, one MTP pass); it must
// equal the torch model's within 2 points.
TEST(DefaultModel, MtpGreedyAcceptanceMatchesTorch) {
  const Json& cases = eval_json()["greedy_cases"];
  auto model = load(/*mtp=*/true);
  ASSERT_TRUE(model);
  const int64_t V = model->vocab_size();
  int64_t kept = 0, proposed = 0;
  for (const Json& c : cases) {
    std::vector<int32_t> seq = c["prompt"].get<std::vector<int32_t>>();
    const auto greedy = c["greedy"].get<std::vector<int32_t>>();
    const int64_t P = static_cast<int64_t>(seq.size());
    seq.insert(seq.end(), greedy.begin(), greedy.end());
    const int64_t n = static_cast<int64_t>(seq.size());
    if (greedy.size() < 2) continue;
    KVCache cache = model->new_cache();
    SequenceInput in{&cache, seq, Logits::All};
    ForwardOutput out;
    ASSERT_TRUE(model->forward({&in, 1}, &out, /*want_hidden=*/true).ok());
    KVCache mtp_cache = model->new_mtp_cache();
    const std::vector<int32_t> next(seq.begin() + 1, seq.end());
    std::vector<float> mtp_logits(static_cast<size_t>((n - 1) * V));
    ASSERT_TRUE(model->mtp_forward(out.hidden.data(), next, &mtp_cache, mtp_logits.data()).ok());
    for (int64_t p = P + 1; p < n; ++p) {  // generated tokens after the first
      ++proposed;
      kept += test::argmax(mtp_logits.data() + (p - 2) * V, V) == seq[p];
    }
    // The engine drafts only at some of these positions: with one draft per step, a kept
    // draft's step also yields the token after it, which gets no draft of its own, and no
    // draft is made where the token budget leaves room for one token only. Replayed here
    // from the same drafts, `generate --mtp` must report exactly this count.
    int64_t engine_kept = 0, engine_proposed = 0;
    for (int64_t p = P + 1; p + 1 < n;) {  // the step that feeds seq[p-1] and drafts seq[p]
      ++engine_proposed;
      const bool hit = test::argmax(mtp_logits.data() + (p - 2) * V, V) == seq[p];
      engine_kept += hit;
      p += hit ? 2 : 1;
    }
    const std::string report =
        generate(c["prompt"].get<std::vector<int32_t>>(), greedy.size(), "--mtp --draft-policy always").report;
    if (engine_proposed == 0)  // no room for a draft: the report names none
      EXPECT_EQ(report.find("drafts kept"), std::string::npos) << report;
    else
      EXPECT_NE(report.find(str_f("drafts kept %lld/%lld", static_cast<long long>(engine_kept),
                                  static_cast<long long>(engine_proposed))),
                std::string::npos)
          << "expected drafts kept " << engine_kept << "/" << engine_proposed << ": " << report;
  }
  const Json& torch = eval_json()["mtp_greedy_acceptance"];
  ASSERT_EQ(proposed, torch["proposed"].get<int64_t>());
  const double rate = static_cast<double>(kept) / static_cast<double>(proposed);
  EXPECT_NEAR(rate, torch["rate"].get<double>(), 0.02) << "dsv3 " << kept << "/" << proposed << ", torch "
                                                       << torch["accepted"] << "/" << torch["proposed"];
}

// Speculative decoding on a model whose drafts are often kept: `generate --mtp` at K = 1 and
// 3, drafting at every step, gives exactly the tokens of greedy decoding without drafts, and
// keeps some drafts.
TEST(DefaultModel, GreedyOutputWithMtpIsUnchanged) {
  const Json& cases = eval_json()["greedy_cases"];
  // The first plain-text case and the last chat case with room for several drafts.
  std::vector<size_t> chosen;
  for (size_t i = 0; i < cases.size() && chosen.empty(); ++i)
    if (cases[i]["greedy"].size() >= 8) chosen.push_back(i);
  for (size_t i = cases.size(); i-- > 0;)
    if (cases[i]["greedy"].size() >= 8) {
      chosen.push_back(i);
      break;
    }
  ASSERT_EQ(chosen.size(), 2u);
  for (size_t i : chosen) {
    const auto prompt = cases[i]["prompt"].get<std::vector<int32_t>>();
    const auto expected = cases[i]["greedy"].get<std::vector<int32_t>>();
    for (int k : {1, 3}) {
      const Generated g =
          generate(prompt, expected.size(), "--mtp --draft-policy always --draft-tokens " + std::to_string(k));
      EXPECT_EQ(g.ids, expected) << "case " << i << ", K " << k;
      EXPECT_NE(g.report.find("drafts kept"), std::string::npos) << g.report;
      EXPECT_EQ(g.report.find("drafts kept 0/"), std::string::npos) << "case " << i << ", K " << k << ": " << g.report;
    }
  }
}

}  // namespace
}  // namespace dsv3
