// Templates rendered by Jinja2 itself (data/jinja_cases.jsonl), configured like HF's
// apply_chat_template: ImmutableSandboxedEnvironment, trim_blocks, lstrip_blocks,
// loopcontrols, HF's tojson and raise_exception, tools/documents None unless given. The
// expectations were generated once outside the repo with Debian's python3-jinja2 (3.1);
// nothing here runs Python. Cases cover whitespace control, loops, scoping, namespace,
// operators, filters, tests, string methods, slices, macros, errors, and the DeepSeek-V3.1
// chat template (data/deepseek-v3.1.jinja) on six conversations.

#include <gtest/gtest.h>

#include "tokenizer/chat_template.h"
#include "tokenizer_test_util.h"

using namespace dsv3;
using namespace dsv3::test;

TEST(JinjaCases, MatchJinja2) {
  auto cases = read_jsonl(std::string(DSV3_SOURCE_DIR) + "/tests/tokenizer/data/jinja_cases.jsonl");
  ASSERT_GE(cases.size(), 50u);
  for (const auto& c : cases) {
    std::string name = c.at("name");
    SCOPED_TRACE(name);
    auto compiled = ChatTemplate::compile(c.at("template").get<std::string>());
    ASSERT_TRUE(compiled.ok()) << compiled.error().message();
    OrderedJson vars = c.at("vars");
    OrderedJson messages = vars.contains("messages") ? vars["messages"] : OrderedJson::array();
    bool agp = vars.value("add_generation_prompt", false);
    OrderedJson extra = OrderedJson::object();
    for (auto it = vars.begin(); it != vars.end(); ++it)
      if (it.key() != "messages" && it.key() != "add_generation_prompt") extra[it.key()] = it.value();
    auto out = compiled->render(messages, agp, extra);
    if (c.contains("error")) {
      EXPECT_FALSE(out.ok()) << "expected an error like: " << c.at("python_error").get<std::string>();
      if (!out.ok()) {
        EXPECT_NE(out.error().message().find("line"), std::string::npos) << out.error().message();
      }
    } else {
      ASSERT_TRUE(out.ok()) << out.error().message();
      EXPECT_EQ(*out, c.at("expected").get<std::string>());
    }
  }
}

TEST(JinjaCases, DeepSeekV31TemplateTokenizes) {
  // V3.1's template over V3's tokenizer: the rendered prompt starts with exactly one BOS.
  const Tokenizer& tok = v3_tokenizer();
  auto t = ChatTemplate::compile(read_file(std::string(DSV3_SOURCE_DIR) + "/tests/tokenizer/data/deepseek-v3.1.jinja"));
  ASSERT_TRUE(t.ok()) << t.error().message();
  Json messages = Json::parse(R"([{"role":"user","content":"Hi"}])");
  auto text = t->render(messages, true, Json{{"bos_token", tok.bos_token()}, {"thinking", true}});
  ASSERT_TRUE(text.ok()) << text.error().message();
  EXPECT_EQ(*text, "<\xef\xbd\x9c" "begin\xe2\x96\x81of\xe2\x96\x81sentence\xef\xbd\x9c><\xef\xbd\x9cUser\xef\xbd\x9c>Hi<\xef\xbd\x9c"
                   "Assistant\xef\xbd\x9c><think>");
  auto ids = tok.encode(*text, /*add_bos=*/true);
  ASSERT_GE(ids.size(), 4u);
  EXPECT_EQ(ids[0], 0);
  EXPECT_NE(ids[1], 0);
  EXPECT_EQ(ids[1], 128803);
  EXPECT_EQ(ids[3], 128804);
}
