// dsv3 bench: the FLOP count it divides by, checked against the published parameter count
// (a forward step multiplies each active weight once: ~2 FLOPs per active parameter), and the
// command's report on tiny-v3.

#include <gtest/gtest.h>

#include <map>
#include <set>
#include <string>

#include "base/json.h"
#include "format/checkpoint.h"
#include "kernels/matmul_math.h"
#include "model/footprint.h"
#include "test_util.h"
#include "tools/bench.h"

using namespace dsv3;

namespace {

ModelConfig v3_config() {
  auto j = parse_json(test::read_file(test::fixtures() + "/configs/deepseek-v3.json"), "deepseek-v3.json");
  EXPECT_TRUE(j.ok());
  auto c = parse_model_config(*j, "deepseek-v3.json");
  EXPECT_TRUE(c.ok()) << c.error().message();
  return *c;
}

// tiny-v3's footprint from its config and its checkpoint's stored tensors: the bytes model
// that bench's figures are checked against.
Result<ModelFootprint> tiny_v3_footprint() {
  DSV3_ASSIGN(const ModelConfig config, load_model_config(test::fixtures() + "/tiny-v3"));
  DSV3_ASSIGN(auto checkpoint, Checkpoint::open(test::fixtures() + "/tiny-v3"));
  return compute_footprint(config, checkpoint.get());
}

// Score and weighted-sum multiply-adds of one token against `len` cached positions, all layers.
double attention_flops(const ModelConfig& c, double len) {
  return 2.0 * c.num_hidden_layers * c.num_attention_heads * len * (2.0 * c.kv_lora_rank + c.qk_rope_head_dim);
}

}  // namespace

TEST(Bench, OneTokenCostsTwoFlopsPerActiveWeight) {
  const ModelConfig c = v3_config();
  const ParamCounts p = compute_footprint(c, nullptr).params;
  // The embedding is a lookup, not a product; norms and the router bias are not multiplied
  // (well under 1e-4 of the total). Absorbed MLA multiplies each kv_b weight once too.
  const double expected = 2.0 * static_cast<double>(p.active_per_token - p.embedding) + attention_flops(c, 1);
  EXPECT_NEAR(forward_flops(c, 0, 1) / expected, 1.0, 1e-4);
  // DeepSeek's figure: ~37B active per token, the 0.9B embedding included: ~72-75 GFLOP per token.
  EXPECT_GT(forward_flops(c, 0, 1) / 1e9, 2 * (37.0 - 0.93));
  EXPECT_LT(forward_flops(c, 0, 1) / 1e9, 2 * (38.0 - 0.93));
}

TEST(Bench, AttentionGrowsWithThePositionsAttended) {
  const ModelConfig c = v3_config();
  // Token at position s attends to s + 1 positions.
  EXPECT_NEAR(forward_flops(c, 1000, 1) - forward_flops(c, 0, 1), attention_flops(c, 1001) - attention_flops(c, 1), 1.0);
  // A prompt of n: the linear part n times, the head once, attention over 1 + 2 + ... + n.
  const int64_t n = 64;
  const double head = 2.0 * static_cast<double>(c.vocab_size) * c.hidden_size;
  const double linear = forward_flops(c, 0, 1) - attention_flops(c, 1) - head;
  EXPECT_NEAR(forward_flops(c, 0, n) / (n * linear + head + attention_flops(c, n * (n + 1) / 2.0)), 1.0, 1e-9);
}

TEST(Bench, NaiveAttentionCountsItsOwnProducts) {
  const ModelConfig c = v3_config();
  const double L = c.num_hidden_layers, H = c.num_attention_heads, R = c.kv_lora_rank;
  const double nope = c.qk_nope_head_dim, rope = c.qk_rope_head_dim, v = c.v_head_dim;
  // Absorbed: W_UK and W_UV per token, (R + rope) + R per attended position. Naive: keys and
  // values made from every cached position's latent, (nope + rope) + v per attended position.
  for (const auto& [start, n] : {std::pair<int64_t, int64_t>{0, 512}, {700, 1}, {100, 37}}) {
    const double pairs = static_cast<double>(n) * start + n * (n + 1) / 2.0;
    const double absorbed = 2 * L * (n * H * R * (nope + v) + pairs * H * (2 * R + rope));
    const double naive = 2 * L * ((start + n) * H * (nope + v) * R + pairs * H * (nope + rope + v));
    EXPECT_NEAR(forward_flops(c, start, n, AttentionImpl::Naive) - forward_flops(c, start, n), naive - absorbed,
                1e-9 * forward_flops(c, start, n))
        << start << " + " << n;
  }
  // A prompt from position 0 costs fewer FLOPs naive; one decoded token after many, more.
  EXPECT_LT(forward_flops(c, 0, 512, AttentionImpl::Naive), forward_flops(c, 0, 512));
  EXPECT_GT(forward_flops(c, 2048, 1, AttentionImpl::Naive), forward_flops(c, 2048, 1));
}

TEST(Bench, CommandReportsEveryFigure) {
  auto r = test::run_dsv3("bench --model " + test::fixtures() + "/tiny-v3 -p 16 -n 8 --repeat 2 -t 2 --batch 3 --probe-gb 0.02 --json");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  auto j = parse_json(r.out, "bench output");
  ASSERT_TRUE(j.ok()) << r.out;
  EXPECT_EQ((*j)["batch"].get<int>(), 3);
  for (const char* k : {"prefill_tokens_per_s", "decode_tokens_per_s", "batch_decode_tokens_per_s"}) {
    const Json& s = (*j)[k];
    EXPECT_GT(s["min"].get<double>(), 0) << k;
    EXPECT_LE(s["min"].get<double>(), s["median"].get<double>()) << k;
    EXPECT_LE(s["median"].get<double>(), s["max"].get<double>()) << k;
  }
  auto model_config = load_model_config(test::fixtures() + "/tiny-v3");
  ASSERT_TRUE(model_config.ok());
  EXPECT_EQ((*j)["threads"].get<int>(), 2);
  EXPECT_GT((*j)["read_bandwidth_bytes_per_s"].get<double>(), 0);
  EXPECT_GT((*j)["decode_bandwidth_ratio"].get<double>(), 0);
  EXPECT_GT((*j)["decode_weight_bytes_per_token"].get<uint64_t>(), 0u);
  // The probe measured again around each decode run, and each run's share of its own probe:
  // a ratio of that run's bytes per second, so between the slowest run against the fastest
  // probe and the fastest run against the slowest probe.
  const Json& probe = (*j)["paired_read_bandwidth_bytes_per_s"];
  const Json& paired = (*j)["paired_decode_bandwidth_ratio"];
  EXPECT_GT(probe["min"].get<double>(), 0);
  EXPECT_LE(probe["min"].get<double>(), probe["max"].get<double>());
  const double bytes = static_cast<double>((*j)["decode_weight_bytes_per_token"].get<uint64_t>());
  const Json& decode = (*j)["decode_tokens_per_s"];
  for (const char* k : {"min", "median", "max"}) {
    EXPECT_GE(paired[k].get<double>(), decode["min"].get<double>() * bytes / probe["max"].get<double>() * (1 - 1e-9)) << k;
    EXPECT_LE(paired[k].get<double>(), decode["max"].get<double>() * bytes / probe["min"].get<double>() * (1 + 1e-9)) << k;
  }
  // The same for prefill against the peak of its math measured around each run.
  const Json& peak = (*j)["paired_peak_flops_per_s"];
  const Json& paired_peak = (*j)["paired_prefill_peak_ratio"];
  EXPECT_GT(peak["min"].get<double>(), 0);
  EXPECT_LE(peak["min"].get<double>(), peak["max"].get<double>());
  const double flops = (*j)["prefill_flops_per_token"].get<double>();
  const Json& prefill = (*j)["prefill_tokens_per_s"];
  for (const char* k : {"min", "median", "max"}) {
    EXPECT_GE(paired_peak[k].get<double>(), prefill["min"].get<double>() * flops / peak["max"].get<double>() * (1 - 1e-9))
        << k;
    EXPECT_LE(paired_peak[k].get<double>(), prefill["max"].get<double>() * flops / peak["min"].get<double>() * (1 + 1e-9))
        << k;
  }
  // The weights' pages, mapped in at load: some, no more than the files hold, and of those
  // no more in 2 MB pages than in all.
  const uint64_t resident = (*j)["weight_resident_bytes"].get<uint64_t>();
  EXPECT_GT(resident, 0u);
  EXPECT_LE(resident, (*j)["checkpoint_file_bytes"].get<uint64_t>() + 4096 * 16);
  EXPECT_LE((*j)["weight_huge_page_bytes"].get<uint64_t>(), resident);

  auto text = test::run_dsv3("bench --model " + test::fixtures() + "/tiny-v3 -p 4 -n 2 --repeat 1 --probe-gb 0.02");
  ASSERT_EQ(text.exit_code, 0) << text.err;
  EXPECT_NE(text.out.find("decode"), std::string::npos);
  EXPECT_NE(text.out.find("bandwidth"), std::string::npos);
  EXPECT_NE(text.out.find("in 2 MB pages"), std::string::npos) << text.out;
  EXPECT_NE(text.out.find("probe around each run"), std::string::npos) << text.out;
  EXPECT_NE(text.out.find("peak around each run"), std::string::npos) << text.out;

  // Bad flags are usage errors; a prompt beyond the context is an error naming the limit.
  EXPECT_EQ(test::run_dsv3("bench --model " + test::fixtures() + "/tiny-v3 --repeat 0").exit_code, 2);
  auto too_long = test::run_dsv3("bench --model " + test::fixtures() + "/tiny-v3 --ctx 64 -p 100 -n 1 --probe-gb 0.02");
  EXPECT_EQ(too_long.exit_code, 1);
  EXPECT_NE(too_long.err.find("context"), std::string::npos) << too_long.err;
}

// bench --profile: the last run's decode, part by part. One token reads every weight of the
// step once, so the parts' bytes add up to the footprint's bytes per token (less the
// embedding row and the norms, which are no products), and each part runs once per layer
// that has it.
TEST(Bench, ProfileAccountsTheDecodeStepPartByPart) {
  auto r = test::run_dsv3("bench --model " + test::fixtures() + "/tiny-v3 -p 4 -n 6 --repeat 2 -t 2 --probe-gb 0.02 " +
                          "--profile --json");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  auto j = parse_json(r.out, "bench output");
  ASSERT_TRUE(j.ok()) << r.out;
  const Json& profile = (*j)["decode_profile"];
  ASSERT_TRUE(profile.is_object()) << r.out;
  auto config = load_model_config(test::fixtures() + "/tiny-v3");
  ASSERT_TRUE(config.ok());
  const auto f = tiny_v3_footprint();
  ASSERT_TRUE(f.ok()) << f.error().message();
  const double footprint = static_cast<double>(f->decode_bytes_per_token);
  int64_t moe_layers = 0;
  for (int64_t l = 0; l < config->num_hidden_layers; ++l) moe_layers += config->is_moe_layer(l);
  ASSERT_GT(moe_layers, 0);
  ASSERT_LT(moe_layers, config->num_hidden_layers);
  const std::map<std::string, double> regions = {
      {"head", 1},
      {"attention wo", static_cast<double>(config->num_hidden_layers)},
      {"moe experts w1, w3", static_cast<double>(moe_layers)},
      {"mlp w2", static_cast<double>(config->num_hidden_layers - moe_layers)}};
  const double step = profile["step_seconds"].get<double>();
  EXPECT_GT(step, 0);
  // The parts' read rates are set against the profiled (last) run's own probe.
  const double probe = profile["read_bandwidth_bytes_per_s"].get<double>();
  EXPECT_GE(probe, (*j)["paired_read_bandwidth_bytes_per_s"]["min"].get<double>());
  EXPECT_LE(probe, (*j)["paired_read_bandwidth_bytes_per_s"]["max"].get<double>());
  double bytes = 0, seconds = 0;
  std::set<std::string> seen;
  for (const Json& p : profile["parts"]) {
    const std::string name = p["part"].get<std::string>();
    seen.insert(name);
    bytes += p["weight_bytes_per_token"].get<double>();
    seconds += p["seconds_per_token"].get<double>();
    EXPECT_GT(p["seconds_per_token"].get<double>(), 0) << name;
    EXPECT_GT(p["threads_busy"].get<double>(), 0) << name;
    EXPECT_LE(p["threads_busy"].get<double>(), 1 + 1e-9) << name;
    EXPECT_NEAR(p["read_bytes_per_s"].get<double>(),
                p["weight_bytes_per_token"].get<double>() / p["seconds_per_token"].get<double>(),
                1e-6 * p["read_bytes_per_s"].get<double>())
        << name;
    if (auto it = regions.find(name); it != regions.end()) {
      EXPECT_DOUBLE_EQ(p["regions_per_token"].get<double>(), it->second) << name;
    }
  }
  for (const auto& [name, n] : regions) EXPECT_TRUE(seen.count(name)) << name << " missing from " << r.out;
  EXPECT_FALSE(seen.count("other")) << "a product of the step without its part: " << r.out;
  EXPECT_LE(bytes, footprint);
  EXPECT_GE(bytes, 0.97 * footprint);
  EXPECT_LE(seconds, step);

  auto text = test::run_dsv3("bench --model " + test::fixtures() + "/tiny-v3 -p 4 -n 2 --repeat 1 --probe-gb 0.02 --profile");
  ASSERT_EQ(text.exit_code, 0) << text.err;
  EXPECT_NE(text.out.find("profile:"), std::string::npos) << text.out;
  EXPECT_NE(text.out.find("(outside the products)"), std::string::npos) << text.out;
  // Without the flag: no profile.
  auto plain = test::run_dsv3("bench --model " + test::fixtures() + "/tiny-v3 -p 4 -n 2 --repeat 1 --probe-gb 0.02 --json");
  ASSERT_EQ(plain.exit_code, 0) << plain.err;
  auto pj = parse_json(plain.out, "bench output");
  ASSERT_TRUE(pj.ok());
  EXPECT_TRUE((*pj)["decode_profile"].is_null());
}

// bench --sweep: a point per prompt length and per batch, each with its ceilings; the
// matmul math named, and its peak the one the ratios use.
TEST(Bench, SweepReportsEachPointAgainstItsCeilings) {
  const bool bf16 = kernels::matmul_math_supported(kernels::MatmulMath::Bf16);
  auto r = test::run_dsv3("bench --model " + test::fixtures() + "/tiny-v3 -p 8 -n 3 --repeat 1 -t 2 --probe-gb 0.02 " +
                          "--sweep --sweep-prompts 8,20 --sweep-batches 1,3 --json" + (bf16 ? " --math bf16" : ""));
  ASSERT_EQ(r.exit_code, 0) << r.err;
  auto j = parse_json(r.out, "bench output");
  ASSERT_TRUE(j.ok()) << r.out;
  EXPECT_EQ((*j)["math"].get<std::string>(), bf16 ? "bf16" : "exact");
  EXPECT_GT((*j)["peak_fma_flops_per_s"].get<double>(), 0);
  EXPECT_EQ((*j)["peak_flops_per_s"].get<double>(),
            (*j)[bf16 ? "peak_bf16_dot_flops_per_s" : "peak_fma_flops_per_s"].get<double>());
  const Json& prefill = (*j)["prefill_sweep"];
  ASSERT_EQ(prefill.size(), 2u);
  EXPECT_EQ(prefill[1]["prompt_tokens"].get<int64_t>(), 20);
  for (const Json& p : prefill) {
    EXPECT_GT(p["tokens_per_s"]["median"].get<double>(), 0);
    EXPECT_NEAR(p["peak_ratio"].get<double>(), p["flops_per_s"].get<double>() / (*j)["peak_flops_per_s"].get<double>(), 1e-9);
  }
  const Json& batches = (*j)["batch_sweep"];
  ASSERT_EQ(batches.size(), 2u);
  EXPECT_EQ(batches[1]["batch"].get<int>(), 3);
  // One sequence reads the fixed weights and its own experts: the footprint's bytes per token.
  const auto f = tiny_v3_footprint();
  ASSERT_TRUE(f.ok()) << f.error().message();
  EXPECT_NEAR(batches[0]["bytes_per_step"].get<double>(), static_cast<double>(f->decode_bytes_per_token),
              0.01 * static_cast<double>(f->decode_bytes_per_token));
  EXPECT_GT(batches[1]["bytes_per_step"].get<double>(), batches[0]["bytes_per_step"].get<double>());
  for (const Json& b : batches) {
    EXPECT_GT(b["tokens_per_s"]["median"].get<double>(), 0);
    EXPECT_GT(b["bandwidth_ceiling_tokens_per_s"].get<double>(), 0);
    EXPECT_GT(b["flops_ceiling_tokens_per_s"].get<double>(), 0);
  }
  auto text = test::run_dsv3("bench --model " + test::fixtures() + "/tiny-v3 -p 4 -n 2 --repeat 1 --probe-gb 0.02 --sweep " +
                             "--sweep-prompts 4 --sweep-batches 2");
  ASSERT_EQ(text.exit_code, 0) << text.err;
  EXPECT_NE(text.out.find("matmul math exact"), std::string::npos) << text.out;
  EXPECT_NE(text.out.find("decode batch  2"), std::string::npos) << text.out;
  EXPECT_EQ(test::run_dsv3("bench --model " + test::fixtures() + "/tiny-v3 --math int3").exit_code, 2);
  EXPECT_EQ(test::run_dsv3("bench --model " + test::fixtures() + "/tiny-v3 --sweep-batches 2").exit_code, 2);  // needs --sweep
}

// bench --mtp: the draft + verify step against the plain one, with the bytes model's figures
// consistent with the footprint of the model (tiny-v3: one MoE layer of 16 experts, 4 per
// token, and one MTP layer).
TEST(Bench, SpeculativeStepCostAndBytes) {
  auto r = test::run_dsv3("bench --model " + test::fixtures() +
                          "/tiny-v3 -p 16 -n 6 --repeat 1 -t 2 --mtp --draft-tokens 2 --probe-gb 0.02 --json");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  auto j = parse_json(r.out, "bench output");
  ASSERT_TRUE(j.ok()) << r.out;
  const Json& m = (*j)["speculative"];
  ASSERT_TRUE(m.is_object()) << r.out;
  EXPECT_EQ(m["draft_tokens"].get<int>(), 2);
  EXPECT_EQ(m["steps"].get<int>(), 6);
  EXPECT_GT(m["step_ratio"].get<double>(), 0.0);
  // A plain step reads the fixed weights and the experts its token chose (4 of 16 in the one
  // MoE layer: a quarter of the routed bytes); a step with drafts reads more (three tokens'
  // experts, and two MTP passes).
  const auto f = tiny_v3_footprint();
  ASSERT_TRUE(f.ok()) << f.error().message();
  EXPECT_NEAR(m["plain_step_bytes"].get<double>(), static_cast<double>(f->decode_bytes_per_token),
              0.5 * static_cast<double>(f->routed_expert_bytes));
  EXPECT_GT(m["draft_step_bytes"].get<double>(), m["plain_step_bytes"].get<double>());
  EXPECT_GT(m["bytes_ratio"].get<double>(), 1.0);
  const double s8 = m["predicted_speedup"]["0.8"].get<double>(), s9 = m["predicted_speedup"]["0.9"].get<double>();
  EXPECT_NEAR(s8, (1 + 0.8 + 0.64) / m["step_ratio"].get<double>(), 1e-9);
  EXPECT_GT(s9, s8);
  // Without the MTP module, --mtp is a clear error.
  auto no = test::run_dsv3("bench --model " + test::fixtures() + "/tiny-v2 -p 8 -n 2 --repeat 1 --mtp --probe-gb 0.02");
  EXPECT_EQ(no.exit_code, 1);
  EXPECT_NE(no.err.find("num_nextn_predict_layers"), std::string::npos) << no.err;
}
