// dsv3 inspect: a config alone, a good checkpoint, and a set of deliberately broken ones,
// each defect flagged (all of them, not the first 20) with the documented exit code.

#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>

#include "model/checkpoint_edit.h"
#include "test_util.h"
#include "tools/inspect.h"

using namespace dsv3;
using dsv3::test::EditableTensor;
using dsv3::test::TempDir;

namespace {

const std::string kTiny = dsv3::test::fixtures() + "/tiny-v3";

InspectReport inspect(const std::string& dir, bool verify = false) {
  ThreadPool pool(2);
  InspectOptions opt;
  opt.verify = verify;
  opt.pool = &pool;
  auto r = inspect_model(dir, opt);
  EXPECT_TRUE(r.ok()) << r.error().message();
  return std::move(r).value();
}

bool contains(const std::vector<std::string>& v, const std::string& s) { return std::find(v.begin(), v.end(), s) != v.end(); }

bool problem_about(const InspectReport& r, const std::string& tensor, const std::string& needle = "") {
  for (const BindProblem& p : r.validation->problems)
    if (p.tensor == tensor && p.message.find(needle) != std::string::npos) return true;
  return false;
}

// A copy of tiny-v3 with `edit` applied (see checkpoint_edit.h).
void broken(const std::string& dst, const std::function<bool(EditableTensor&)>& edit,
            std::vector<EditableTensor> extra = {}) {
  dsv3::test::rewrite_checkpoint(kTiny, dst, edit, std::move(extra));
}

}  // namespace

TEST(Inspect, ConfigAloneV3) {
  TempDir t;
  std::filesystem::copy_file(dsv3::test::fixtures() + "/configs/deepseek-v3.json", t / "config.json");
  auto r = dsv3::test::run_dsv3("inspect --json --model " + t.path());
  ASSERT_EQ(r.exit_code, 0) << r.err;
  Json j = parse_json(r.out, "inspect output").value();
  EXPECT_FALSE(j["weights"]["present"].get<bool>());
  EXPECT_EQ(j["bytes"]["dtypes_from"], "config");
  const double main = j["parameters"]["main"].get<double>(), active = j["parameters"]["active_per_token"].get<double>();
  EXPECT_NEAR(main / 1e9, 671, 3);
  EXPECT_NEAR(active / 1e9, 37, 1.5);
  EXPECT_NEAR(j["parameters"]["mtp_unique"].get<double>() / 1e9, 11.5, 0.5);
  EXPECT_NEAR(j["parameters"]["mtp_with_shared"].get<double>() / 1e9, 14, 1.0);
  EXPECT_EQ(j["config"]["moe_layers"], 58);
  EXPECT_EQ(j["config"]["rope_scaling"]["factor"], 40.0);
  EXPECT_TRUE(j["validation"].is_null());

  auto text = dsv3::test::run_dsv3("inspect --model " + t.path());
  ASSERT_EQ(text.exit_code, 0);
  for (const char* s : {"671.03B", "37.55B", "11.61B unique", "13.46B counting", "61 (3 dense, 58 MoE) + 1 MTP",
                        "absent: config.json only", "70.3 kB in BF16", "result: ok"})
    EXPECT_NE(text.out.find(s), std::string::npos) << s << "\n" << text.out;
}

TEST(Inspect, GoodCheckpoint) {
  InspectReport r = inspect(kTiny, /*verify=*/true);
  EXPECT_TRUE(r.ok());
  ASSERT_TRUE(r.validation);
  EXPECT_TRUE(r.validation->valid());
  EXPECT_TRUE(r.validation->unused.empty());
  EXPECT_FALSE(r.validation->mtp_absent);
  ASSERT_EQ(r.shards.size(), 2u);
  EXPECT_EQ(r.shards[0].file, "model-00001-of-00002.safetensors");
  ASSERT_TRUE(r.verify);
  EXPECT_EQ(r.verify->bad_tensors, 0u);
  EXPECT_EQ(r.verify->tensors.size(), r.tensor_count);
  EXPECT_EQ(r.verify->bytes_scanned, r.tensor_bytes);
  for (const TensorValueScan& s : r.verify->tensors) {
    EXPECT_TRUE(s.scanned) << s.name;
    if (s.dtype == DType::F8_E4M3) {
      EXPECT_EQ(s.max_abs, 448.0) << s.name;  // scale = amax / 448
    }
  }
  auto cli = dsv3::test::run_dsv3("inspect --verify --model " + kTiny);
  EXPECT_EQ(cli.exit_code, 0) << cli.err;
  EXPECT_NE(cli.out.find("no NaN or Inf"), std::string::npos) << cli.out;
  EXPECT_NE(cli.err.find("verify:"), std::string::npos) << "progress lines on stderr: " << cli.err;
}

TEST(Inspect, EveryMissingTensorListed) {
  TempDir t;
  broken(t.path(), [](EditableTensor& e) { return e.name.find("model.layers.2.mlp.experts.") != 0; });
  InspectReport r = inspect(t.path());
  EXPECT_FALSE(r.ok());
  // 16 experts x 3 projections, each with its scale: 48 weights missing (scales are unused
  // then, but they were dropped too), all listed.
  EXPECT_EQ(r.validation->missing.size(), 48u);
  EXPECT_TRUE(contains(r.validation->missing, "model.layers.2.mlp.experts.15.up_proj.weight"));
  auto cli = dsv3::test::run_dsv3("inspect --model " + t.path());
  EXPECT_EQ(cli.exit_code, 1);
  EXPECT_NE(cli.out.find("MISSING (48)"), std::string::npos) << cli.out;
  EXPECT_NE(cli.out.find("model.layers.2.mlp.experts.15.down_proj.weight"), std::string::npos);
  EXPECT_NE(cli.out.find("result: INVALID"), std::string::npos);
}

TEST(Inspect, EveryDefectOfOneCheckpointFlagged) {
  TempDir t;
  const float nan = NAN;
  EditableTensor stray{"model.layers.0.mlp.experimental.weight", DType::BF16, {4}, std::vector<uint8_t>(8, 0)};
  broken(
      t.path(),
      [&](EditableTensor& e) {
        if (e.name == "model.layers.1.self_attn.kv_a_layernorm.weight") {  // shape not the config's
          e.shape = {64};
          e.bytes.resize(128);
        }
        if (e.name == "model.layers.0.mlp.up_proj.weight") e.dtype = DType::I8;  // dtype not usable for this tensor
        if (e.name == "model.layers.1.mlp.gate.e_score_correction_bias") std::memcpy(e.bytes.data(), &nan, 4);  // non-finite
        if (e.name == "model.layers.2.self_attn.q_b_proj.weight_scale_inv") {  // wrong scale shape
          e.shape = {1, 1};
          e.bytes.resize(4);
        }
        if (e.name == "model.layers.1.self_attn.o_proj.weight_scale_inv") return false;  // FP8 without its scale
        if (e.name == "model.layers.2.mlp.shared_experts.down_proj.weight") return false;  // required, missing
        if (e.name == "model.layers.3.enorm.weight") return false;  // part of the MTP module
        return true;
      },
      {stray});
  InspectReport r = inspect(t.path());
  EXPECT_FALSE(r.ok());
  const CheckpointValidation& v = *r.validation;
  EXPECT_EQ(v.missing, std::vector<std::string>{"model.layers.2.mlp.shared_experts.down_proj.weight"});
  EXPECT_EQ(v.mtp_missing, std::vector<std::string>{"model.layers.3.enorm.weight"});
  EXPECT_TRUE(problem_about(r, "model.layers.1.self_attn.kv_a_layernorm.weight", "expected [128]"));
  EXPECT_TRUE(problem_about(r, "model.layers.0.mlp.up_proj.weight", "I8"));
  EXPECT_TRUE(problem_about(r, "model.layers.1.mlp.gate.e_score_correction_bias", "not finite"));
  EXPECT_TRUE(problem_about(r, "model.layers.2.self_attn.q_b_proj.weight_scale_inv", "expected [2, 1]"));
  EXPECT_TRUE(problem_about(r, "model.layers.1.self_attn.o_proj.weight_scale_inv", "missing"));
  EXPECT_EQ(v.problems.size(), 5u);
  // The stray tensor and the orphaned scale of the dropped projection are unused (warnings).
  EXPECT_TRUE(contains(v.unused, "model.layers.0.mlp.experimental.weight"));
  EXPECT_TRUE(contains(v.unused, "model.layers.2.mlp.shared_experts.down_proj.weight_scale_inv"));

  auto cli = dsv3::test::run_dsv3("inspect --json --model " + t.path());
  EXPECT_EQ(cli.exit_code, 1);
  Json j = parse_json(cli.out, "inspect output").value();
  EXPECT_FALSE(j["valid"].get<bool>());
  EXPECT_EQ(j["validation"]["problems"].size(), 5u);
  EXPECT_EQ(j["validation"]["unused"].size(), v.unused.size());
}

TEST(Inspect, WarningsOnlyStayValid) {
  TempDir t;
  EditableTensor stray{"model.some_new_thing.weight", DType::F32, {2}, std::vector<uint8_t>(8, 0)};
  broken(t.path(), [](EditableTensor& e) { return e.name.find("model.layers.3.") != 0; }, {stray});  // no MTP
  InspectReport r = inspect(t.path());
  EXPECT_TRUE(r.ok());
  EXPECT_TRUE(r.validation->mtp_absent);
  EXPECT_TRUE(r.validation->mtp_missing.empty());
  EXPECT_EQ(r.validation->unused, std::vector<std::string>{"model.some_new_thing.weight"});
  EXPECT_GT(r.footprint.tensors_missing, 0u);
  auto cli = dsv3::test::run_dsv3("inspect --model " + t.path());
  EXPECT_EQ(cli.exit_code, 0);
  EXPECT_NE(cli.out.find("none of their tensors is stored"), std::string::npos) << cli.out;
  EXPECT_NE(cli.out.find("model.some_new_thing.weight"), std::string::npos);
}

TEST(Inspect, VerifyFindsNonFiniteValuesInBigTensors) {
  TempDir t;
  broken(t.path(), [](EditableTensor& e) {
    if (e.name == "model.layers.1.mlp.experts.7.gate_proj.weight") {  // FP8: 0x7F and 0xFF are NaN
      e.bytes[1000] = 0x7F;
      e.bytes[2000] = 0xFF;
    }
    if (e.name == "model.embed_tokens.weight") {  // BF16 +Inf, then a NaN
      uint16_t inf = 0x7F80, qnan = 0x7FC1;
      std::memcpy(e.bytes.data() + 2 * 300, &inf, 2);
      std::memcpy(e.bytes.data() + 2 * 301, &qnan, 2);
    }
    return true;
  });
  // The loader's cheap checks do not read big tensors: valid without --verify.
  EXPECT_TRUE(inspect(t.path()).ok());
  InspectReport r = inspect(t.path(), true);
  EXPECT_FALSE(r.ok());
  ASSERT_EQ(r.verify->bad_tensors, 2u);
  for (const TensorValueScan& s : r.verify->tensors) {
    if (s.name == "model.layers.1.mlp.experts.7.gate_proj.weight") {
      EXPECT_EQ(s.nan, 2u);
      EXPECT_EQ(s.inf, 0u);
      EXPECT_EQ(s.first_bad, 1000);
    } else if (s.name == "model.embed_tokens.weight") {
      EXPECT_EQ(s.nan, 1u);
      EXPECT_EQ(s.inf, 1u);
      EXPECT_EQ(s.first_bad, 300);
    } else {
      EXPECT_TRUE(s.ok()) << s.name;
    }
  }
  auto cli = dsv3::test::run_dsv3("inspect --verify --model " + t.path());
  EXPECT_EQ(cli.exit_code, 1);
  EXPECT_NE(cli.out.find("NON-FINITE model.embed_tokens.weight (BF16): 1 NaN, 1 Inf"), std::string::npos) << cli.out;
  EXPECT_NE(cli.out.find("NON-FINITE model.layers.1.mlp.experts.7.gate_proj.weight (F8_E4M3): 2 NaN"),
            std::string::npos);
}

TEST(Inspect, UnreadableWeightsAndBadConfig) {
  TempDir t;
  std::filesystem::copy(kTiny, t.path(), std::filesystem::copy_options::recursive);
  std::filesystem::resize_file(t / "model-00002-of-00002.safetensors", 1000);
  InspectReport r = inspect(t.path());
  EXPECT_FALSE(r.ok());
  EXPECT_NE(r.weights_error.find("model-00002-of-00002.safetensors"), std::string::npos) << r.weights_error;
  EXPECT_GT(r.footprint.params.main, 0u);  // the config still describes the model
  auto cli = dsv3::test::run_dsv3("inspect --model " + t.path());
  EXPECT_EQ(cli.exit_code, 1);
  EXPECT_NE(cli.out.find("UNREADABLE"), std::string::npos) << cli.out;

  dsv3::test::write_file(t / "config.json", "{\"model_type\": \"deepseek_v3\",");
  auto bad = dsv3::test::run_dsv3("inspect --model " + t.path());
  EXPECT_EQ(bad.exit_code, 1);
  EXPECT_NE(bad.err.find("dsv3 inspect: error:"), std::string::npos) << bad.err;
  EXPECT_NE(bad.err.find("config.json"), std::string::npos);
  EXPECT_EQ(dsv3::test::run_dsv3("inspect --model " + (t / "nowhere")).exit_code, 1);
  EXPECT_EQ(dsv3::test::run_dsv3("inspect").exit_code, 2);
}
