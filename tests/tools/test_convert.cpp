// dsv3 convert: FP8 -> BF16 bit-exact against an independent computation of what DeepSeek's
// fp8_cast_bf16.py produces, logits on the result against the reference run on those BF16
// weights, BF16 -> FP8 round trip, non-weight files, and the output-directory protocol
// (refusals, stale temporaries, interruption, write errors).

#include <gtest/gtest.h>
#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>

#include <chrono>
#include <cmath>
#include <thread>
#include <filesystem>

#include "format/checkpoint.h"
#include "model/checkpoint_edit.h"
#include "model/golden.h"
#include "model/model.h"
#include "test_util.h"
#include "tools/convert.h"
#include "tools/partial_file.h"

using namespace dsv3;
using dsv3::test::TempDir;
namespace fs = std::filesystem;

namespace {

const std::string kTiny = dsv3::test::fixtures() + "/tiny-v3";

Status convert(const std::string& in, const std::string& out, ConvertTarget to, StreamOptions stream = {}) {
  ThreadPool pool(2);
  ConvertOptions opt;
  opt.model_dir = in;
  opt.out_dir = out;
  opt.target = to;
  opt.stream = stream;
  opt.stream.durable = false;  // tests do not need to wait for the disk
  auto r = convert_checkpoint(opt, pool);
  if (!r.ok()) return std::move(r).error();
  return {};
}

// Independent of src/tensor: e4m3fn decoded from its bit fields, BF16 rounding by the bit
// trick of the reference's st.py (round half to even on the dropped 16 bits).
float e4m3_value(uint8_t b) {
  const int sign = b & 0x80 ? -1 : 1, e = (b >> 3) & 0xF, m = b & 7;
  if (e == 0) return static_cast<float>(sign * std::ldexp(m / 8.0, -6));
  return static_cast<float>(sign * std::ldexp(1.0 + m / 8.0, e - 7));
}
uint16_t round_to_bf16(float f) {
  uint32_t u;
  std::memcpy(&u, &f, 4);
  return static_cast<uint16_t>((u + 0x7FFF + ((u >> 16) & 1)) >> 16);
}
float bf16_value(uint16_t h) {
  uint32_t u = static_cast<uint32_t>(h) << 16;
  float f;
  std::memcpy(&f, &u, 4);
  return f;
}

std::vector<std::string> files_in(const std::string& dir) {
  std::vector<std::string> names;
  for (const auto& e : fs::directory_iterator(dir)) names.push_back(e.path().filename().string());
  std::sort(names.begin(), names.end());
  return names;
}

bool has_partial(const std::string& dir) {
  for (const auto& n : files_in(dir))
    if (n.find(kPartialSuffix) != std::string::npos) return true;
  return false;
}

}  // namespace

TEST(Convert, Bf16IsBitExactFp8CastBf16) {
  TempDir t;
  ASSERT_TRUE(convert(kTiny, t.path(), ConvertTarget::Bf16).ok());
  auto in = Checkpoint::open(kTiny).value();
  auto out = Checkpoint::open(t.path()).value();
  size_t fp8 = 0;
  for (const auto& [name, src] : in->tensors()) {
    if (name.size() > 10 && name.compare(name.size() - 10, 10, "_scale_inv") == 0) {
      EXPECT_EQ(out->find(name), nullptr) << "scales are dropped: " << name;
      continue;
    }
    const TensorRef* dst = out->find(name);
    ASSERT_NE(dst, nullptr) << name;
    EXPECT_EQ(dst->shape, src.shape) << name;
    if (src.dtype != DType::F8_E4M3) {
      EXPECT_EQ(dst->dtype, src.dtype) << name;
      EXPECT_EQ(0, std::memcmp(dst->data, src.data, src.nbytes)) << name;
      continue;
    }
    ++fp8;
    ASSERT_EQ(dst->dtype, DType::BF16) << name;
    const TensorRef* scale = in->find(name + "_scale_inv");
    ASSERT_NE(scale, nullptr);
    const int64_t rows = src.shape[0], cols = src.shape[1], scale_cols = scale->shape[1];
    for (int64_t r = 0; r < rows; ++r)
      for (int64_t c = 0; c < cols; ++c) {
        float s;
        std::memcpy(&s, scale->data + 4 * ((r / 128) * scale_cols + c / 128), 4);
        const float product = e4m3_value(src.data[r * cols + c]) * s;  // float32, as torch does
        uint16_t got;
        std::memcpy(&got, dst->data + 2 * (r * cols + c), 2);
        ASSERT_EQ(got, round_to_bf16(product)) << name << " [" << r << ", " << c << "]";
      }
  }
  EXPECT_GT(fp8, 150u);
  // config.json: quantization_config removed, everything else kept.
  Json cin = parse_json(dsv3::test::read_file(kTiny + "/config.json"), "in").value();
  Json cout = parse_json(dsv3::test::read_file(t / "config.json"), "out").value();
  EXPECT_FALSE(cout.contains("quantization_config"));
  cin.erase("quantization_config");
  EXPECT_EQ(cin, cout);
  // Index: every tensor of the output, in the shard that holds it.
  Json index = parse_json(dsv3::test::read_file(t / "model.safetensors.index.json"), "index").value();
  EXPECT_EQ(index["weight_map"].size(), out->tensors().size());
  uint64_t total = 0;
  for (const auto& [name, ref] : out->tensors()) total += ref.nbytes;
  EXPECT_EQ(index["metadata"]["total_size"].get<uint64_t>(), total);
  EXPECT_EQ(files_in(t.path()), (std::vector<std::string>{"config.json", "model-00001-of-00002.safetensors",
                                                          "model-00002-of-00002.safetensors",
                                                          "model.safetensors.index.json"}));
}

TEST(Convert, Bf16LogitsMatchTheReferenceOnBf16Weights) {
  TempDir t;
  ASSERT_TRUE(convert(kTiny, t.path(), ConvertTarget::Bf16).ok());
  ModelOptions opt;
  opt.threads = 2;
  opt.load_mtp = true;
  auto model = Model::load(t.path(), opt);
  ASSERT_TRUE(model.ok()) << model.error().message();
  auto golden = dsv3::test::Golden::load(dsv3::test::fixtures() + "/golden/tiny-v3-bf16");
  auto prompts = golden.prompts();
  ASSERT_FALSE(prompts.empty());
  for (size_t i = 0; i < prompts.size(); ++i) {
    KVCache cache = (*model)->new_cache();
    SequenceInput in{&cache, prompts[i], Logits::All};
    ForwardOutput out;
    ASSERT_TRUE((*model)->forward({&in, 1}, &out).ok());
    auto d = dsv3::test::max_abs_diff(out.logits, golden.f32("logits." + std::to_string(i)));
    EXPECT_LE(d.max_abs, 1e-3) << "prompt " << i;
  }
}

TEST(Convert, Fp8RoundTripWithinE4m3Rounding) {
  TempDir bf16, fp8;
  ASSERT_TRUE(convert(kTiny, bf16.path(), ConvertTarget::Bf16).ok());
  ASSERT_TRUE(convert(bf16.path(), fp8.path(), ConvertTarget::Fp8).ok());
  auto b = Checkpoint::open(bf16.path()).value();
  auto q = Checkpoint::open(fp8.path()).value();
  const ModelConfig config = load_model_config(fp8.path()).value();
  ASSERT_TRUE(config.quantization_config);
  EXPECT_EQ(config.quantization_config->block_rows, 128);
  size_t linear = 0;
  for (const TensorSpec& spec : model_tensor_specs(config)) {
    const TensorRef* w = q->find(spec.name);
    const TensorRef* src = b->find(spec.name);
    ASSERT_NE(w, nullptr) << spec.name;
    if (spec.role != TensorRole::Linear) {  // gate, eh_proj, norms, embeddings, head stay as they are
      EXPECT_EQ(w->dtype, src->dtype) << spec.name;
      EXPECT_EQ(0, std::memcmp(w->data, src->data, src->nbytes)) << spec.name;
      continue;
    }
    ++linear;
    ASSERT_EQ(w->dtype, DType::F8_E4M3) << spec.name;
    const TensorRef* s = q->find(spec.name + "_scale_inv");
    ASSERT_NE(s, nullptr) << spec.name;
    const int64_t rows = w->shape[0], cols = w->shape[1], scale_cols = s->shape[1];
    ASSERT_EQ(s->shape, (std::vector<int64_t>{(rows + 127) / 128, scale_cols}));
    std::vector<float> amax(static_cast<size_t>(s->numel()), 0.0f);
    for (int64_t r = 0; r < rows; ++r)
      for (int64_t c = 0; c < cols; ++c) {
        uint16_t h;
        std::memcpy(&h, src->data + 2 * (r * cols + c), 2);
        const double v = bf16_value(h);
        float scale;
        std::memcpy(&scale, s->data + 4 * ((r / 128) * scale_cols + c / 128), 4);
        amax[(r / 128) * scale_cols + c / 128] = std::max(amax[(r / 128) * scale_cols + c / 128], static_cast<float>(std::fabs(v)));
        const double deq = static_cast<double>(e4m3_value(w->data[r * cols + c])) * scale;
        // Half a step of e4m3 (3 mantissa bits) around v / scale, in weight units.
        const double a = std::fabs(v / scale);
        const double half_ulp = a < std::ldexp(1.0, -6) ? std::ldexp(1.0, -10) : std::ldexp(1.0, static_cast<int>(std::floor(std::log2(a))) - 4);
        ASSERT_LE(std::fabs(deq - v), half_ulp * scale * (1 + 1e-6)) << spec.name << " [" << r << ", " << c << "]";
      }
    for (size_t k = 0; k < amax.size(); ++k) {
      float scale;
      std::memcpy(&scale, s->data + 4 * k, 4);
      EXPECT_FLOAT_EQ(scale, std::max(amax[k], 1e-12f) / 448.0f) << spec.name << " block " << k;
    }
  }
  EXPECT_GT(linear, 150u);
  // The result loads (MTP included) and runs.
  ModelOptions opt;
  opt.threads = 2;
  opt.load_mtp = true;
  auto model = Model::load(fp8.path(), opt);
  ASSERT_TRUE(model.ok()) << model.error().message();
  KVCache cache = (*model)->new_cache();
  std::vector<int32_t> tokens = {0, 17, 923, 5};
  SequenceInput in{&cache, tokens, Logits::All};
  ForwardOutput out;
  ASSERT_TRUE((*model)->forward({&in, 1}, &out).ok());
  for (float v : out.logits) ASSERT_TRUE(std::isfinite(v));
}

TEST(Convert, CopiesNonWeightFilesAndKeepsSingleFileLayout) {
  TempDir in, out;
  fs::copy(kTiny, in.path(), fs::copy_options::recursive);
  fs::copy_file(dsv3::test::v3_tokenizer_dir() + "/tokenizer_config.json", in / "tokenizer_config.json");
  dsv3::test::write_file(in / "generation_config.json", "{\"temperature\": 0.6}\n");
  fs::create_directories(in / "figures");
  dsv3::test::write_file(in / "figures/plot.png", "x");
  auto r = dsv3::test::run_dsv3("convert --model " + in.path() + " --out " + out.path() + " --to bf16");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(dsv3::test::read_file(out / "generation_config.json"), "{\"temperature\": 0.6}\n");
  EXPECT_EQ(dsv3::test::read_file(out / "tokenizer_config.json"), dsv3::test::read_file(in / "tokenizer_config.json"));
  EXPECT_FALSE(fs::exists(out / "figures"));
  EXPECT_NE(r.out.find("not copied: figures/"), std::string::npos) << r.out;
  EXPECT_NE(r.err.find("convert:"), std::string::npos) << "progress lines: " << r.err;

  // A single model.safetensors without index converts to the same layout.
  TempDir single, single_out;
  dsv3::test::rewrite_checkpoint(kTiny, single.path(), [](dsv3::test::EditableTensor&) { return true; });
  ASSERT_TRUE(convert(single.path(), single_out.path(), ConvertTarget::Bf16).ok());
  EXPECT_EQ(files_in(single_out.path()), (std::vector<std::string>{"config.json", "model.safetensors"}));
  ModelOptions opt;
  opt.threads = 1;
  EXPECT_TRUE(Model::load(single_out.path(), opt).ok());
}

TEST(Convert, HelpSaysTheFp8CheckpointStaysTheOneToServe) {
  auto r = dsv3::test::run_dsv3("convert --help");
  EXPECT_EQ(r.exit_code, 0);
  EXPECT_NE(r.out.find("Keep serving the FP8 checkpoint"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("fp8_cast_bf16.py"), std::string::npos);
}

TEST(Convert, RefusesUnsafeOutputDirectories) {
  TempDir t;
  auto same = dsv3::test::run_dsv3("convert --model " + kTiny + " --out " + kTiny + "/ --to bf16");
  EXPECT_EQ(same.exit_code, 1);
  EXPECT_NE(same.err.find("is the model directory"), std::string::npos) << same.err;
  fs::create_directories(t / "busy");
  dsv3::test::write_file(t / "busy/notes.txt", "mine");
  auto busy = dsv3::test::run_dsv3("convert --model " + kTiny + " --out " + (t / "busy") + " --to bf16");
  EXPECT_EQ(busy.exit_code, 1);
  EXPECT_NE(busy.err.find("notes.txt"), std::string::npos) << busy.err;
  EXPECT_EQ(dsv3::test::read_file(t / "busy/notes.txt"), "mine");
  EXPECT_EQ(dsv3::test::run_dsv3("convert --model " + kTiny + " --out " + (t / "x") + " --to fp4").exit_code, 2);
  // An invalid input is refused before anything is written.
  TempDir bad;
  dsv3::test::rewrite_checkpoint(kTiny, bad.path(), [](dsv3::test::EditableTensor& e) {
    return e.name != "model.layers.0.self_attn.o_proj.weight_scale_inv";
  });
  auto invalid = dsv3::test::run_dsv3("convert --model " + bad.path() + " --out " + (t / "y") + " --to bf16");
  EXPECT_EQ(invalid.exit_code, 1);
  EXPECT_NE(invalid.err.find("o_proj.weight_scale_inv"), std::string::npos) << invalid.err;
  EXPECT_NE(invalid.err.find("dsv3 inspect"), std::string::npos);
  EXPECT_FALSE(fs::exists(t / "y"));
}

TEST(Convert, InterruptedRunLeavesNothingThatLooksCompleteAndRerunsCleanly) {
  TempDir clean, out;
  ASSERT_TRUE(convert(kTiny, clean.path(), ConvertTarget::Bf16).ok());
  // A previous complete output plus a stale temporary: the rerun below must first make the
  // directory visibly incomplete, then stop after the first batch of the first shard.
  ASSERT_TRUE(convert(kTiny, out.path(), ConvertTarget::Bf16).ok());
  dsv3::test::write_file(out / ("model-00002-of-00002.safetensors" + std::string(kPartialSuffix)), "junk");
  std::atomic<bool> cancel{false};
  StreamOptions s;
  s.chunk_bytes = 64 << 10;  // many small items, so the cancel lands mid-shard
  s.batch_items = 1;
  s.direct_io = false;  // the buffered write path (the other tests use direct I/O)
  s.cancel = &cancel;
  int calls = 0;
  s.on_progress = [&](uint64_t) {
    if (++calls == 2) cancel.store(true);
  };
  Status st = convert(kTiny, out.path(), ConvertTarget::Bf16, s);
  ASSERT_FALSE(st.ok());
  EXPECT_EQ(st.error().message(), "interrupted");
  EXPECT_FALSE(fs::exists(out / "config.json"));
  EXPECT_FALSE(fs::exists(out / "model.safetensors.index.json"));
  EXPECT_FALSE(has_partial(out.path())) << "partial files are removed";
  // Whatever carries a final name is complete: both shards are still those of the first run
  // (the new shard 1 was cut short as a .dsv3-partial file and removed).
  for (const auto& name : files_in(out.path())) EXPECT_TRUE(SafetensorsFile::open(out / name).ok()) << name;

  ASSERT_TRUE(convert(kTiny, out.path(), ConvertTarget::Bf16).ok());
  EXPECT_EQ(files_in(out.path()), files_in(clean.path()));
  for (const auto& name : files_in(clean.path()))
    EXPECT_EQ(dsv3::test::read_file(out / name), dsv3::test::read_file(clean / name)) << name;
}

TEST(Convert, WriteErrorsNameTheFile) {
  // A file size limit makes write() fail (EFBIG) the way a full disk does (ENOSPC): the
  // message names the file and the reason, and nothing is left under a final name.
  // 4 MiB: shard 1 (1.8 MB in BF16) fits, shard 2 (12.7 MB) does not.
  TempDir u;
  const std::string cmd = "bash -c 'ulimit -f 4096; exec " + std::string(DSV3_BIN) + " convert --model " + kTiny +
                          " --out " + (u / "out") + " --to bf16' >" + (u / "o") + " 2>" + (u / "e");
  const int status = std::system(cmd.c_str());
  ASSERT_TRUE(WIFEXITED(status));
  EXPECT_EQ(WEXITSTATUS(status), 1);
  const std::string err = dsv3::test::read_file(u / "e");
  EXPECT_NE(err.find("model-00002-of-00002.safetensors.dsv3-partial"), std::string::npos) << err;
  EXPECT_NE(err.find("File too large"), std::string::npos) << err;
  EXPECT_FALSE(fs::exists(u / "out/config.json"));
  EXPECT_FALSE(fs::exists(u / "out/model-00002-of-00002.safetensors"));
  EXPECT_TRUE(SafetensorsFile::open(u / "out/model-00001-of-00002.safetensors").ok());
  EXPECT_FALSE(has_partial(u / "out"));
}

TEST(Convert, CtrlCLeavesNoHalfWrittenFileUnderAFinalName) {
  // Real SIGINT to the command, sent as soon as it has a .dsv3-partial file open. Whatever the
  // moment, the output is either complete (exit 0) or visibly incomplete without temporaries
  // (exit 130); at least one of a few attempts must land mid-shard.
  int interrupted = 0;
  for (int attempt = 0; attempt < 5 && interrupted == 0; ++attempt) {
    TempDir t;
    const std::string out = t / "out";
    std::vector<std::string> args = {DSV3_BIN, "convert", "--model", kTiny, "--out", out, "--to", "bf16", "-t", "1"};
    std::vector<char*> argv;
    for (auto& a : args) argv.push_back(a.data());
    argv.push_back(nullptr);
    posix_spawn_file_actions_t actions;
    posix_spawn_file_actions_init(&actions);
    posix_spawn_file_actions_addopen(&actions, 1, "/dev/null", O_WRONLY, 0);
    posix_spawn_file_actions_addopen(&actions, 2, "/dev/null", O_WRONLY, 0);
    pid_t pid;
    ASSERT_EQ(posix_spawn(&pid, DSV3_BIN, &actions, nullptr, argv.data(), environ), 0);
    posix_spawn_file_actions_destroy(&actions);
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(20);
    int status = 0;
    bool exited = false;
    while (std::chrono::steady_clock::now() < deadline) {
      if (waitpid(pid, &status, WNOHANG) == pid) {
        exited = true;
        break;
      }
      std::error_code ec;
      if (fs::exists(out + "/model-00002-of-00002.safetensors" + kPartialSuffix, ec)) {
        kill(pid, SIGINT);
        break;
      }
      std::this_thread::sleep_for(std::chrono::microseconds(200));
    }
    if (!exited) {
      ASSERT_EQ(waitpid(pid, &status, 0), pid);
    }
    ASSERT_TRUE(WIFEXITED(status)) << "killed by signal " << WTERMSIG(status);
    const int code = WEXITSTATUS(status);
    ASSERT_TRUE(code == 0 || code == 130) << code;
    EXPECT_FALSE(has_partial(out));
    EXPECT_EQ(fs::exists(out + "/config.json"), code == 0);
    for (const auto& name : files_in(out))
      if (name.size() > 12 && name.compare(name.size() - 12, 12, ".safetensors") == 0) {
        EXPECT_TRUE(SafetensorsFile::open(out + "/" + name).ok()) << name;
      }
    interrupted += code == 130;
  }
  EXPECT_GT(interrupted, 0) << "no attempt was interrupted mid-conversion";
}
