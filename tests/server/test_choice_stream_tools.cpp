// Tool calls through a choice's whole text pipeline: recorded DeepSeek outputs tokenized with
// the real tokenizer (each marker is one added token) and fed one token at a time, as the
// engine emits them.

#include <gtest/gtest.h>

#include "server/choice_stream.h"
#include "server_fixture.h"
#include "tokenizer/tokenizer.h"

using namespace dsv3;
using namespace dsv3::server;

namespace {

// A stream's tool-call pieces joined as a client joins them: by index, the first piece's
// id and name, the arguments concatenated.
Json reassemble(const Json& pieces) {
  Json calls = Json::array();
  for (const Json& p : pieces) {
    const size_t i = p["index"].get<size_t>();
    if (i == calls.size()) {
      EXPECT_TRUE(p.contains("id") && p["function"].contains("name")) << "a call opens with its id and name: " << p.dump();
      calls.push_back(p);
      continue;
    }
    EXPECT_LT(i, calls.size());
    if (i >= calls.size()) continue;
    EXPECT_FALSE(p.contains("id")) << p.dump();
    calls[i]["function"]["arguments"] =
        calls[i]["function"]["arguments"].get<std::string>() + p["function"]["arguments"].get<std::string>();
  }
  return calls;
}

ChoiceDelta stream_tokens(ChoiceStream& s, const std::vector<int32_t>& ids, std::vector<ChoiceDelta>* deltas) {
  ChoiceDelta all;
  for (int32_t id : ids) {
    ChoiceDelta d = s.push({TokenOutput{id, 0.0f, {}}});
    all.append(d);
    if (deltas) deltas->push_back(d);
  }
  all.append(s.finish());
  return all;
}

}  // namespace

TEST(ChoiceStreamTools, RecordedOutputsOfBothFormatsBecomeToolCalls) {
  const Tokenizer& tok = test::v3_tokenizer();
  const std::string v31 =
      "Let me look.<｜tool▁calls▁begin｜><｜tool▁call▁begin｜>get_weather<｜tool▁sep｜>{\"city\": \"東京\"}"
      "<｜tool▁call▁end｜><｜tool▁call▁begin｜>get_time<｜tool▁sep｜>{}<｜tool▁call▁end｜><｜tool▁calls▁end｜>";
  const std::string v3 =
      "Let me look.<｜tool▁calls▁begin｜><｜tool▁call▁begin｜>function<｜tool▁sep｜>get_weather\n```json\n"
      "{\"city\": \"東京\"}\n```<｜tool▁call▁end｜>\n<｜tool▁call▁begin｜>function<｜tool▁sep｜>get_time\n```json\n{}\n```"
      "<｜tool▁call▁end｜><｜tool▁calls▁end｜>";
  for (const std::string& text : {v31, v3}) {
    std::vector<int32_t> ids = tok.encode(text, /*add_bos=*/false);
    ids.push_back(*tok.eos_id());
    ChoiceStream s(tok, {}, /*reasoning=*/true, /*in_reasoning=*/false, /*want_logprobs=*/false, /*tool_calls=*/true);
    std::vector<ChoiceDelta> deltas;
    ChoiceDelta all = stream_tokens(s, ids, &deltas);
    EXPECT_EQ(all.content, "Let me look.") << text;
    const Json calls = s.tool_calls();
    ASSERT_EQ(calls.size(), 2u) << text;
    EXPECT_EQ(calls[0]["function"]["name"], "get_weather");
    EXPECT_EQ(calls[0]["function"]["arguments"], R"({"city": "東京"})");
    EXPECT_EQ(calls[1]["function"]["name"], "get_time");
    EXPECT_EQ(calls[1]["index"], 1);
    EXPECT_NE(calls[0]["id"], calls[1]["id"]);
    EXPECT_EQ(reassemble(all.tool_calls), calls) << all.tool_calls.dump();
    // The arguments stream in pieces as they are generated, not at the call's end.
    EXPECT_GE(all.tool_calls.size(), 5u) << all.tool_calls.dump();
    // The first call comes out before the second is generated.
    size_t first_call_delta = deltas.size(), second_call_delta = 0;
    for (size_t i = 0; i < deltas.size(); ++i)
      for (const Json& c : deltas[i].tool_calls) (c["index"] == 0 ? first_call_delta : second_call_delta) = i;
    EXPECT_LT(first_call_delta, second_call_delta);
  }
}

TEST(ChoiceStreamTools, MalformedCallsAreTextAndWithoutToolsTheMarkupIsContent) {
  const Tokenizer& tok = test::v3_tokenizer();
  const std::string bad = "<｜tool▁calls▁begin｜><｜tool▁call▁begin｜>f<｜tool▁sep｜>{oops<｜tool▁call▁end｜><｜tool▁calls▁end｜>";
  const std::vector<int32_t> ids = tok.encode(bad, false);
  ChoiceStream with_tools(tok, {}, true, false, false, true);
  ChoiceDelta a = stream_tokens(with_tools, ids, nullptr);
  EXPECT_TRUE(with_tools.tool_calls().empty());
  EXPECT_EQ(a.content, "<｜tool▁call▁begin｜>f<｜tool▁sep｜>{oops<｜tool▁call▁end｜>");
  ChoiceStream without(tok, {}, true, false, false, false);
  ChoiceDelta b = stream_tokens(without, ids, nullptr);
  EXPECT_TRUE(b.tool_calls.empty());
  EXPECT_EQ(b.content, bad);  // a request without tools gets the text as generated
}
