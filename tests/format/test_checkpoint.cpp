// Checkpoint directories: index + shards cross-checks (missing shards, tensors the index and
// the shards disagree on) and shard paths that must not escape the model directory.
#include <gtest/gtest.h>

#include <unistd.h>

#include "format/checkpoint.h"
#include "test_util.h"

using namespace dsv3;
using dsv3::test::le64;
using dsv3::test::TempDir;
using dsv3::test::write_file;

namespace {

// A shard holding U8 tensors of one byte each, named as given.
void write_shard(const std::string& path, const std::vector<std::string>& names) {
  std::string h = "{";
  for (size_t i = 0; i < names.size(); ++i) {
    if (i) h += ",";
    h += "\"" + names[i] + "\":{\"dtype\":\"U8\",\"shape\":[1],\"data_offsets\":[" + std::to_string(i) + "," +
         std::to_string(i + 1) + "]}";
  }
  h += "}";
  write_file(path, le64(h.size()) + h + std::string(names.size(), '\x05'));
}

void write_index(const std::string& dir, const std::string& weight_map_json) {
  write_file(dir + "/model.safetensors.index.json", "{\"metadata\":{},\"weight_map\":" + weight_map_json + "}");
}

std::string open_error(const std::string& dir) {
  auto r = Checkpoint::open(dir);
  return r.ok() ? "" : r.error().message();
}

}  // namespace

TEST(Checkpoint, OpensTinyFixtures) {
  for (const char* name : {"tiny-v3", "tiny-v2"}) {
    auto r = Checkpoint::open(dsv3::test::fixtures() + "/" + name);
    ASSERT_TRUE(r.ok()) << r.error().message();
    const TensorRef* e = (*r)->find("model.embed_tokens.weight");
    ASSERT_NE(e, nullptr);
    EXPECT_EQ(e->dtype, DType::BF16);
    EXPECT_EQ(e->shape, (std::vector<int64_t>{1024, 256}));
  }
  auto v3 = Checkpoint::open(dsv3::test::fixtures() + "/tiny-v3").value();
  const TensorRef* q = v3->find("model.layers.0.self_attn.q_b_proj.weight");
  ASSERT_NE(q, nullptr);
  EXPECT_EQ(q->dtype, DType::F8_E4M3);
  EXPECT_EQ(v3->shards().size(), 2u);
}

TEST(Checkpoint, SingleFileWithoutIndex) {
  TempDir t;
  write_shard(t / "model.safetensors", {"a", "b"});
  auto r = Checkpoint::open(t.path());
  ASSERT_TRUE(r.ok()) << r.error().message();
  EXPECT_NE((*r)->find("b"), nullptr);
}

TEST(Checkpoint, MissingEverything) {
  TempDir t;
  EXPECT_NE(open_error(t.path()).find("neither"), std::string::npos);
  EXPECT_NE(open_error(t / "nope").find("nope"), std::string::npos);
}

TEST(Checkpoint, ShardPathEscapes) {
  TempDir t;
  for (const char* bad : {"../x.safetensors", "/etc/passwd", "a\\\\b", "sub/../../x"}) {
    write_index(t.path(), std::string("{\"w\":\"") + bad + "\"}");
    EXPECT_NE(open_error(t.path()).find("escapes model directory"), std::string::npos) << bad;
  }
  write_index(t.path(), "{\"w\":\"a\\u0000b\"}");
  EXPECT_NE(open_error(t.path()).find("escapes model directory"), std::string::npos);
  // A symlink pointing outside the directory.
  TempDir outside;
  write_shard(outside / "real.safetensors", {"w"});
  ASSERT_EQ(::symlink((outside / "real.safetensors").c_str(), (t / "link.safetensors").c_str()), 0);
  write_index(t.path(), "{\"w\":\"link.safetensors\"}");
  EXPECT_NE(open_error(t.path()).find("escapes model directory"), std::string::npos);
}

TEST(Checkpoint, HuggingFaceCacheSymlinksAccepted) {
  TempDir t;
  std::string repo = t / "models--x--y";
  std::filesystem::create_directories(repo + "/blobs");
  std::filesystem::create_directories(repo + "/snapshots/abc");
  write_shard(repo + "/blobs/0123", {"w"});
  ASSERT_EQ(::symlink("../../blobs/0123", (repo + "/snapshots/abc/model.safetensors").c_str()), 0);
  auto r = Checkpoint::open(repo + "/snapshots/abc");
  EXPECT_TRUE(r.ok()) << r.error().message();
}

TEST(Checkpoint, MissingShardNamed) {
  TempDir t;
  write_index(t.path(), "{\"w\":\"model-00001-of-00002.safetensors\"}");
  std::string e = open_error(t.path());
  EXPECT_NE(e.find("model-00001-of-00002.safetensors"), std::string::npos) << e;
  EXPECT_NE(e.find("No such file"), std::string::npos) << e;
}

TEST(Checkpoint, IndexAndShardsDisagree) {
  TempDir t;
  write_shard(t / "s1.safetensors", {"a"});
  write_index(t.path(), R"({"a":"s1.safetensors","b":"s1.safetensors"})");
  EXPECT_NE(open_error(t.path()).find("'b'"), std::string::npos);
  write_shard(t / "s2.safetensors", {"a"});
  write_index(t.path(), R"({"a":"s1.safetensors","x":"s2.safetensors"})");
  std::string e = open_error(t.path());
  EXPECT_NE(e.find("'a'"), std::string::npos) << e;
}

TEST(Checkpoint, UnlistedTensorOnlyWarns) {
  TempDir t;
  write_shard(t / "s1.safetensors", {"a", "extra"});
  write_index(t.path(), R"({"a":"s1.safetensors"})");
  auto r = Checkpoint::open(t.path());
  ASSERT_TRUE(r.ok()) << r.error().message();
  EXPECT_EQ((*r)->find("extra"), nullptr);
}

TEST(Checkpoint, MisalignedTensorGetsAlignedCopy) {
  TempDir t;
  // Header of odd length so that the F32 tensor lands at an odd address; no padding.
  std::string h = R"({"b":{"dtype":"U8","shape":[1],"data_offsets":[0,1]},"f":{"dtype":"F32","shape":[2],"data_offsets":[1,9]}})";
  std::string data(9, '\0');
  float vals[2] = {1.5f, -2.0f};
  std::memcpy(&data[1], vals, 8);
  write_file(t / "model.safetensors", le64(h.size()) + h + data);
  auto r = Checkpoint::open(t.path());
  ASSERT_TRUE(r.ok()) << r.error().message();
  const TensorRef* f = (*r)->find("f");
  ASSERT_NE(f, nullptr);
  EXPECT_EQ(reinterpret_cast<uintptr_t>(f->data) % 4, 0u);
  EXPECT_EQ(reinterpret_cast<const float*>(f->data)[1], -2.0f);
}
