// tool_choice "required" and a named function enforced: random walks through the forced
// tool-call grammar (each allowed token equally likely, as from a model with no preference)
// over DeepSeek-V3's real vocabulary, each output read back by the tool-call parser that reads
// the model's own output, and its arguments checked against the tool's schema by hand.

#include <gtest/gtest.h>

#include <random>

#include "grammar/tool_call_constraint.h"
#include "server/choice_stream.h"
#include "server/forced_tool_call.h"
#include "server/json_vocabulary.h"
#include "server/tool_prompt.h"
#include "server_fixture.h"
#include "tokenizer/tokenizer.h"

using namespace dsv3;
using namespace dsv3::server;

namespace {

std::shared_ptr<const grammar::TokenVocabulary> vocabulary() {
  static auto v = json_token_vocabulary(test::v3_tokenizer());
  return v;
}

const Json kTools = Json::parse(R"([
  {"type": "function", "function": {"name": "get_weather", "description": "Weather of a city",
   "parameters": {"type": "object", "properties": {
       "city": {"type": "string", "maxLength": 20},
       "days": {"type": "integer"},
       "unit": {"enum": ["c", "f"]}},
     "required": ["city", "days"], "additionalProperties": false}}},
  {"type": "function", "function": {"name": "get_time", "parameters": {"type": "object", "properties": {
       "zone": {"type": "string", "maxLength": 8}}, "required": ["zone"], "additionalProperties": false}}}
])");

// The tokens of one output drawn from the constraint: uniformly among the allowed tokens.
std::vector<int32_t> random_output(grammar::OutputConstraint& c, std::mt19937_64& rng, int32_t eos, size_t limit) {
  std::vector<int32_t> out;
  while (out.size() < limit) {
    const grammar::TokenMask& mask = c.allowed();
    std::vector<int32_t> allowed;
    for (size_t w = 0; w < mask.words.size(); ++w)
      for (uint64_t bits = mask.words[w]; bits; bits &= bits - 1)
        allowed.push_back(static_cast<int32_t>(w * 64 + static_cast<size_t>(__builtin_ctzll(bits))));
    EXPECT_FALSE(allowed.empty()) << "a dead end after " << out.size() << " tokens";
    if (allowed.empty()) break;
    const int32_t t = allowed[std::uniform_int_distribution<size_t>(0, allowed.size() - 1)(rng)];
    auto st = c.accept(t);
    EXPECT_TRUE(st.ok()) << st.error().message();
    if (!st.ok()) break;
    out.push_back(t);
    if (t == eos) break;
  }
  return out;
}

// The arguments a get_weather / get_time call may have, checked key by key.
void expect_valid_arguments(const std::string& name, const Json& args) {
  ASSERT_TRUE(args.is_object());
  if (name == "get_weather") {
    ASSERT_TRUE(args.contains("city") && args["city"].is_string());
    EXPECT_LE(Json::parse(args["city"].dump()).get<std::string>().size(), 20u * 4);
    ASSERT_TRUE(args.contains("days") && args["days"].is_number_integer());
    for (auto it = args.begin(); it != args.end(); ++it) {
      EXPECT_TRUE(it.key() == "city" || it.key() == "days" || it.key() == "unit") << it.key();
      if (it.key() == "unit") {
        EXPECT_TRUE(*it == "c" || *it == "f");
      }
    }
  } else {
    ASSERT_EQ(name, "get_time");
    ASSERT_TRUE(args.contains("zone") && args["zone"].is_string());
    EXPECT_EQ(args.size(), 1u);
  }
}

void walk_and_check(ToolCallFormat format, const Json& tool_choice, bool opens_reasoning, int outputs) {
  const Tokenizer& tok = test::v3_tokenizer();
  std::shared_ptr<const grammar::ToolCallGrammar> g;
  ASSERT_FALSE(forced_tool_call_grammar(tok, format, vocabulary(), kTools, tool_choice, opens_reasoning, &g));
  std::mt19937_64 rng(11);
  std::set<std::string> names;
  for (int i = 0; i < outputs; ++i) {
    grammar::ToolCallConstraint c(g, /*max_tokens=*/120);
    const std::vector<int32_t> ids = random_output(c, rng, *tok.eos_id(), 120);
    ASSERT_FALSE(ids.empty());
    EXPECT_EQ(ids.back(), *tok.eos_id()) << "the call closes within max_tokens";
    EXPECT_TRUE(c.complete());
    ChoiceStream s(tok, {}, /*reasoning=*/true, /*in_reasoning=*/opens_reasoning, false, /*tool_calls=*/true);
    std::vector<TokenOutput> outs;
    for (int32_t id : ids) outs.push_back({id, 0.0f, {}});
    ChoiceDelta all = s.push(outs);
    all.append(s.finish());
    const std::string text = *tok.decode(ids, false);
    EXPECT_EQ(all.content, "") << text;
    EXPECT_EQ(all.reasoning, "") << text;
    ASSERT_EQ(s.tool_calls().size(), 1u) << text;
    const Json& call = s.tool_calls()[0]["function"];
    const std::string name = call["name"].get<std::string>();
    if (tool_choice.is_object()) {
      EXPECT_EQ(name, tool_choice["function"]["name"]);
    }
    names.insert(name);
    const std::string args = call["arguments"].get<std::string>();
    ASSERT_TRUE(Json::accept(args)) << text;
    expect_valid_arguments(name, Json::parse(args));
  }
  if (tool_choice == "required") {
    EXPECT_EQ(names.size(), 2u) << "either tool may be called";
  }
}

}  // namespace

TEST(ForcedToolCall, TheTemplateSaysWhichFormat) {
  EXPECT_EQ(probe_tool_call_format(test::v3_tokenizer()), ToolCallFormat::V3);
  const std::string src = DSV3_SOURCE_DIR;
  const std::string vocab = test::read_file(src + "/assets/deepseek-v3-tokenizer/tokenizer.json");
  auto r1 = Tokenizer::from_strings(vocab, test::read_file(src + "/tests/fixtures/tokenizer/r1-style/tokenizer_config.json"));
  ASSERT_TRUE(r1.ok()) << r1.error().message();
  EXPECT_EQ(probe_tool_call_format(**r1), ToolCallFormat::V3);
  // A template that writes calls as V3.1's does (name, separator, arguments).
  const Json v31_config = {
      {"chat_template",
       "{% for m in messages %}{% if m['role'] == 'assistant' and m['tool_calls'] %}{% for t in m['tool_calls'] %}"
       "<｜tool▁call▁begin｜>{{ t['function']['name'] }}<｜tool▁sep｜>{{ t['function']['arguments'] }}"
       "<｜tool▁call▁end｜>{% endfor %}{% else %}{{ m['content'] }}{% endif %}{% endfor %}"}};
  auto v31 = Tokenizer::from_strings(vocab, v31_config.dump());
  ASSERT_TRUE(v31.ok()) << v31.error().message();
  EXPECT_EQ(probe_tool_call_format(**v31), ToolCallFormat::V31);
  EXPECT_FALSE(template_renders_tools(**v31));
}

TEST(ForcedToolCall, RequiredAndNamedOutputsAreOneValidCallInV3Format) {
  walk_and_check(ToolCallFormat::V3, "required", false, 20);
  walk_and_check(ToolCallFormat::V3, Json::parse(R"({"type": "function", "function": {"name": "get_weather"}})"), false, 10);
}

TEST(ForcedToolCall, RequiredAndNamedOutputsAreOneValidCallInV31Format) {
  walk_and_check(ToolCallFormat::V31, "required", false, 20);
  walk_and_check(ToolCallFormat::V31, Json::parse(R"({"type": "function", "function": {"name": "get_time"}})"), false, 10);
}

TEST(ForcedToolCall, APromptThatOpensReasoningIsClosedFirst) {
  walk_and_check(ToolCallFormat::V31, "required", /*opens_reasoning=*/true, 10);
}

TEST(ForcedToolCall, RefusalsNameTheParameter) {
  const Tokenizer& tok = test::v3_tokenizer();
  std::shared_ptr<const grammar::ToolCallGrammar> g;
  auto e = forced_tool_call_grammar(tok, ToolCallFormat::Dsml, vocabulary(), kTools, "required", false, &g);
  ASSERT_TRUE(e);
  EXPECT_EQ(e->status, 400);
  EXPECT_EQ(e->param, "tool_choice");
  const Json bad = Json::parse(R"([{"type": "function", "function": {"name": "f", "parameters":
      {"type": "object", "properties": {"n": {"type": "integer", "minimum": 0}}}}}])");
  e = forced_tool_call_grammar(tok, ToolCallFormat::V3, vocabulary(), bad, "required", false, &g);
  ASSERT_TRUE(e);
  EXPECT_EQ(e->param, "tools");
  EXPECT_NE(e->message.find("tools[0].function.parameters.properties.n"), std::string::npos) << e->message;
  e = forced_tool_call_grammar(tok, ToolCallFormat::V3, vocabulary(), kTools,
                               Json::parse(R"({"type": "function", "function": {"name": "nope"}})"), false, &g);
  ASSERT_TRUE(e);
  EXPECT_EQ(e->param, "tool_choice");
}

TEST(ToolPrompt, AV3TemplateIgnoresToolsSoTheyGoIntoTheSystemPrompt) {
  const Tokenizer& tok = test::v3_tokenizer();
  EXPECT_FALSE(template_renders_tools(tok));
  const Json messages = Json::parse(R"([{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Hi"}])");
  const Json with = messages_with_tools_section(messages, kTools, ToolCallFormat::V3);
  const std::string sys = with[0]["content"].get<std::string>();
  EXPECT_EQ(sys.rfind("Be brief.\n\n## Tools\n", 0), 0u) << sys;
  EXPECT_NE(sys.find("### get_weather\nDescription: Weather of a city\n\nParameters: {"), std::string::npos) << sys;
  EXPECT_NE(sys.find("### get_time\n\nParameters: "), std::string::npos) << sys;
  EXPECT_NE(sys.find("function<｜tool▁sep｜>tool_call_name\n```json\n"), std::string::npos) << sys;
  const Json added = messages_with_tools_section(Json::array({messages[1]}), kTools, ToolCallFormat::V31);
  ASSERT_EQ(added.size(), 2u);
  EXPECT_EQ(added[0]["role"], "system");
  EXPECT_NE(added[0]["content"].get<std::string>().find("tool_call_name<｜tool▁sep｜>tool_call_arguments"), std::string::npos);
}
