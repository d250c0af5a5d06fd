// The golden parity checks again, through the dsv3 command line exactly as users (and the
// outside checks) run it: `dsv3 logits` and `dsv3 generate --ids`.

#include <gtest/gtest.h>

#include "golden.h"

using namespace dsv3;

namespace {

void check_model(const std::string& name, bool mtp) {
  const std::string dir = test::fixtures() + "/" + name;
  auto golden = test::Golden::load(test::fixtures() + "/golden/" + name);
  auto prompts = golden.prompts();
  test::TempDir t;
  for (size_t i = 0; i < prompts.size(); ++i) {
    const bool with_mtp = mtp && prompts[i].size() > 1;
    std::string out = t / ("logits" + std::to_string(i) + ".safetensors");
    auto r = test::run_dsv3("logits --model " + dir + " --tokens " + test::join_ids(prompts[i]) + " --out " + out +
                            (with_mtp ? " --mtp" : ""));
    ASSERT_EQ(r.exit_code, 0) << r.err;
    auto st = SafetensorsFile::open(out);
    ASSERT_TRUE(st.ok()) << st.error().message();
    const TensorInfo* logits = (*st)->find("logits");
    ASSERT_NE(logits, nullptr);
    EXPECT_EQ(logits->shape, (std::vector<int64_t>{static_cast<int64_t>(prompts[i].size()), 1024}));
    std::vector<float> got(logits->numel());
    std::memcpy(got.data(), (*st)->data(*logits), got.size() * 4);
    EXPECT_LE(test::max_abs_diff(got, golden.f32("logits." + std::to_string(i))).max_abs, 1e-3) << name << " " << i;

    r = test::run_dsv3("generate --model " + dir + " --tokens " + test::join_ids(prompts[i]) + " -n 12 --temperature 0 --ids");
    ASSERT_EQ(r.exit_code, 0) << r.err;
    EXPECT_EQ(r.out, test::join_ids(golden.greedy(i), " ") + "\n") << name << " " << i;
  }
  if (!mtp) return;
  // mtp_logits over the golden's mtp_tokens lists.
  for (auto it = golden.meta["mtp_tokens"].begin(); it != golden.meta["mtp_tokens"].end(); ++it) {
    auto tokens = it->get<std::vector<int32_t>>();
    std::string out = t / ("mtp" + it.key() + ".safetensors");
    auto r = test::run_dsv3("logits --model " + dir + " --tokens " + test::join_ids(tokens) + " --out " + out + " --mtp");
    ASSERT_EQ(r.exit_code, 0) << r.err;
    auto st = SafetensorsFile::open(out).value();
    const TensorInfo* m = st->find("mtp_logits");
    ASSERT_NE(m, nullptr);
    EXPECT_EQ(m->shape, (std::vector<int64_t>{static_cast<int64_t>(tokens.size()) - 1, 1024}));
    std::vector<float> got(m->numel());
    std::memcpy(got.data(), st->data(*m), got.size() * 4);
    EXPECT_LE(test::max_abs_diff(got, golden.f32("mtp_logits." + it.key())).max_abs, 1e-3) << it.key();
  }
}

}  // namespace

TEST(Commands, TinyV3LogitsGenerateMtp) { check_model("tiny-v3", true); }
TEST(Commands, TinyV2LogitsGenerate) { check_model("tiny-v2", false); }

TEST(Commands, VersionAndHelp) {
  auto v = test::run_dsv3("--version");
  EXPECT_EQ(v.exit_code, 0);
  EXPECT_EQ(v.out.rfind("dsv3 ", 0), 0u);
  for (const char* cmd : {"logits", "generate", "make-random"}) {
    auto h = test::run_dsv3(std::string(cmd) + " --help");
    EXPECT_EQ(h.exit_code, 0) << cmd;
    EXPECT_NE(h.out.find("--"), std::string::npos) << cmd;
  }
  auto none = test::run_dsv3("");
  EXPECT_EQ(none.exit_code, 2);
  auto unknown = test::run_dsv3("frobnicate");
  EXPECT_EQ(unknown.exit_code, 2);
}

TEST(Commands, SamplingIsSeededAndContextLimited) {
  const std::string dir = test::fixtures() + "/tiny-v3";
  std::string base = "generate --model " + dir + " --tokens 0,17,923 -n 16 --temperature 1.0 --top-p 0.9 --top-k 50 --ids --ignore-eos";
  auto a = test::run_dsv3(base + " --seed 7"), b = test::run_dsv3(base + " --seed 7"), c = test::run_dsv3(base + " --seed 8");
  ASSERT_EQ(a.exit_code, 0) << a.err;
  EXPECT_EQ(a.out, b.out);
  EXPECT_NE(a.out, c.out);
  // Prompt longer than the context: a clear error.
  auto over = test::run_dsv3("generate --model " + dir + " --tokens 0,1,2,3,4 --ctx 4 --ids");
  EXPECT_EQ(over.exit_code, 1);
  EXPECT_NE(over.err.find("context limit"), std::string::npos) << over.err;
  // Generation stops at the context limit.
  auto fill = test::run_dsv3("generate --model " + dir + " --tokens 0,1,2 --ctx 6 -n 100 --temperature 0 --ids --ignore-eos");
  ASSERT_EQ(fill.exit_code, 0) << fill.err;
  size_t words = 1;
  for (char ch : fill.out) words += ch == ' ';
  EXPECT_EQ(words, 4u) << fill.out;  // positions 0..5: 3 prompt + 3 fed back + 1 final token
}
