// dsv3 chat driven through pipes (/clear, /exit, EOF) and dsv3 generate on text prompts and
// prompt files, checked against the engine run directly.

#include <gtest/gtest.h>

#include "model/model.h"
#include "runtime/generate.h"
#include "server/prompt.h"
#include "small_chat_model.h"
#include "tokenizer/incremental_decoder.h"
#include "tokenizer/tokenizer.h"

using namespace dsv3;
using dsv3::test::run_dsv3;

namespace {

// Greedy reply of the model to one user message, decoded without special tokens.
std::string expected_reply(const std::string& user, int64_t n) {
  const std::string& dir = test::small_chat_model_dir();
  auto tok = Tokenizer::load(dir).value();
  ModelOptions mo;
  mo.threads = 2;
  auto model = Model::load(dir, mo).value();
  server::ChatRequest req;
  req.messages = Json::array({{{"role", "user"}, {"content", user}}});
  server::ChatPrompt p;
  EXPECT_FALSE(server::build_chat_prompt(*tok, req, &p).has_value());
  GenerateOptions g;
  g.max_new_tokens = n;
  g.stop_tokens = {*tok->eos_id()};
  auto r = generate(*model, p.ids, g).value();
  IncrementalDecoder d(*tok, true);
  std::string text;
  for (int32_t id : r.tokens) text += d.push(id);
  return text + d.flush();
}

int count(const std::string& s, const std::string& needle) {
  int n = 0;
  for (size_t p = s.find(needle); p != std::string::npos; p = s.find(needle, p + 1)) ++n;
  return n;
}

}  // namespace

TEST(ChatCommand, PipesClearExit) {
  const std::string dir = test::small_chat_model_dir();
  const std::string args = "chat --model " + dir + " -n 6 --temperature 0 -t 2";
  auto r = run_dsv3(args, "Hello there\n/clear\nHello there\n/exit\nnever read\n");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(count(r.out, ">>> "), 4);  // three turns incl. /clear, then the prompt /exit answers
  const std::string reply = expected_reply("Hello there", 6);
  // After /clear the same question gets the same answer (history really dropped).
  EXPECT_EQ(count(r.out, reply), 2) << r.out;
  EXPECT_EQ(count(r.err, "[prompt:"), 2);  // one speed line per answer
  EXPECT_NE(r.err.find("tok/s"), std::string::npos);
  // Multi-turn: the second turn sees the first (its prompt is longer, mostly reused).
  auto two = run_dsv3(args, "First question\nSecond question\n");
  ASSERT_EQ(two.exit_code, 0) << two.err;
  EXPECT_NE(two.err.find("new)"), std::string::npos);
  // EOF ends the session cleanly.
  auto eof = run_dsv3(args, "");
  EXPECT_EQ(eof.exit_code, 0);
}

TEST(GenerateCommand, PromptAndInputFile) {
  const std::string dir = test::small_chat_model_dir();
  test::TempDir t;
  test::write_file(t / "prompts.txt", "What is the sea?\n\nName a color.\nCount to three.\n");
  auto r = run_dsv3("generate --model " + dir + " --input-file " + (t / "prompts.txt") + " -n 8 --temperature 0 -t 2");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const std::vector<std::string> prompts = {"What is the sea?", "Name a color.", "Count to three."};
  size_t pos = 0;
  for (const auto& p : prompts) {  // in file order, blank line skipped, batched replies equal single runs
    std::string block = "Prompt: " + p + "\nCompletion: " + expected_reply(p, 8) + "\n\n";
    size_t at = r.out.find(block, pos);
    ASSERT_NE(at, std::string::npos) << "missing block for '" << p << "' in:\n" << r.out;
    pos = at + block.size();
  }
  auto single = run_dsv3("generate --model " + dir + " -p 'What is the sea?' -n 8 --temperature 0");
  ASSERT_EQ(single.exit_code, 0) << single.err;
  EXPECT_EQ(single.out, "Prompt: What is the sea?\nCompletion: " + expected_reply("What is the sea?", 8) + "\n\n");
  auto raw = run_dsv3("generate --model " + dir + " -p 'Once upon' --raw -n 4 --temperature 0");
  EXPECT_EQ(raw.exit_code, 0) << raw.err;
  // Bad input: missing file, invalid UTF-8, --tokens with -p.
  EXPECT_EQ(run_dsv3("generate --model " + dir + " --input-file " + (t / "none.txt")).exit_code, 1);
  test::write_file(t / "bad.txt", "ok\n\xff\xfe\n");
  auto bad = run_dsv3("generate --model " + dir + " --input-file " + (t / "bad.txt"));
  EXPECT_EQ(bad.exit_code, 1);
  EXPECT_NE(bad.err.find("byte offset 3"), std::string::npos) << bad.err;
  EXPECT_EQ(run_dsv3("generate --model " + dir + " -p x --tokens 1,2").exit_code, 1);
}
