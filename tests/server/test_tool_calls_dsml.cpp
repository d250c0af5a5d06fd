// DSML tool calls (DeepSeek-V3.2) -> OpenAI tool_calls, against completion texts and parsed
// messages made by DeepSeek's own encoder (tests/fixtures/tokenizer/dsv32/cases.jsonl).

#include <gtest/gtest.h>

#include <fstream>

#include "base/json.h"
#include "server/tool_calls.h"
#include "test_util.h"

using namespace dsv3;
using namespace dsv3::server;

namespace {

// Feeds `text` to a parser in pieces of `piece` bytes (streaming), then flushes.
ToolCallDelta run(const std::string& text, size_t piece) {
  ToolCallParser p;
  ToolCallDelta all;
  auto add = [&](ToolCallDelta d) {
    all.content += d.content;
    for (auto& c : d.calls) all.calls.push_back(std::move(c));
  };
  for (size_t i = 0; i < text.size(); i += piece) add(p.push(text.substr(i, piece)));
  add(p.flush());
  return all;
}

}  // namespace

TEST(DsmlToolCalls, MatchDeepSeeksParser) {
  std::ifstream f(test::fixtures() + "/tokenizer/dsv32/cases.jsonl");
  int n = 0;
  for (std::string line; std::getline(f, line);) {
    OrderedJson c = parse_ordered_json(line, "case").value();
    if (c["kind"] != "parse") continue;
    ++n;
    // What reaches the parser: the answer after the reasoning, without the end-of-sentence token.
    std::string text = c["text"].get<std::string>();
    const std::string eos = "<｜end▁of▁sentence｜>", think_end = "</think>";
    if (c["thinking_mode"] == "thinking") text = text.substr(text.find(think_end) + think_end.size());
    ASSERT_EQ(text.substr(text.size() - eos.size()), eos);
    text.resize(text.size() - eos.size());
    const OrderedJson& want = c["message"];
    for (size_t piece : {size_t{1}, size_t{7}, text.size()}) {
      ToolCallDelta got = run(text, piece);
      EXPECT_EQ(got.content, want["content"].get<std::string>()) << c["name"] << " piece " << piece;
      ASSERT_EQ(got.calls.size(), want["tool_calls"].size()) << c["name"] << " piece " << piece;
      for (size_t k = 0; k < got.calls.size(); ++k) {
        EXPECT_EQ(got.calls[k].name, want["tool_calls"][k]["function"]["name"].get<std::string>()) << c["name"];
        EXPECT_EQ(got.calls[k].arguments, want["tool_calls"][k]["function"]["arguments"].get<std::string>()) << c["name"];
      }
    }
  }
  EXPECT_GE(n, 4);
}

TEST(DsmlToolCalls, MalformedBlocksStayText) {
  const std::string open = "\n\n<｜DSML｜function_calls>\n", close = "</｜DSML｜function_calls>";
  const std::string inv = "<｜DSML｜invoke name=\"f\">\n";
  for (const std::string& body : {
           std::string(""),  // no call
           inv + "<｜DSML｜parameter name=\"a\" string=\"false\">not json</｜DSML｜parameter>\n</｜DSML｜invoke>\n",
           inv + "<｜DSML｜parameter name=\"a\" string=\"true\">1</｜DSML｜parameter>\n"
                 "<｜DSML｜parameter name=\"a\" string=\"true\">2</｜DSML｜parameter>\n</｜DSML｜invoke>\n",  // duplicate
           inv + "<｜DSML｜parameter name=\"a\" string=\"maybe\">1</｜DSML｜parameter>\n</｜DSML｜invoke>\n",
       }) {
    const std::string text = "Hi" + open + body + close;
    ToolCallDelta got = run(text, 5);
    EXPECT_TRUE(got.calls.empty()) << body;
    EXPECT_EQ(got.content, text) << body;
  }
  // never closed: text at the end
  ToolCallDelta got = run("Hi" + open + inv, 4);
  EXPECT_TRUE(got.calls.empty());
  EXPECT_EQ(got.content, "Hi" + open + inv);
}

TEST(DsmlToolCalls, ArgumentsAreJsonAsDeepSeekWritesThem) {
  std::vector<ParsedToolCall> calls;
  ASSERT_TRUE(parse_dsml_block("\n<｜DSML｜invoke name=\"f\">\n<｜DSML｜parameter name=\"q\" string=\"true\">a\"b\\c\n\t\x01é</｜DSML｜parameter>\n"
                               "<｜DSML｜parameter name=\"n\" string=\"false\">[1, 2]</｜DSML｜parameter>\n</｜DSML｜invoke>\n"
                               "<｜DSML｜invoke name=\"g\">\n</｜DSML｜invoke>\n",
                               &calls));
  ASSERT_EQ(calls.size(), 2u);
  EXPECT_EQ(calls[0].arguments, "{\"q\": \"a\\\"b\\\\c\\n\\t\\u0001é\", \"n\": [1, 2]}");
  EXPECT_EQ(calls[1].name, "g");
  EXPECT_EQ(calls[1].arguments, "{}");
}
