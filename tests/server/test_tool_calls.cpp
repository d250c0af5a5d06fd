// The tool-call parser on recorded outputs of both DeepSeek formats, written from the chat
// templates (V3/R1: tokenizer_config.json of DeepSeek-V3; V3.1: its template in
// tests/tokenizer/data/jinja_cases.jsonl): whole, cut at every byte, malformed, unfinished
// and interleaved with text.

#include <gtest/gtest.h>

#include "server/tool_calls.h"

using namespace dsv3::server;

namespace {

const std::string kCallsBegin = "<｜tool▁calls▁begin｜>";
const std::string kCallsEnd = "<｜tool▁calls▁end｜>";
const std::string kCallBegin = "<｜tool▁call▁begin｜>";
const std::string kCallEnd = "<｜tool▁call▁end｜>";
const std::string kSep = "<｜tool▁sep｜>";

std::string v3_call(const std::string& name, const std::string& args) {
  return kCallBegin + "function" + kSep + name + "\n```json\n" + args + "\n```" + kCallEnd;
}
std::string v31_call(const std::string& name, const std::string& args) {
  return kCallBegin + name + kSep + args + kCallEnd;
}

struct Case {
  const char* name;
  std::string output;
  std::string content;
  std::vector<std::pair<std::string, std::string>> calls;  // name, arguments
};

ToolCallDelta run(const std::vector<std::string>& pieces) {
  ToolCallParser p;
  ToolCallDelta all;
  auto add = [&](ToolCallDelta d) {
    all.content += d.content;
    for (auto& c : d.calls) all.calls.push_back(std::move(c));
  };
  for (const auto& piece : pieces) add(p.push(piece));
  add(p.flush());
  return all;
}

void expect_case(const Case& c, const ToolCallDelta& got, const std::string& how) {
  EXPECT_EQ(got.content, c.content) << c.name << " " << how;
  ASSERT_EQ(got.calls.size(), c.calls.size()) << c.name << " " << how;
  for (size_t i = 0; i < c.calls.size(); ++i) {
    EXPECT_EQ(got.calls[i].name, c.calls[i].first) << c.name << " " << how;
    EXPECT_EQ(got.calls[i].arguments, c.calls[i].second) << c.name << " " << how;
  }
}

}  // namespace

TEST(ToolCallParser, RecordedOutputsAtEveryCut) {
  const std::string bad_v3 = kCallBegin + "function" + kSep + "f\n```json\n{not json}\n```" + kCallEnd;
  const std::vector<Case> cases = {
      {"plain text", "The weather is fine.", "The weather is fine.", {}},
      {"V3 one call", kCallsBegin + v3_call("get_weather", R"({"city": "Paris"})") + kCallsEnd, "",
       {{"get_weather", R"({"city": "Paris"})"}}},
      {"V3 two calls, newline between (as the template writes them)",
       kCallsBegin + v3_call("get_weather", R"({"city": "Paris"})") + "\n" + v3_call("get_time", "{}") + kCallsEnd, "",
       {{"get_weather", R"({"city": "Paris"})"}, {"get_time", "{}"}}},
      {"V3.1 two calls", kCallsBegin + v31_call("get_weather", R"({"city": "Paris"})") + v31_call("get_time", "{}") + kCallsEnd,
       "", {{"get_weather", R"({"city": "Paris"})"}, {"get_time", "{}"}}},
      {"text before the calls", "Let me check." + kCallsBegin + v31_call("f", R"({"a": [1, 2]})") + kCallsEnd,
       "Let me check.", {{"f", R"({"a": [1, 2]})"}}},
      {"text after the calls", kCallsBegin + v31_call("f", "{}") + kCallsEnd + " done", " done", {{"f", "{}"}}},
      {"V3.1 bare call without the block marker", v31_call("f", R"({"x": "y"})"), "", {{"f", R"({"x": "y"})"}}},
      {"V3.1 function named 'function'", kCallsBegin + v31_call("function", "{}") + kCallsEnd, "", {{"function", "{}"}}},
      {"arguments holding marker-like text and unicode",
       kCallsBegin + v31_call("say", R"({"text": "```json <｜tool▁sep｜ 東京"})") + kCallsEnd, "",
       {{"say", R"({"text": "```json <｜tool▁sep｜ 東京"})"}}},
      {"malformed V3 arguments: text", kCallsBegin + bad_v3 + kCallsEnd, bad_v3, {}},
      {"malformed then good", kCallsBegin + v31_call("f", "[1]") + v31_call("g", "{}") + kCallsEnd, v31_call("f", "[1]"),
       {{"g", "{}"}}},
      {"no separator: text", kCallsBegin + kCallBegin + "f{}" + kCallEnd + kCallsEnd, kCallBegin + "f{}" + kCallEnd, {}},
      {"empty name: text", kCallsBegin + v31_call("", "{}") + kCallsEnd, v31_call("", "{}"), {}},
      {"unfinished call at the end: text", kCallsBegin + kCallBegin + "f" + kSep + R"({"a":)",
       kCallBegin + "f" + kSep + R"({"a":)", {}},
      {"a finished call, then one cut off", kCallsBegin + v31_call("f", "{}") + kCallBegin + "g" + kSep + "{",
       kCallBegin + "g" + kSep + "{", {{"f", "{}"}}},
      {"text inside the block: back to content", kCallsBegin + "oops " + v31_call("f", "{}"), "oops ", {{"f", "{}"}}},
      {"a marker's prefix at the end is text", "abc<｜tool▁ca", "abc<｜tool▁ca", {}},
      {"block opened and closed empty", "a" + kCallsBegin + kCallsEnd + "b", "ab", {}},
  };
  for (const Case& c : cases) {
    expect_case(c, run({c.output}), "whole");
    for (size_t cut = 1; cut < c.output.size(); ++cut)
      expect_case(c, run({c.output.substr(0, cut), c.output.substr(cut)}), "cut at " + std::to_string(cut));
    std::vector<std::string> bytes;
    for (char ch : c.output) bytes.emplace_back(1, ch);
    expect_case(c, run(bytes), "byte by byte");
  }
}

TEST(ToolCallParser, CallsArriveAsSoonAsTheyEnd) {
  // Streaming: the first call comes out with the piece that closes it, before the second
  // is written; text before the block comes out before the block is finished.
  ToolCallParser p;
  ToolCallDelta a = p.push("Checking. " + kCallsBegin + kCallBegin + "f" + kSep + "{}");
  EXPECT_EQ(a.content, "Checking. ");
  EXPECT_TRUE(a.calls.empty());
  ToolCallDelta b = p.push(kCallEnd + kCallBegin + "g");
  ASSERT_EQ(b.calls.size(), 1u);
  EXPECT_EQ(b.calls[0].name, "f");
  ToolCallDelta c = p.push(kSep + R"({"k": 1})" + kCallEnd + kCallsEnd);
  ASSERT_EQ(c.calls.size(), 1u);
  EXPECT_EQ(c.calls[0].name, "g");
  EXPECT_EQ(c.calls[0].arguments, R"({"k": 1})");
  EXPECT_EQ(p.flush().content, "");
}
