// The JSON matcher on hand-written texts: JSON's grammar (RFC 8259) and the schema keywords.
// tests/grammar/test_schema_cases.cpp checks it against an independent validator's verdicts.

#include <gtest/gtest.h>

#include "grammar/json_matcher.h"

namespace dsv3::grammar {
namespace {

Schema compile(const char* text) {
  auto s = compile_json_schema(Json::parse(text));
  EXPECT_TRUE(s.ok()) << s.error().message();
  return s.ok() ? *s : any_json_schema();
}

// True when the matcher accepts every byte of `text` and the text is a complete value.
bool accepts(const Schema& schema, std::string_view text) {
  JsonMatcher m(schema);
  return m.advance(text) && m.complete();
}
// True when the matcher accepts `text` as the beginning of a value.
bool accepts_prefix(const Schema& schema, std::string_view text) {
  JsonMatcher m(schema);
  return m.advance(text);
}

TEST(JsonMatcher, AnyJson) {
  const Schema any = any_json_schema();
  for (const char* ok : {"{}", "[]", "0", "-0", "1.5e+3", "12", "true", "false", "null", "\"\"", "\"a\\n\\u00e9\"",
                         "{\"a\": [1, 2, {\"b\": null}], \"c\": \"\xC3\xA9\"}", " [ 1 , 2 ]", "\"\xF0\x9F\x98\x80\""})
    EXPECT_TRUE(accepts(any, ok)) << ok;
  for (const char* bad : {"{", "[1,]", "{\"a\":1,}", "01", "-", "1.", "1e", "tru", "nul", "\"\\x\"", "{a:1}", "[1 2]",
                          "\"\x01\"", "\"\xC0\xAF\"", "\"\xED\xA0\x80\"", "\"\\ud800\"", "{} ", "[] x", "+1", ".5"})
    EXPECT_FALSE(accepts(any, bad)) << bad;
  EXPECT_TRUE(accepts_prefix(any, "{\"a\": \"\xE2\x82"));  // a character cut by a token edge
  EXPECT_FALSE(accepts_prefix(any, "{\"a\": \"\xE2\x28"));
}

TEST(JsonMatcher, ObjectWithSchema) {
  const Schema s = compile(R"({"type": "object", "properties": {"name": {"type": "string", "maxLength": 3},
      "age": {"type": "integer"}, "tags": {"type": "array", "items": {"enum": ["a", "bc"]}, "maxItems": 2}},
      "required": ["name", "age"], "additionalProperties": false})");
  EXPECT_TRUE(accepts(s, R"({"name": "Bob", "age": 42})"));
  EXPECT_TRUE(accepts(s, R"({"age": -1, "name": "", "tags": ["bc", "a"]})"));
  EXPECT_FALSE(accepts(s, R"({"name": "Bobby", "age": 42})"));       // maxLength
  EXPECT_FALSE(accepts(s, R"({"name": "Bo"})"));                     // required
  EXPECT_FALSE(accepts(s, R"({"name": "Bo", "age": 1.5})"));         // integer
  EXPECT_FALSE(accepts(s, R"({"name": "Bo", "age": 1, "x": 1})"));   // additionalProperties
  EXPECT_FALSE(accepts(s, R"({"name": "Bo", "name": "Al", "age": 1})"));  // a key twice
  EXPECT_FALSE(accepts(s, R"({"name": "Bo", "age": 1, "tags": ["a", "a", "a"]})"));  // maxItems
  EXPECT_FALSE(accepts(s, R"({"name": "Bo", "age": 1, "tags": ["b"]})"));  // enum
  EXPECT_FALSE(accepts_prefix(s, R"({"nam ")"));
  EXPECT_FALSE(accepts_prefix(s, "[")) << "an array where an object is required";
}

TEST(JsonMatcher, AnyOfRefAndLiterals) {
  const Schema s = compile(R"({"$defs": {"node": {"type": "object", "properties": {
      "value": {"anyOf": [{"type": "integer"}, {"type": "string"}, {"type": "null"}]},
      "next": {"$ref": "#/$defs/node"}}, "required": ["value"], "additionalProperties": false}},
      "$ref": "#/$defs/node"})");
  EXPECT_TRUE(accepts(s, R"({"value": 1, "next": {"value": "x", "next": {"value": null}}})"));
  EXPECT_FALSE(accepts(s, R"({"value": 1, "next": {"value": true}})"));
  const Schema e = compile(R"({"enum": [1, 12, "x", {"a": 1}]})");
  for (const char* ok : {"1", "12", "\"x\"", "{\"a\":1}"}) EXPECT_TRUE(accepts(e, ok)) << ok;
  for (const char* bad : {"2", "123", "\"y\"", "{\"a\":2}"}) EXPECT_FALSE(accepts(e, bad)) << bad;
}

TEST(JsonMatcher, OpenObjectsUseAdditionalSchema) {
  const Schema s = compile(R"({"type": "object", "properties": {"a": {"type": "integer"}},
      "additionalProperties": {"type": "string"}})");
  EXPECT_TRUE(accepts(s, R"({"a": 1, "ab": "x", "b": "y"})"));
  EXPECT_FALSE(accepts(s, R"({"b": 1})"));
  EXPECT_FALSE(accepts(s, R"({"a": "x"})"));
}

TEST(JsonSchema, UnsupportedKeywordsNameTheirPath) {
  auto r = compile_json_schema(Json::parse(R"({"type": "object", "properties": {"age": {"type": "integer",
      "minimum": 0}}})"), "response_format.json_schema.schema");
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().message(), "response_format.json_schema.schema.properties.age: unsupported keyword 'minimum'");
  EXPECT_FALSE(compile_json_schema(Json::parse(R"({"type": "objekt"})")).ok());
  EXPECT_FALSE(compile_json_schema(Json::parse(R"({"$ref": "http://example.com/s.json"})")).ok());
  EXPECT_FALSE(compile_json_schema(Json::parse(R"({"required": ["a"]})")).ok());
}

}  // namespace
}  // namespace dsv3::grammar
