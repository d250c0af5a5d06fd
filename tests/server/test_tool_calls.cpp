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
    for (auto& piece : d.pieces) all.pieces.push_back(std::move(piece));
  };
  for (const auto& piece : pieces) add(p.push(piece));
  add(p.flush());
  return all;
}

// The stream's pieces joined as a client joins them: by call, the first piece naming it.
std::vector<ParsedToolCall> join_pieces(const std::vector<ToolCallPiece>& pieces) {
  std::vector<ParsedToolCall> calls;
  for (const ToolCallPiece& p : pieces) {
    if (p.call == calls.size()) {
      EXPECT_TRUE(p.opens) << "a call's first piece names it";
      calls.push_back({p.name, p.arguments});
      continue;
    }
    EXPECT_EQ(p.call + 1, calls.size()) << "pieces of one call at a time";
    EXPECT_FALSE(p.opens);
    if (p.call < calls.size()) calls[p.call].arguments += p.arguments;
  }
  return calls;
}

void expect_case(const Case& c, const ToolCallDelta& got, const std::string& how) {
  EXPECT_EQ(got.content, c.content) << c.name << " " << how;
  // Streamed, the well-formed calls join to the same calls, in order; a malformed call may
  // have had pieces before it was found malformed (the stream cannot take them back).
  const std::vector<ParsedToolCall> joined = join_pieces(got.pieces);
  size_t next = 0;
  for (const ParsedToolCall& j : joined)
    if (next < c.calls.size() && j.name == c.calls[next].first && j.arguments == c.calls[next].second) ++next;
  EXPECT_EQ(next, c.calls.size()) << c.name << " " << how << ": the streamed calls miss one";
  if (c.content.find(kCallBegin) == std::string::npos)
    EXPECT_EQ(joined.size(), c.calls.size()) << c.name << " " << how;
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

TEST(ToolCallParser, ArgumentsStreamInPiecesAsTheyAreWritten) {
  // V3.1: the name once the separator arrives, then the arguments as they come.
  ToolCallParser p;
  ToolCallDelta a = p.push(kCallsBegin + kCallBegin + "get_weather");
  EXPECT_TRUE(a.pieces.empty()) << "the name may go on";
  ToolCallDelta b = p.push(kSep + R"({"city": )");
  ASSERT_EQ(b.pieces.size(), 2u);
  EXPECT_TRUE(b.pieces[0].opens);
  EXPECT_EQ(b.pieces[0].name, "get_weather");
  EXPECT_EQ(b.pieces[0].arguments, "");
  EXPECT_EQ(b.pieces[1].arguments, R"({"city":)") << "trailing whitespace waits for what follows it";
  ToolCallDelta c = p.push(R"("Paris"} )");
  ASSERT_EQ(c.pieces.size(), 1u);
  EXPECT_EQ(c.pieces[0].arguments, R"( "Paris"})");
  ToolCallDelta d = p.push(kCallEnd + kCallsEnd);
  EXPECT_TRUE(d.pieces.empty()) << "nothing left to send";
  ASSERT_EQ(d.calls.size(), 1u);
  EXPECT_EQ(d.calls[0].arguments, R"({"city": "Paris"})");

  // V3 / R1: the name once its line ends and the fence opens; the closing fence is held back.
  ToolCallParser q;
  ToolCallDelta e = q.push(kCallsBegin + kCallBegin + "function" + kSep + "f\n```json\n{\"a\": 1}\n`");
  ASSERT_EQ(e.pieces.size(), 2u);
  EXPECT_EQ(e.pieces[0].name, "f");
  EXPECT_EQ(e.pieces[1].arguments, R"({"a": 1})");
  ToolCallDelta f = q.push("``" + kCallEnd);
  EXPECT_TRUE(f.pieces.empty());
  ASSERT_EQ(f.calls.size(), 1u);
  EXPECT_EQ(f.calls[0].arguments, R"({"a": 1})");
}
