// Defective checkpoints (docs/BAD_INPUTS.md, section A, and NaN/Inf weights): each is a
// clear load error naming the tensor (or field) and expected vs actual, never a crash.

#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>

#include "checkpoint_edit.h"
#include "model/model.h"
#include "test_util.h"

using namespace dsv3;
using dsv3::test::EditableTensor;
using dsv3::test::TempDir;

namespace {

const std::string kTiny = dsv3::test::fixtures() + "/tiny-v3";

std::string load_error(const std::string& dir, bool mtp = false) {
  ModelOptions opt;
  opt.threads = 1;
  opt.load_mtp = mtp;
  auto m = Model::load(dir, opt);
  return m.ok() ? "" : m.error().message();
}

#define EXPECT_HAS(msg, needle) EXPECT_NE((msg).find(needle), std::string::npos) << "message: " << (msg)

}  // namespace

TEST(BadCheckpoint, RewrittenCopyStillLoads) {
  TempDir t;
  dsv3::test::rewrite_checkpoint(kTiny, t.path(), [](EditableTensor&) { return true; });
  EXPECT_EQ(load_error(t.path(), true), "");
}

TEST(BadCheckpoint, MissingTensorsNamedWithCount) {
  TempDir t;
  dsv3::test::rewrite_checkpoint(kTiny, t.path(), [](EditableTensor& e) {
    return e.name.find("model.layers.2.mlp.experts.") != 0;  // drop every expert of layer 2
  });
  std::string e = load_error(t.path());
  EXPECT_HAS(e, "required tensor(s) missing");
  EXPECT_HAS(e, "model.layers.2.mlp.experts.0.down_proj.weight");
  EXPECT_HAS(e, "and 28 more");  // 16 experts x 3 = 48 missing, 20 listed
}

TEST(BadCheckpoint, ExtraTensorsIgnored) {
  TempDir t;
  EditableTensor extra{"model.some_new_thing.weight", DType::F32, {2}, std::vector<uint8_t>(8, 0)};
  dsv3::test::rewrite_checkpoint(kTiny, t.path(), [](EditableTensor&) { return true; }, {extra});
  EXPECT_EQ(load_error(t.path()), "");  // MTP layer 3 unused here too
}

TEST(BadCheckpoint, ShapeMismatchExpectedVsActual) {
  TempDir t;
  dsv3::test::rewrite_checkpoint(kTiny, t.path(), [](EditableTensor& e) {
    if (e.name == "model.layers.1.self_attn.kv_a_layernorm.weight") {
      e.shape = {64};
      e.bytes.resize(128);
    }
    return true;
  });
  std::string e = load_error(t.path());
  EXPECT_HAS(e, "model.layers.1.self_attn.kv_a_layernorm.weight");
  EXPECT_HAS(e, "[64]");
  EXPECT_HAS(e, "expected [128]");
}

TEST(BadCheckpoint, Fp8WithoutScale) {
  TempDir t;
  dsv3::test::rewrite_checkpoint(kTiny, t.path(), [](EditableTensor& e) {
    return e.name != "model.layers.0.self_attn.o_proj.weight_scale_inv";
  });
  std::string e = load_error(t.path());
  EXPECT_HAS(e, "model.layers.0.self_attn.o_proj.weight_scale_inv");
  EXPECT_HAS(e, "missing");
}

TEST(BadCheckpoint, Fp8ScaleWrongShape) {
  TempDir t;
  dsv3::test::rewrite_checkpoint(kTiny, t.path(), [](EditableTensor& e) {
    if (e.name == "model.layers.0.self_attn.kv_a_proj_with_mqa.weight_scale_inv") {
      // [144, 256] in 128-blocks needs [2, 2]; give [1, 2]
      e.shape = {1, 2};
      e.bytes.resize(8);
    }
    return true;
  });
  std::string e = load_error(t.path());
  EXPECT_HAS(e, "kv_a_proj_with_mqa.weight_scale_inv");
  EXPECT_HAS(e, "expected [2, 2]");
}

TEST(BadCheckpoint, NonFiniteOrNonPositiveValues) {
  struct Case {
    const char* name;
    float value;
  };
  for (Case c : {Case{"model.layers.1.mlp.experts.3.up_proj.weight_scale_inv", NAN},
                 Case{"model.layers.1.mlp.experts.3.up_proj.weight_scale_inv", 0.0f},
                 Case{"model.layers.1.mlp.experts.3.up_proj.weight_scale_inv", -1.0f},
                 Case{"model.layers.1.mlp.gate.e_score_correction_bias", INFINITY}}) {
    TempDir t;
    dsv3::test::rewrite_checkpoint(kTiny, t.path(), [&](EditableTensor& e) {
      if (e.name == c.name) std::memcpy(e.bytes.data(), &c.value, 4);
      return true;
    });
    std::string e = load_error(t.path());
    EXPECT_HAS(e, c.name);
  }
  TempDir t;
  dsv3::test::rewrite_checkpoint(kTiny, t.path(), [](EditableTensor& e) {
    if (e.name == "model.norm.weight") {
      uint16_t nan_bf16 = 0x7FC0;
      std::memcpy(e.bytes.data() + 10, &nan_bf16, 2);
    }
    return true;
  });
  std::string e = load_error(t.path());
  EXPECT_HAS(e, "model.norm.weight");
  EXPECT_HAS(e, "index 5");
}

TEST(BadCheckpoint, DtypeNotUsableForTheTensor) {
  TempDir t;
  dsv3::test::rewrite_checkpoint(kTiny, t.path(), [](EditableTensor& e) {
    if (e.name == "model.layers.0.mlp.up_proj.weight") e.dtype = DType::I8;  // same byte size as F8
    return true;
  });
  std::string e = load_error(t.path());
  EXPECT_HAS(e, "model.layers.0.mlp.up_proj.weight");
  EXPECT_HAS(e, "I8");
}

TEST(BadCheckpoint, MtpRequestedButMissing) {
  TempDir t;
  dsv3::test::rewrite_checkpoint(kTiny, t.path(), [](EditableTensor& e) { return e.name.find("model.layers.3.") != 0; });
  EXPECT_EQ(load_error(t.path(), false), "");  // not needed: fine
  EXPECT_HAS(load_error(t.path(), true), "model.layers.3.");
}

TEST(BadCheckpoint, TruncatedShardNamesFile) {
  TempDir t;
  std::filesystem::copy(kTiny, t.path(), std::filesystem::copy_options::recursive);
  std::string shard = t / "model-00002-of-00002.safetensors";
  std::filesystem::resize_file(shard, std::filesystem::file_size(shard) - 100);
  std::string e = load_error(t.path());
  EXPECT_HAS(e, "model-00002-of-00002.safetensors");
  EXPECT_HAS(e, "truncated");
}

TEST(BadCheckpoint, ConfigFieldMissingNamed) {
  TempDir t;
  std::filesystem::copy(kTiny, t.path(), std::filesystem::copy_options::recursive);
  auto cfg = parse_json(dsv3::test::read_file(t / "config.json"), "c").value();
  cfg.erase("kv_lora_rank");
  dsv3::test::write_file(t / "config.json", cfg.dump());
  std::string e = load_error(t.path());
  EXPECT_HAS(e, "config.json");
  EXPECT_HAS(e, "'kv_lora_rank'");
}

TEST(BadCheckpoint, CommandLineReportsAndExitsNonZero) {
  TempDir t;
  std::filesystem::copy(kTiny, t.path(), std::filesystem::copy_options::recursive);
  std::filesystem::resize_file(t / "model-00001-of-00002.safetensors", 5);
  auto r = dsv3::test::run_dsv3("logits --model " + t.path() + " --tokens 0,1 --out " + (t / "x.safetensors"));
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_HAS(r.err, "header too small");
  EXPECT_HAS(r.err, "model-00001-of-00002.safetensors");
  auto missing = dsv3::test::run_dsv3("logits --model " + (t / "nowhere") + " --tokens 0 --out " + (t / "x.safetensors"));
  EXPECT_EQ(missing.exit_code, 1);
  EXPECT_HAS(missing.err, "nowhere");
  auto usage = dsv3::test::run_dsv3("logits --tokens");
  EXPECT_EQ(usage.exit_code, 2);
  auto bad_tokens = dsv3::test::run_dsv3("logits --model " + kTiny + " --tokens 0,abc --out " + (t / "x.safetensors"));
  EXPECT_EQ(bad_tokens.exit_code, 1);
  EXPECT_HAS(bad_tokens.err, "abc");
  auto oov = dsv3::test::run_dsv3("logits --model " + kTiny + " --tokens 0,5000 --out " + (t / "x.safetensors"));
  EXPECT_EQ(oov.exit_code, 1);
  EXPECT_HAS(oov.err, "5000");
}
