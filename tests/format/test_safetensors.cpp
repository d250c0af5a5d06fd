// Bad safetensors files (truncated, malformed or hostile headers, offsets that do not tile the
// data): each must fail with a message naming the problem, never crash or read past the end.
#include <gtest/gtest.h>

#include <sys/stat.h>

#include "format/safetensors.h"
#include "test_util.h"

using namespace dsv3;
using dsv3::test::le64;
using dsv3::test::TempDir;

namespace {

std::string file_bytes(const std::string& header, size_t data_bytes) {
  return le64(header.size()) + header + std::string(data_bytes, '\x01');
}

// Opens a file made of `bytes`; returns the error message, or "" on success.
std::string open_error(const std::string& bytes) {
  TempDir t;
  std::string p = t / "m.safetensors";
  dsv3::test::write_file(p, bytes);
  auto r = SafetensorsFile::open(p);
  return r.ok() ? "" : r.error().message();
}

std::string header_error(const std::string& header, size_t data_bytes) {
  return open_error(file_bytes(header, data_bytes));
}

#define EXPECT_ERROR_HAS(msg, needle) \
  EXPECT_NE((msg).find(needle), std::string::npos) << "message: " << (msg)

}  // namespace

TEST(Safetensors, ValidFileParses) {
  std::string h = R"({"__metadata__":{"format":"pt"},"a":{"dtype":"F32","shape":[2,3],"data_offsets":[0,24]},)"
                  R"("b":{"dtype":"BF16","shape":[4],"data_offsets":[24,32]}})";
  TempDir t;
  dsv3::test::write_file(t / "m.safetensors", file_bytes(h, 32));
  auto r = SafetensorsFile::open(t / "m.safetensors");
  ASSERT_TRUE(r.ok()) << r.error().message();
  auto& f = **r;
  ASSERT_EQ(f.tensors().size(), 2u);
  const TensorInfo* a = f.find("a");
  ASSERT_NE(a, nullptr);
  EXPECT_EQ(a->dtype, DType::F32);
  EXPECT_EQ(a->shape, (std::vector<int64_t>{2, 3}));
  EXPECT_EQ(f.metadata().at("format"), "pt");
  EXPECT_EQ(f.data(*f.find("b")), f.file().data() + 8 + h.size() + 24);
}

TEST(Safetensors, TooSmall) {
  EXPECT_ERROR_HAS(open_error(""), "header too small");
  EXPECT_ERROR_HAS(open_error("abc"), "header too small");
}

TEST(Safetensors, HeaderPastEof) {
  EXPECT_ERROR_HAS(open_error(le64(1000) + "{}"), "InvalidHeaderLength");
}

TEST(Safetensors, HeaderTooLarge) {
  EXPECT_ERROR_HAS(open_error(le64(~0ull) + "{}"), "HeaderTooLarge");
  EXPECT_ERROR_HAS(open_error(le64(100'000'001) + "{}"), "HeaderTooLarge");
}

TEST(Safetensors, GitLfsPointer) {
  EXPECT_ERROR_HAS(open_error("version https://git-lfs.github.com/spec/v1\noid sha256:abc\nsize 123\n"), "git-lfs");
}

TEST(Safetensors, BadHeaderBytes) {
  EXPECT_ERROR_HAS(header_error("{\"a\xff\":1}", 0), "not valid UTF-8");
  EXPECT_ERROR_HAS(header_error("not json", 0), "invalid JSON");
  EXPECT_ERROR_HAS(header_error("{\"a\":{\"dtype\"", 0), "invalid JSON");
  EXPECT_ERROR_HAS(header_error("[1,2]", 0), "not a JSON object");
}

TEST(Safetensors, WhitespaceAroundHeaderAccepted) {
  std::string h = " \t\n{\"a\":{\"dtype\":\"U8\",\"shape\":[2],\"data_offsets\":[0,2]}}\r\n   ";
  EXPECT_EQ(header_error(h, 2), "");
}

TEST(Safetensors, DuplicateKey) {
  std::string h = R"({"a":{"dtype":"U8","shape":[1],"data_offsets":[0,1]},"a":{"dtype":"U8","shape":[1],"data_offsets":[1,2]}})";
  EXPECT_ERROR_HAS(header_error(h, 2), "duplicate key 'a'");
}

TEST(Safetensors, MetadataIsAnObjectOfStrings) {
  EXPECT_ERROR_HAS(header_error(R"({"__metadata__":{"x":1}})", 0), "not a string");
  EXPECT_ERROR_HAS(header_error(R"({"__metadata__":[1]})", 0), "not an object");
  EXPECT_EQ(header_error(R"({"__metadata__":{"x":"y"}})", 0), "");
}

TEST(Safetensors, UnknownDtype) {
  for (const char* dt : {"F8_E4M3FN", "bf16", "Q4_0"}) {
    std::string h = std::string(R"({"w":{"dtype":")") + dt + R"(","shape":[1],"data_offsets":[0,1]}})";
    std::string e = header_error(h, 1);
    EXPECT_ERROR_HAS(e, "unknown dtype");
    EXPECT_ERROR_HAS(e, "'w'");
  }
}

TEST(Safetensors, BadShapes) {
  for (const char* shape : {"[-1]", "[1.5]", "[\"3\"]", "[281474976710657]"}) {
    std::string h = std::string(R"({"w":{"dtype":"U8","shape":)") + shape + R"(,"data_offsets":[0,1]}})";
    EXPECT_NE(header_error(h, 1), "") << shape;
  }
  EXPECT_ERROR_HAS(header_error(R"({"w":{"dtype":"U8","data_offsets":[0,1]}})", 1), "shape");
  EXPECT_ERROR_HAS(header_error(R"({"w":{"dtype":"U8","shape":[1],"data_offsets":[0,1],"x":1}})", 1),
                   "unexpected field");
}

TEST(Safetensors, ShapeSizeOverflows) {
  EXPECT_ERROR_HAS(header_error(R"({"w":{"dtype":"U8","shape":[2,281474976710656,281474976710656],"data_offsets":[0,1]}})", 1),
                   "overflow");
  EXPECT_ERROR_HAS(header_error(R"({"w":{"dtype":"F64","shape":[281474976710656,65536],"data_offsets":[0,1]}})", 1),
                   "overflow");
}

TEST(Safetensors, BadOffsets) {
  EXPECT_NE(header_error(R"({"w":{"dtype":"U8","shape":[1],"data_offsets":[0]}})", 1), "");
  EXPECT_NE(header_error(R"({"w":{"dtype":"U8","shape":[1],"data_offsets":[-1,0]}})", 1), "");
  EXPECT_NE(header_error(R"({"w":{"dtype":"U8","shape":[1],"data_offsets":[0,1.0]}})", 1), "");
  EXPECT_ERROR_HAS(header_error(R"({"w":{"dtype":"U8","shape":[0],"data_offsets":[1,0]}})", 1), "end before begin");
}

TEST(Safetensors, GapBetweenTensors) {
  EXPECT_ERROR_HAS(header_error(R"({"w":{"dtype":"U8","shape":[1],"data_offsets":[1,2]}})", 2), "gap");
  EXPECT_ERROR_HAS(header_error(R"({"a":{"dtype":"U8","shape":[1],"data_offsets":[0,1]},"b":{"dtype":"U8","shape":[1],"data_offsets":[2,3]}})", 3),
                   "gap");
}

TEST(Safetensors, OverlappingTensors) {
  EXPECT_ERROR_HAS(header_error(R"({"a":{"dtype":"U8","shape":[2],"data_offsets":[0,2]},"b":{"dtype":"U8","shape":[2],"data_offsets":[1,3]}})", 3),
                   "overlaps");
  EXPECT_ERROR_HAS(header_error(R"({"a":{"dtype":"U8","shape":[2],"data_offsets":[0,2]},"b":{"dtype":"U8","shape":[2],"data_offsets":[0,2]}})", 2),
                   "overlaps");
}

TEST(Safetensors, SizeMismatchWithFile) {
  std::string h = R"({"w":{"dtype":"U8","shape":[4],"data_offsets":[0,4]}})";
  EXPECT_ERROR_HAS(header_error(h, 3), "truncated");
  EXPECT_ERROR_HAS(header_error(h, 5), "trailing bytes");
}

TEST(Safetensors, ByteSpanDisagreesWithShape) {
  EXPECT_ERROR_HAS(header_error(R"({"w":{"dtype":"F32","shape":[2],"data_offsets":[0,4]}})", 4), "needs 8");
}

TEST(Safetensors, ZeroSizeAndScalarAccepted) {
  std::string h = R"({"e":{"dtype":"F32","shape":[0,4],"data_offsets":[0,0]},"s":{"dtype":"F32","shape":[],"data_offsets":[0,4]},)"
                  R"("z":{"dtype":"U8","shape":[3,0],"data_offsets":[4,4]}})";
  EXPECT_EQ(header_error(h, 4), "");
}

TEST(Safetensors, NotARegularFile) {
  TempDir t;
  auto r = SafetensorsFile::open(t.path());
  ASSERT_FALSE(r.ok());
  EXPECT_ERROR_HAS(r.error().message(), "not a regular file");
  std::string fifo = t / "fifo";
  ASSERT_EQ(::mkfifo(fifo.c_str(), 0600), 0);
  auto rf = SafetensorsFile::open(fifo);  // must not block waiting for a writer
  ASSERT_FALSE(rf.ok());
  EXPECT_ERROR_HAS(rf.error().message(), "not a regular file");
  auto r2 = SafetensorsFile::open("/dev/zero");
  ASSERT_FALSE(r2.ok());
  EXPECT_ERROR_HAS(r2.error().message(), "not a regular file");
}

TEST(Safetensors, ErrorsNameTheFile) {
  TempDir t;
  std::string p = t / "model-00002-of-00002.safetensors";
  dsv3::test::write_file(p, file_bytes(R"({"w":{"dtype":"F32","shape":[2],"data_offsets":[0,4]}})", 4));
  auto r = SafetensorsFile::open(p);
  ASSERT_FALSE(r.ok());
  EXPECT_ERROR_HAS(r.error().message(), "model-00002-of-00002.safetensors");
  EXPECT_ERROR_HAS(r.error().message(), "'w'");
}

TEST(Safetensors, HeaderWriterRoundTrips) {
  std::vector<uint64_t> offsets;
  std::string h = make_safetensors_header({{"a", DType::BF16, {3, 5}}, {"b", DType::F8_E4M3, {7}}}, {{"format", "pt"}}, &offsets);
  EXPECT_EQ(h.size() % 8, 0u);
  ASSERT_EQ(offsets.size(), 3u);
  EXPECT_EQ(offsets[2], 37u);
  std::map<std::string, std::string> md;
  auto r = SafetensorsFile::parse_header(h, 37, &md);
  ASSERT_TRUE(r.ok()) << r.error().message();
  EXPECT_EQ(md["format"], "pt");
}
