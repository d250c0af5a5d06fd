#include <gtest/gtest.h>

#include "base/json.h"

using namespace dsv3;

TEST(Json, ParsesObjectAndReportsLineColumn) {
  auto ok = parse_json(R"({"a": 1, "b": [1, 2]})", "x.json");
  ASSERT_TRUE(ok.ok());
  EXPECT_EQ((*ok)["a"], 1);
  auto bad = parse_json("{\n  \"a\": 1,\n  \"b\": }", "x.json");
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(bad.error().message().find("x.json"), std::string::npos);
  EXPECT_NE(bad.error().message().find("line 3"), std::string::npos) << bad.error().message();
}

TEST(Json, RejectsDeepNestingWithoutRecursing) {
  std::string deep(100000, '[');
  auto r = parse_json(deep, "deep.json");
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.error().message().find("nested deeper"), std::string::npos);
}

TEST(Json, DepthScanIgnoresBracketsInStrings) {
  EXPECT_EQ(json_nesting_depth(R"({"a": "[[[[[[", "b": [1]})", 100), 2);
  EXPECT_EQ(json_nesting_depth(R"({"a": "\"[[[", "b": {}})", 100), 2);
}

TEST(Json, RejectsDuplicateKeysAtAnyDepth) {
  EXPECT_FALSE(parse_json(R"({"a": 1, "a": 2})", "d").ok());
  EXPECT_FALSE(parse_json(R"({"x": {"a": 1, "a": 2}})", "d").ok());
  EXPECT_TRUE(parse_json(R"({"x": {"a": 1}, "y": {"a": 2}})", "d").ok());
  EXPECT_TRUE(parse_json(R"({"a": 1, "a": 2})", "d", JsonLimits{128, false}).ok());
}

TEST(Json, Utf8Validation) {
  EXPECT_FALSE(find_invalid_utf8("plain ascii").has_value());
  EXPECT_FALSE(find_invalid_utf8("\xe4\xb8\xad\xf0\x9f\x98\x80").has_value());
  EXPECT_EQ(find_invalid_utf8("ab\xff").value(), 2u);
  EXPECT_EQ(find_invalid_utf8("a\xc0\x80").value(), 1u);          // overlong NUL
  EXPECT_EQ(find_invalid_utf8("\xed\xa0\x80").value(), 0u);       // surrogate
  EXPECT_EQ(find_invalid_utf8("\xf4\x90\x80\x80").value(), 0u);   // > U+10FFFF
  EXPECT_EQ(find_invalid_utf8("x\xe4\xb8").value(), 1u);          // truncated
}

TEST(Json, TypedFieldsNameTheField) {
  auto j = parse_json(R"({"n": "seven", "f": 1.5, "i": 3})", "c").value();
  auto n = json_int(j, "n");
  ASSERT_FALSE(n.ok());
  EXPECT_NE(n.error().message().find("'n'"), std::string::npos);
  EXPECT_FALSE(json_int(j, "f").ok());
  EXPECT_EQ(json_int(j, "i").value(), 3);
  auto missing = json_int(j, "zz");
  ASSERT_FALSE(missing.ok());
  EXPECT_NE(missing.error().message().find("'zz'"), std::string::npos);
}
