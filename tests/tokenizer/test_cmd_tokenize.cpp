// The dsv3 tokenize command: output format, exit codes, and the invalid-UTF-8 rule (an
// error naming the byte offset).

#include <gtest/gtest.h>

#include "tokenizer_test_util.h"

using namespace dsv3;
using namespace dsv3::test;

namespace {
std::string model_arg() { return "--model " + tokenizer_dir(); }
}  // namespace

TEST(CmdTokenize, Text) {
  auto r = run_dsv3("tokenize " + model_arg() + " --text 'Hello, world!'");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  auto j = Json::parse(r.out);
  EXPECT_EQ(j["ids"], Json(v3_tokenizer().encode("Hello, world!")));
  r = run_dsv3("tokenize " + model_arg() + " --text 'Hello' --add-bos");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(Json::parse(r.out)["ids"][0], 0);
}

TEST(CmdTokenize, TextFileAndInvalidUtf8) {
  TempDir dir;
  write_file(dir / "ok.txt", "caf\xc3\xa9\n\xe4\xbd\xa0\xe5\xa5\xbd");
  auto r = run_dsv3("tokenize " + model_arg() + " --text-file " + (dir / "ok.txt"));
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(Json::parse(r.out)["ids"], Json(v3_tokenizer().encode("caf\xc3\xa9\n\xe4\xbd\xa0\xe5\xa5\xbd")));
  write_file(dir / "bad.txt", "abc\xe4\xbd");  // truncated character at offset 3
  r = run_dsv3("tokenize " + model_arg() + " --text-file " + (dir / "bad.txt"));
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_NE(r.err.find("dsv3 tokenize: error:"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("invalid UTF-8 at byte offset 3"), std::string::npos) << r.err;
  EXPECT_TRUE(r.out.empty());
}

TEST(CmdTokenize, Chat) {
  TempDir dir;
  write_file(dir / "m.json", R"({"messages": [{"role": "system", "content": "S"}, {"role": "user", "content": "Hi"}]})");
  auto r = run_dsv3("tokenize " + model_arg() + " --chat " + (dir / "m.json") + " --add-bos");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  auto j = Json::parse(r.out);
  std::string text = j["text"];
  EXPECT_EQ(text.rfind("<\xef\xbd\x9c" "begin", 0), 0u);
  EXPECT_NE(text.find("<\xef\xbd\x9c" "Assistant\xef\xbd\x9c>"), std::string::npos);  // generation prompt by default
  EXPECT_EQ(j["ids"], Json(v3_tokenizer().encode(text)));  // one BOS only
  write_file(dir / "bad.json", R"({"messages": 5})");
  r = run_dsv3("tokenize " + model_arg() + " --chat " + (dir / "bad.json"));
  EXPECT_EQ(r.exit_code, 1);
  write_file(dir / "undef.json", R"([{"role": "user"}])");  // content missing: template error
  r = run_dsv3("tokenize " + model_arg() + " --chat " + (dir / "undef.json"));
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_NE(r.err.find("chat template line"), std::string::npos) << r.err;
}

TEST(CmdTokenize, UsageAndModelErrors) {
  EXPECT_EQ(run_dsv3("tokenize " + model_arg()).exit_code, 2);
  EXPECT_EQ(run_dsv3("tokenize --text x").exit_code, 2);
  EXPECT_EQ(run_dsv3("tokenize " + model_arg() + " --text a --text-file b").exit_code, 2);
  auto r = run_dsv3("tokenize --model /nonexistent --text x");
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_NE(r.err.find("/nonexistent/tokenizer.json"), std::string::npos);
}
