// OpenAI request validation, table-driven: every bad field is a 400 (404 for an unknown model)
// naming the parameter; good requests translate as expected.

#include <gtest/gtest.h>

#include "server/openai_request.h"

using namespace dsv3;
using namespace dsv3::server;

namespace {

const ServedModel kModel{"dsv3-test", 1024, 4096};

Json chat_body(const std::string& extra) {
  std::string s = R"({"model":"dsv3-test","messages":[{"role":"user","content":"hi"}])";
  if (!extra.empty()) s += "," + extra;
  return Json::parse(s + "}");
}

struct BadCase {
  const char* name;
  std::string body;  // full JSON text
  int status;
  const char* param;  // expected param ("" for null)
};

std::string with(const std::string& extra) {
  return R"({"model":"dsv3-test","messages":[{"role":"user","content":"hi"}],)" + extra + "}";
}
std::string msgs(const std::string& messages) { return R"({"model":"dsv3-test","messages":)" + messages + "}"; }

}  // namespace

TEST(OpenAIRequest, ChatBadInputs) {
  const std::vector<BadCase> cases = {
      {"body array", "[1,2]", 400, ""},
      {"body number", "42", 400, ""},
      {"body string", "\"x\"", 400, ""},
      {"body null", "null", 400, ""},
      {"messages missing", R"({"model":"dsv3-test"})", 400, "messages"},
      {"messages null", msgs("null"), 400, "messages"},
      {"messages string", msgs("\"s\""), 400, "messages"},
      {"messages empty", msgs("[]"), 400, "messages"},
      {"messages number item", msgs("[123]"), 400, "messages"},
      {"messages empty object", msgs("[{}]"), 400, "messages"},
      {"role number", msgs(R"([{"role":123,"content":"x"}])"), 400, "messages"},
      {"content number", msgs(R"([{"role":"user","content":123}])"), 400, "messages"},
      {"unknown role", msgs(R"([{"role":"wizard","content":"x"}])"), 400, "messages"},
      {"tool without id", msgs(R"([{"role":"user","content":"x"},{"role":"tool","content":"y"}])"), 400, "messages"},
      {"two assistants", msgs(R"([{"role":"user","content":"x"},{"role":"assistant","content":"a"},{"role":"assistant","content":"b"}])"), 400, "messages"},
      {"image part", msgs(R"([{"role":"user","content":[{"type":"image_url","image_url":{"url":"x"}}]}])"), 400, "messages"},
      {"unknown model", R"({"model":"gpt-9","messages":[{"role":"user","content":"hi"}]})", 404, "model"},
      {"max_tokens negative", with(R"("max_tokens":-1)"), 400, "max_tokens"},
      {"max_tokens zero", with(R"("max_tokens":0)"), 400, "max_tokens"},
      {"max_tokens float", with(R"("max_tokens":1.5)"), 400, "max_tokens"},
      {"max_tokens string", with(R"("max_tokens":"10")"), 400, "max_tokens"},
      {"max_tokens 1e30", with(R"("max_tokens":1e30)"), 400, "max_tokens"},
      {"max_completion_tokens 2^64", with(R"("max_completion_tokens":18446744073709551616)"), 400, "max_completion_tokens"},
      {"temperature negative", with(R"("temperature":-0.1)"), 400, "temperature"},
      {"temperature 3", with(R"("temperature":3)"), 400, "temperature"},
      {"temperature string", with(R"("temperature":"hot")"), 400, "temperature"},
      {"top_p > 1", with(R"("top_p":1.5)"), 400, "top_p"},
      {"top_p < 0", with(R"("top_p":-0.5)"), 400, "top_p"},
      {"n zero", with(R"("n":0)"), 400, "n"},
      {"n negative", with(R"("n":-2)"), 400, "n"},
      {"n 129", with(R"("n":129)"), 400, "n"},
      {"n million", with(R"("n":1000000)"), 400, "n"},
      {"stop 5 items", with(R"("stop":["a","b","c","d","e"])"), 400, "stop"},
      {"stop empty", with(R"("stop":"")"), 400, "stop"},
      {"stop number", with(R"("stop":[1])"), 400, "stop"},
      {"stop huge", with("\"stop\":\"" + std::string(100000, 'x') + "\""), 400, "stop"},
      {"stop a million strings", with("\"stop\":[\"x\"" + [] { std::string more; for (int i = 1; i < 1000000; ++i) more += ",\"x\""; return more; }() + "]"), 400, "stop"},
      {"stream yes", with(R"("stream":"yes")"), 400, "stream"},
      {"seed float", with(R"("seed":1.5)"), 400, "seed"},
      {"seed string", with(R"("seed":"7")"), 400, "seed"},
      {"seed > int64", with(R"("seed":99999999999999999999)"), 400, "seed"},
      {"top_logprobs 21", with(R"("logprobs":true,"top_logprobs":21)"), 400, "top_logprobs"},
      {"top_logprobs negative", with(R"("logprobs":true,"top_logprobs":-1)"), 400, "top_logprobs"},
      {"top_logprobs without logprobs", with(R"("top_logprobs":3)"), 400, "top_logprobs"},
      {"logit_bias key", with(R"("logit_bias":{"abc":1})"), 400, "logit_bias"},
      {"logit_bias id too big", with(R"("logit_bias":{"5000":1})"), 400, "logit_bias"},
      {"logit_bias value", with(R"("logit_bias":{"5":101})"), 400, "logit_bias"},
      {"presence_penalty", with(R"("presence_penalty":2.5)"), 400, "presence_penalty"},
      {"frequency_penalty", with(R"("frequency_penalty":-3)"), 400, "frequency_penalty"},
      {"json_schema", with(R"("response_format":{"type":"json_schema"})"), 400, "response_format"},
      {"json_schema without name", with(R"("response_format":{"type":"json_schema","json_schema":{"schema":{}}})"), 400, "response_format"},
      {"json_schema unsupported keyword", with(R"("response_format":{"type":"json_schema","json_schema":{"name":"a","schema":{"pattern":"x"}}})"), 400, "response_format"},
      {"response_format yaml", with(R"("response_format":{"type":"yaml"})"), 400, "response_format"},
      {"tools not array", with(R"("tools":{})"), 400, "tools"},
      {"tool without name", with(R"("tools":[{"type":"function","function":{}}])"), 400, "tools"},
      {"tool params not object", with(R"("tools":[{"type":"function","function":{"name":"f","parameters":[]}}])"), 400, "tools"},
      {"template kwargs not object", with(R"("chat_template_kwargs":true)"), 400, "chat_template_kwargs"},
      {"template kwargs replace messages", with(R"("chat_template_kwargs":{"messages":[]})"), 400, "chat_template_kwargs"},
      {"template kwargs replace bos", with(R"("chat_template_kwargs":{"bos_token":"x"})"), 400, "chat_template_kwargs"},
  };
  for (const auto& c : cases) {
    ChatRequest req;
    auto e = parse_chat_request(Json::parse(c.body), kModel, &req);
    ASSERT_TRUE(e.has_value()) << c.name;
    EXPECT_EQ(e->status, c.status) << c.name;
    if (*c.param) {
      ASSERT_TRUE(e->param.has_value()) << c.name;
      EXPECT_EQ(*e->param, c.param) << c.name;
    } else {
      EXPECT_FALSE(e->param.has_value()) << c.name;
    }
    EXPECT_LT(e->message.size(), 400u) << c.name;
    Json j = e->to_json();
    EXPECT_TRUE(j["error"].contains("message") && j["error"].contains("type") && j["error"].contains("param") &&
                j["error"].contains("code"))
        << c.name;
  }
}

TEST(OpenAIRequest, ChatGoodRequestTranslates) {
  ChatRequest req;
  auto e = parse_chat_request(
      Json::parse(R"({"model":"dsv3-test","messages":[{"role":"developer","content":"be brief"},
        {"role":"user","content":[{"type":"text","text":"a"},{"type":"text","text":"b"}]},
        {"role":"assistant","content":null,"tool_calls":[{"id":"c1","type":"function","function":{"name":"f","arguments":"{}"}}]},
        {"role":"tool","tool_call_id":"c1","content":"42"}],
        "max_completion_tokens":100.0,"temperature":0,"top_p":0,"seed":-5,"stop":"END","n":2,"stream":true,
        "stream_options":{"include_usage":true},"logprobs":true,"top_logprobs":20,"logit_bias":{"7":-100},
        "unknown_field":{"x":1}})"),
      kModel, &req);
  ASSERT_FALSE(e.has_value()) << e->message;
  EXPECT_EQ(req.messages[0]["role"], "system");
  EXPECT_EQ(req.messages[1]["content"], "ab");
  EXPECT_TRUE(req.messages[2]["content"].is_null());
  EXPECT_EQ(req.messages[3]["tool_call_id"], "c1");
  EXPECT_FALSE(req.continue_final_message);
  EXPECT_EQ(req.gen.max_tokens.value(), 100);
  EXPECT_EQ(req.gen.temperature, 0.0f);
  EXPECT_EQ(req.gen.seed.value(), static_cast<uint64_t>(-5));
  EXPECT_EQ(req.gen.stop, std::vector<std::string>{"END"});
  EXPECT_EQ(req.gen.n, 2);
  EXPECT_TRUE(req.gen.stream && req.gen.include_usage && req.gen.logprobs);
  EXPECT_EQ(req.gen.top_logprobs, 20);
  ASSERT_EQ(req.gen.logit_bias.size(), 1u);
  EXPECT_EQ(req.gen.logit_bias[0].first, 7);
  EXPECT_EQ(req.template_kwargs, Json::object());
}

TEST(OpenAIRequest, ChatTemplateKwargsReachTheRequest) {
  ChatRequest req;
  auto e = parse_chat_request(chat_body(R"("chat_template_kwargs":{"thinking":true,"x":"y"})"), kModel, &req);
  ASSERT_FALSE(e.has_value()) << e->message;
  EXPECT_EQ(req.template_kwargs, Json::parse(R"({"thinking":true,"x":"y"})"));
}

TEST(OpenAIRequest, ChatEdgeRules) {
  ChatRequest req;
  // A final assistant message continues as a prefill.
  ASSERT_FALSE(parse_chat_request(Json::parse(msgs(R"([{"role":"user","content":"x"},{"role":"assistant","content":"Sure, "}])")),
                                  kModel, &req));
  EXPECT_TRUE(req.continue_final_message);
  // stream_options without stream is ignored; model may be omitted.
  ChatRequest r2;
  ASSERT_FALSE(parse_chat_request(Json::parse(R"({"messages":[{"role":"user","content":""}],"stream_options":{"include_usage":"x"}})"),
                                  kModel, &r2));
  EXPECT_EQ(r2.model, "dsv3-test");
  EXPECT_FALSE(r2.gen.include_usage);
  // top_k -1 means disabled.
  ChatRequest r3;
  ASSERT_FALSE(parse_chat_request(chat_body(R"("top_k":-1)"), kModel, &r3));
  EXPECT_EQ(r3.gen.top_k, 0);
}

TEST(OpenAIRequest, CompletionPrompts) {
  CompletionRequest r;
  ASSERT_FALSE(parse_completion_request(Json::parse(R"({"model":"dsv3-test","prompt":"hello"})"), kModel, &r));
  ASSERT_EQ(r.prompts.size(), 1u);
  EXPECT_EQ(*r.prompts[0].text, "hello");
  CompletionRequest ids;
  ASSERT_FALSE(parse_completion_request(Json::parse(R"({"prompt":[1,2,3],"logprobs":2})"), kModel, &ids));
  EXPECT_EQ(ids.prompts[0].ids, (std::vector<int32_t>{1, 2, 3}));
  EXPECT_EQ(ids.gen.top_logprobs, 2);
  CompletionRequest many;
  ASSERT_FALSE(parse_completion_request(Json::parse(R"({"prompt":[[1],[2,3]],"n":2})"), kModel, &many));
  EXPECT_EQ(many.prompts.size(), 2u);
  // echo, and with it max_tokens 0 (score the prompt only).
  CompletionRequest echo;
  ASSERT_FALSE(parse_completion_request(Json::parse(R"({"prompt":"x","echo":true,"max_tokens":0,"logprobs":1})"), kModel, &echo));
  EXPECT_TRUE(echo.gen.echo);
  EXPECT_EQ(echo.gen.max_tokens.value(), 0);

  for (const char* bad : {R"({"prompt":[-1]})", R"({"prompt":[1024]})", R"({"prompt":[1.5]})", R"({"prompt":42})",
                          R"({"prompt":["a",1]})", R"({})", R"({"prompt":"x","echo":"yes"})", R"({"prompt":"x","max_tokens":0})",
                          R"({"prompt":"x","suffix":"y"})",
                          R"({"prompt":"x","logprobs":6})"}) {
    CompletionRequest c;
    auto e = parse_completion_request(Json::parse(bad), kModel, &c);
    ASSERT_TRUE(e.has_value()) << bad;
    EXPECT_EQ(e->status, 400) << bad;
  }
}

TEST(OpenAIRequest, ErrorTextIsBoundedUtf8) {
  std::string bad_role = "\xff\xfe" + std::string(5000, 'r');
  Json body = Json::parse(msgs("[{\"role\":\"x\",\"content\":\"y\"}]"));
  body["messages"][0]["role"] = std::string(5000, 'r');
  ChatRequest req;
  auto e = parse_chat_request(body, kModel, &req);
  ASSERT_TRUE(e);
  EXPECT_LT(e->message.size(), 200u);
  EXPECT_EQ(bounded_text("ab\xff" "cd"), "ab\xEF\xBF\xBD" "cd");
  EXPECT_FALSE(find_invalid_utf8(bounded_text(bad_role)).has_value());
}
