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

// The split of whole outputs, fed in every two-piece cut and byte by byte: the result must
// not depend on where the detokenizer's pieces fall.
TEST(ReasoningSplitter, TableOfOutputsAtEveryCut) {
  struct Case {
    bool opened_by_prompt;
    std::string output, reasoning, content;
  };
  const std::vector<Case> cases = {
      // R1-0528 / V3.1 thinking: the prompt ends in <think>, the output has only </think>.
      {true, "Let me see.\n</think>\n\nThe answer.", "Let me see.\n", "The answer."},
      // R1 models that repeat the prompt's <think> anyway.
      {true, "<think>\nLet me see.</think>Answer", "\nLet me see.", "Answer"},
      {true, "\n<think>x</think>\n\ny", "x", "y"},
      // The prompt opened none: a think block only at the very start.
      {false, "<think>r</think>\n\nc", "r", "c"},
      {false, "  <think>r</think>c", "r", "c"},
      {false, "c <think>not reasoning</think>", "", "c <think>not reasoning</think>"},
      {false, "</think>c", "", "</think>c"},
      // Reasoning cut off by max_tokens: all of it is reasoning, no content.
      {true, "still going </thi", "still going </thi", ""},
      {true, "", "", ""},
      {true, "\n\n", "\n\n", ""},
      {true, "</think>", "", ""},
      {true, "<thin", "<thin", ""},
      // A second </think> belongs to the answer.
      {true, "a</think>b</think>c", "a", "b</think>c"},
      {true, "思考</think>答え", "思考", "答え"},
  };
  auto run = [](const Case& c, const std::vector<std::string>& pieces) {
    ReasoningSplitter s(c.opened_by_prompt);
    SplitText all;
    for (const auto& p : pieces) {
      SplitText t = s.push(p);
      all.reasoning += t.reasoning;
      all.content += t.content;
    }
    SplitText t = s.flush();
    all.reasoning += t.reasoning;
    all.content += t.content;
    return all;
  };
  for (const Case& c : cases) {
    for (size_t cut = 0; cut <= c.output.size(); ++cut) {
      SplitText got = run(c, {c.output.substr(0, cut), c.output.substr(cut)});
      EXPECT_EQ(got.reasoning, c.reasoning) << c.output << " cut at " << cut;
      EXPECT_EQ(got.content, c.content) << c.output << " cut at " << cut;
    }
    std::vector<std::string> bytes;
    for (char ch : c.output) bytes.emplace_back(1, ch);
    SplitText got = run(c, bytes);
    EXPECT_EQ(got.reasoning, c.reasoning) << c.output << " byte by byte";
    EXPECT_EQ(got.content, c.content) << c.output << " byte by byte";
  }
}
