// Stop strings across piece boundaries never leak; reasoning splitting.

#include <gtest/gtest.h>

#include "server/text_stream.h"

using namespace dsv3::server;

namespace {
// Feeds pieces, returns (emitted text, stopped).
std::pair<std::string, bool> run(const std::vector<std::string>& stops, const std::vector<std::string>& pieces) {
  StopMatcher m(stops);
  std::string out;
  for (const auto& p : pieces) {
    out += m.push(p);
    if (m.stopped()) break;
  }
  out += m.flush();
  return {out, m.stopped()};
}
}  // namespace

TEST(StopMatcher, SplitAcrossPieces) {
  EXPECT_EQ(run({"END"}, {"hello E", "N", "D more"}), std::make_pair(std::string("hello "), true));
  EXPECT_EQ(run({"END"}, {"hello E", "NX"}), std::make_pair(std::string("hello ENX"), false));
  EXPECT_EQ(run({"\n\n"}, {"a\n", "\nb"}), std::make_pair(std::string("a"), true));
  EXPECT_EQ(run({"op", "stop"}, {"xsto", "p"}), std::make_pair(std::string("x"), true));  // earliest match wins
  EXPECT_EQ(run({"abc"}, {"ab"}), std::make_pair(std::string("ab"), false));                 // held text flushed
  EXPECT_EQ(run({"END"}, {"END"}), std::make_pair(std::string(""), true));                   // stop as first output
}

TEST(StopMatcher, PrefixNeverEmittedBeforeDecided) {
  StopMatcher m({"<|end|>"});
  EXPECT_EQ(m.push("text <|"), "text ");
  EXPECT_EQ(m.push("en"), "");
  EXPECT_EQ(m.push("d|> tail"), "");
  EXPECT_TRUE(m.stopped());
}

TEST(StopMatcher, MultibyteStop) {
  // "。" is 3 bytes; pieces split inside it.
  EXPECT_EQ(run({"。"}, {"你好\xe3", "\x80", "\x82后"}), std::make_pair(std::string("你好"), true));
}

TEST(ReasoningSplitter, OpenedByTemplate) {
  ReasoningSplitter s(true);
  SplitText a = s.push("Let me think</th");
  SplitText b = s.push("ink>\n\nThe answer");
  SplitText c = s.flush();
  EXPECT_EQ(a.reasoning + b.reasoning + c.reasoning, "Let me think");
  EXPECT_EQ(a.content + b.content + c.content, "The answer");
  EXPECT_EQ(a.reasoning, "Let me think");  // "</th" held back, not leaked into reasoning
}

TEST(ReasoningSplitter, ThinkAtStartOfOutput) {
  ReasoningSplitter s(false);
  SplitText a = s.push("<thi");
  SplitText b = s.push("nk>\nhmm</think>ok");
  EXPECT_EQ(a.reasoning + a.content, "");
  EXPECT_EQ(b.reasoning, "\nhmm");
  EXPECT_EQ(b.content, "ok");
}

TEST(ReasoningSplitter, PlainContentUntouched) {
  ReasoningSplitter s(false);
  std::string all;
  for (const char* p : {"  ", "<b>bold</b>", " and <think> later"}) {
    SplitText t = s.push(p);
    EXPECT_EQ(t.reasoning, "");
    all += t.content;
  }
  all += s.flush().content;
  EXPECT_EQ(all, "  <b>bold</b> and <think> later");
}

TEST(ReasoningSplitter, UnfinishedReasoningFlushes) {
  ReasoningSplitter s(true);
  SplitText a = s.push("still thinking </thi");
  SplitText b = s.flush();
  EXPECT_EQ(a.reasoning + b.reasoning, "still thinking </thi");
}
