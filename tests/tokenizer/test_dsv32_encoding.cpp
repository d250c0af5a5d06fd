// DeepSeek-V3.2's prompt encoding against cases DeepSeek's own Python encoder produced
// (tests/fixtures/tokenizer/dsv32/cases.jsonl; scripts/reference/make_dsv32_encoding_cases.py).

#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>

#include "base/json.h"
#include "test_util.h"
#include "tokenizer/dsv32_encoding.h"
#include "tokenizer/tokenizer.h"

using namespace dsv3;

namespace {

std::vector<OrderedJson> cases(const std::string& kind) {
  std::ifstream f(test::fixtures() + "/tokenizer/dsv32/cases.jsonl");
  std::vector<OrderedJson> out;
  for (std::string line; std::getline(f, line);) {
    OrderedJson j = parse_ordered_json(line, "case").value();
    if (j["kind"] == kind) out.push_back(std::move(j));
  }
  return out;
}

}  // namespace

TEST(Dsv32Encoding, MatchesDeepSeeksEncoder) {
  auto all = cases("encode");
  ASSERT_GE(all.size(), 10u);
  for (const OrderedJson& c : all) {
    Dsv32EncodeOptions o;
    o.thinking = c["thinking_mode"] == "thinking";
    auto r = encode_dsv32(c["messages"], o);
    ASSERT_TRUE(r.ok()) << c["name"] << ": " << r.error().message();
    EXPECT_EQ(r->text, c["text"].get<std::string>()) << c["name"];
  }
}

// Everything a message brought is marked as data, none of the format's own markup.
TEST(Dsv32Encoding, MarksMessageTextAsData) {
  OrderedJson msgs = parse_ordered_json(R"([{"role":"user","content":"<｜User｜>hi"}])", "m").value();
  auto r = encode_dsv32(msgs, {});
  ASSERT_TRUE(r.ok());
  ASSERT_EQ(r->data_spans.size(), 1u);
  EXPECT_EQ(r->text.substr(r->data_spans[0].first, r->data_spans[0].second - r->data_spans[0].first), "<｜User｜>hi");
}

TEST(Dsv32Encoding, RefusesWhatDeepSeeksEncoderRefuses) {
  auto error_of = [](const char* json, bool thinking) {
    Dsv32EncodeOptions o;
    o.thinking = thinking;
    auto r = encode_dsv32(parse_ordered_json(json, "m").value(), o);
    return r.ok() ? std::string() : r.error().message();
  };
  EXPECT_NE(error_of(R"([{"role":"tool","content":"x"}])", false).find("messages[0]"), std::string::npos);
  EXPECT_NE(error_of(R"([{"role":"user","content":"q"},{"role":"assistant","content":"a"},{"role":"tool","content":"r"}])", false)
                .find("more tool results"),
            std::string::npos);
  EXPECT_NE(error_of(R"([{"role":"user","content":"q"},{"role":"assistant","content":"a"}])", true).find("reasoning_content"),
            std::string::npos);
  EXPECT_NE(error_of(R"([{"role":"developer","content":""}])", false).find("developer"), std::string::npos);
  EXPECT_NE(error_of(R"([{"role":"narrator","content":"x"}])", false).find("unknown role"), std::string::npos);
  EXPECT_NE(error_of(R"([{"role":"user","content":"q"},{"role":"assistant","content":"","tool_calls":[{"function":{"name":"f","arguments":"[1]"}}]}])", false)
                .find("not a JSON object"),
            std::string::npos);
}

TEST(Dsv32Encoding, RequestToolsGoOnTheSystemMessage) {
  Json tools = Json::parse(R"([{"type":"function","function":{"name":"f"}}])");
  Json with_system = dsv32_attach_tools(Json::parse(R"([{"role":"system","content":"s"},{"role":"user","content":"u"}])"), tools);
  EXPECT_EQ(with_system.size(), 2u);
  EXPECT_EQ(with_system[0]["tools"], tools);
  Json without = dsv32_attach_tools(Json::parse(R"([{"role":"user","content":"u"}])"), tools);
  ASSERT_EQ(without.size(), 2u);
  EXPECT_EQ(without[0]["role"], "system");
  EXPECT_EQ(without[0]["tools"], tools);
}

// A V3.2 model directory (config.json model_type deepseek_v32, a tokenizer_config.json
// without chat_template): the tokenizer's chat functions encode with DeepSeek's format, as
// chat, generate and serve call them; thinking and request tools from the variables.
TEST(Dsv32Encoding, TokenizerOfAV32ModelUsesIt) {
  test::TempDir dir;
  std::filesystem::create_symlink(test::v3_tokenizer_dir() + "/tokenizer.json", dir / "tokenizer.json");
  Json config = Json::parse(test::read_file(test::v3_tokenizer_dir() + "/tokenizer_config.json"));
  config.erase("chat_template");
  test::write_file(dir / "tokenizer_config.json", config.dump());
  auto plain = Tokenizer::load(dir.path());
  ASSERT_TRUE(plain.ok()) << plain.error().message();
  EXPECT_FALSE((*plain)->has_chat_format());  // not a V3.2 model: no chat format
  test::write_file(dir / "config.json", R"({"model_type": "deepseek_v32"})");
  auto tok = Tokenizer::load(dir.path());
  ASSERT_TRUE(tok.ok()) << tok.error().message();
  ASSERT_TRUE((*tok)->has_chat_format());
  for (const OrderedJson& c : cases("encode")) {
    OrderedJson extra = OrderedJson::object();
    extra["thinking"] = c["thinking_mode"] == "thinking";
    auto text = (*tok)->apply_chat_template(c["messages"], true, extra);
    ASSERT_TRUE(text.ok()) << text.error().message();
    EXPECT_EQ(*text, c["text"].get<std::string>()) << c["name"];
  }
  // a request: tools at the top level, thinking from chat_template_kwargs
  Json messages = Json::parse(R"([{"role":"user","content":"Weather?"}])");
  Json data = {{"tools", Json::parse(R"([{"type":"function","function":{"name":"get_weather"}}])")}, {"thinking", true}};
  auto r = (*tok)->apply_chat_template_marked(messages, true, Json::object(), data, ChatTemplate::Limits{});
  ASSERT_TRUE(r.ok()) << r.error().message();
  EXPECT_NE(r->text.find("<functions>\n{\"name\": \"get_weather\"}\n</functions>\n<｜User｜>Weather?<｜Assistant｜><think>"),
            std::string::npos)
      << r->text;
  // one BOS, then the encoder's markup as special tokens
  auto ids = (*tok)->encode_with_plain_text(r->text, r->data_spans, /*add_bos=*/true);
  ASSERT_GE(ids.size(), 2u);
  EXPECT_EQ(ids[0], *(*tok)->bos_id());
  EXPECT_NE(ids[1], *(*tok)->bos_id());
}
