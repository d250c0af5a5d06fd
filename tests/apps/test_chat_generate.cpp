// dsv3 chat driven through pipes (/clear, /exit, EOF) and a pseudo-terminal (line editing,
// history), and dsv3 generate on text prompts and prompt files, checked against the engine
// run directly.

#include <gtest/gtest.h>
#include <poll.h>
#include <pty.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>

#include "model/model.h"
#include "server/prompt.h"
#include "reference_generation.h"
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
  const auto tokens = test::reference_generate(*model, p.ids, n, {}, {*tok->eos_id()});
  IncrementalDecoder d(*tok, true);
  std::string text;
  for (int32_t id : tokens) text += d.push(id);
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
  // A CRLF line is the same message.
  auto crlf = run_dsv3(args, "Hello there\r\n/exit\r\n");
  ASSERT_EQ(crlf.exit_code, 0) << crlf.err;
  EXPECT_EQ(count(crlf.out, reply), 1) << crlf.out;
  // Sampled turns draw from seed + turn: the same question twice gets two draws, and the
  // session replays with the same seed.
  const std::string sampled = "chat --model " + dir + " -n 12 --temperature 1 --seed 5 -t 2";
  auto s1 = run_dsv3(sampled, "Hello there\n/clear\nHello there\n");
  auto s2 = run_dsv3(sampled, "Hello there\n/clear\nHello there\n");
  ASSERT_EQ(s1.exit_code, 0) << s1.err;
  EXPECT_EQ(s1.out, s2.out);
  const size_t a = s1.out.find(">>> "), b = s1.out.find(">>> ", a + 4), c = s1.out.find(">>> ", b + 4),
               d = s1.out.find(">>> ", c + 4);
  ASSERT_NE(d, std::string::npos) << s1.out;
  EXPECT_NE(s1.out.substr(a, b - a), s1.out.substr(c, d - c)) << s1.out;
  // A full context is said so, and the next turn that cannot fit points at /clear.
  auto full = run_dsv3("chat --model " + dir + " -n 64 --temperature 0 --ctx 40 -t 2",
                       "Hello there\nAnd a second question\n");
  EXPECT_EQ(full.exit_code, 0) << full.err;
  EXPECT_NE(full.err.find("the context is full"), std::string::npos) << full.err;
  EXPECT_NE(full.err.find("/clear starts a new conversation"), std::string::npos) << full.err;
  // EOF ends the session cleanly.
  auto eof = run_dsv3(args, "");
  EXPECT_EQ(eof.exit_code, 0);
}

// Typed on the terminal, then awaited: the output so far holds `count` copies of `marker`.
struct Keystrokes {
  std::string keys, marker;
  int count;
};

// Runs dsv3 on a pseudo-terminal (its stdin and stdout), typing each input once the previous
// one's marker showed up; returns everything it wrote and its exit code.
std::pair<std::string, int> run_on_pty(const std::vector<std::string>& argv, const std::vector<Keystrokes>& inputs) {
  int fd = -1;
  const pid_t pid = ::forkpty(&fd, nullptr, nullptr, nullptr);
  if (pid == 0) {
    std::string bin = DSV3_BIN;
    std::vector<std::string> copy = argv;
    std::vector<char*> args = {bin.data()};
    for (auto& a : copy) args.push_back(a.data());
    args.push_back(nullptr);
    ::execv(bin.c_str(), args.data());
    ::_exit(127);
  }
  std::string out;
  auto await = [&](const std::string& marker, int n) {
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(60);
    while (count(out, marker) < n && std::chrono::steady_clock::now() < deadline) {
      pollfd p{fd, POLLIN, 0};
      if (::poll(&p, 1, 100) <= 0) continue;
      char buf[4096];
      const ssize_t got = ::read(fd, buf, sizeof(buf));
      if (got <= 0) return;
      out.append(buf, static_cast<size_t>(got));
    }
  };
  await(">>> ", 1);
  for (const Keystrokes& in : inputs) {
    EXPECT_EQ(::write(fd, in.keys.data(), in.keys.size()), static_cast<ssize_t>(in.keys.size()));
    await(in.marker, in.count);
  }
  int status = 0;
  ::waitpid(pid, &status, 0);
  ::close(fd);
  return {out, WIFEXITED(status) ? WEXITSTATUS(status) : -1};
}

TEST(ChatCommand, TerminalLineEditingAndHistory) {
  const std::string dir = test::small_chat_model_dir();
  const std::string reply = expected_reply("Hello there", 6);
  // "Hellothere", 5 x left arrow, a space: "Hello there". Then /clear, and up arrow twice
  // recalls the first line: the same question in a fresh conversation, the same answer.
  auto [out, code] = run_on_pty({"chat", "--model", dir, "-n", "6", "--temperature", "0", "-t", "2"},
                                {{"Hellothere\x1b[D\x1b[D\x1b[D\x1b[D\x1b[D \r", "tok/s]", 1},
                                 {"/clear\r", ">>> ", 3},
                                 {"\x1b[A\x1b[A\r", "tok/s]", 2},
                                 {"/exit\r", "\n", 1000}});
  EXPECT_EQ(code, 0) << out;
  EXPECT_EQ(count(out, reply), 2) << out;
  // Multi-byte characters are edited as characters: "你好吗", backspace, Enter is "你好".
  const std::string chinese = expected_reply("你好", 6);
  auto [out2, code2] = run_on_pty({"chat", "--model", dir, "-n", "6", "--temperature", "0", "-t", "2"},
                                  {{"你好吗\x7f\r", "tok/s]", 1}, {"/exit\r", "\n", 1000}});
  EXPECT_EQ(code2, 0) << out2;
  EXPECT_EQ(count(out2, chinese), 1) << out2;
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
  // Usage errors (exit 2): not exactly one prompt source, an empty prompt, NaN sampling values.
  EXPECT_EQ(run_dsv3("generate --model " + dir + " -p x --tokens 1,2").exit_code, 2);
  EXPECT_EQ(run_dsv3("generate --model " + dir + " -p x --input-file " + (t / "prompts.txt")).exit_code, 2);
  EXPECT_EQ(run_dsv3("generate --model " + dir).exit_code, 2);
  EXPECT_EQ(run_dsv3("generate --model " + dir + " -p ''").exit_code, 2);
  EXPECT_EQ(run_dsv3("generate --model " + dir + " -p x --temperature nan").exit_code, 2);
  EXPECT_EQ(run_dsv3("generate --model " + dir + " -p x --top-p nan").exit_code, 2);
  EXPECT_EQ(run_dsv3("generate --model " + dir + " -p x --kernels bogus").exit_code, 2);
  EXPECT_EQ(run_dsv3("generate --model " + dir + " -p x --ids").exit_code, 2);  // --ids needs --tokens
  // An empty token list; seeds outside [-1, 2^63 - 1] or not integers (CLI11's own range check
  // saturated 9223372036854775808 to the largest int64 and let it through).
  EXPECT_EQ(run_dsv3("generate --model " + dir + " --tokens ''").exit_code, 2);
  EXPECT_EQ(run_dsv3("logits --model " + dir + " --tokens '' --out " + (t / "x.safetensors")).exit_code, 2);
  for (const char* seed : {"9223372036854775808", "18446744073709551616", "-2", "1.5", "7x"}) {
    auto r = run_dsv3("generate --model " + dir + " -p x --seed " + seed);
    EXPECT_EQ(r.exit_code, 2) << seed;
    EXPECT_NE(r.err.find("not an integer in [-1, 9223372036854775807]"), std::string::npos) << r.err;
  }
  auto missing = run_dsv3("generate --model " + (t / "no-such-model") + " -p x");
  EXPECT_EQ(missing.exit_code, 1);
  EXPECT_NE(missing.err.find("no such directory"), std::string::npos) << missing.err;
  auto bad_p = run_dsv3("generate --model " + dir + " -p \"$(printf 'ab\\377cd')\"");
  EXPECT_EQ(bad_p.exit_code, 1);
  EXPECT_NE(bad_p.err.find("invalid UTF-8"), std::string::npos) << bad_p.err;
}

TEST(GenerateCommand, ByteOrderMarkSeedsAndTokenizer) {
  const std::string dir = test::small_chat_model_dir();
  test::TempDir t;
  // A UTF-8 byte order mark is not part of the first prompt.
  test::write_file(t / "bom.txt", "\xEF\xBB\xBFWhat is the sea?\r\nName a color.\n");
  auto bom = run_dsv3("generate --model " + dir + " --input-file " + (t / "bom.txt") + " -n 8 --temperature 0");
  ASSERT_EQ(bom.exit_code, 0) << bom.err;
  EXPECT_EQ(bom.out.rfind("Prompt: What is the sea?\nCompletion: " + expected_reply("What is the sea?", 8) + "\n\n", 0), 0u)
      << bom.out;
  // With a seed, a prompt's sampled completion does not depend on its line in the file.
  const std::string sampled = " -n 8 --temperature 1 --seed 7";
  auto file = run_dsv3("generate --model " + dir + " --input-file " + (t / "bom.txt") + sampled);
  auto second = run_dsv3("generate --model " + dir + " -p 'Name a color.'" + sampled);
  ASSERT_EQ(file.exit_code, 0) << file.err;
  ASSERT_EQ(second.exit_code, 0) << second.err;
  EXPECT_NE(file.out.find(second.out), std::string::npos) << file.out << "\n---\n" << second.out;
  // A tokenizer whose ids the model's embedding does not cover is refused at load, by name.
  auto tiny = run_dsv3("generate --model " + test::fixtures() + "/tiny-v3 --tokenizer " + dir + " -p hi");
  EXPECT_EQ(tiny.exit_code, 1);
  EXPECT_NE(tiny.err.find("vocab_size is 1024"), std::string::npos) << tiny.err;
}

// --json-schema: every completion parses as JSON (nlohmann's parser, not the matcher) with the
// schema's properties and types, sampled at temperature 1 from random weights that know no
// JSON; a schema the matcher cannot enforce is refused with the file and the keyword's path.
TEST(GenerateCommand, JsonSchemaOutputs) {
  const std::string dir = test::small_chat_model_dir();
  test::TempDir t;
  test::write_file(t / "schema.json", R"({"type": "object", "properties": {"name": {"type": "string", "maxLength": 12},
      "age": {"type": "integer"}, "pets": {"type": "array", "items": {"enum": ["cat", "dog"]}, "maxItems": 3}},
      "required": ["name", "age", "pets"], "additionalProperties": false})");
  test::write_file(t / "prompts.txt", "Describe a person.\nWho are you?\nName someone.\nTell me more.\n");
  auto r = run_dsv3("generate --model " + dir + " --input-file " + (t / "prompts.txt") + " --json-schema " +
                    (t / "schema.json") + " -n 80 --temperature 1 --seed 3 -t 2");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  int outputs = 0;
  for (size_t at = r.out.find("Completion: "); at != std::string::npos; at = r.out.find("Completion: ", at + 1)) {
    // Up to the next prompt's block (the JSON may hold blank lines of its own).
    size_t end = r.out.find("\n\nPrompt: ", at);
    if (end == std::string::npos) end = r.out.size() - 2;
    const std::string text = r.out.substr(at + 12, end - at - 12);
    const Json v = Json::parse(text, nullptr, /*allow_exceptions=*/false);
    ASSERT_TRUE(v.is_object()) << text;
    EXPECT_EQ(v.size(), 3u) << text;
    ASSERT_TRUE(v.contains("name") && v["name"].is_string()) << text;
    EXPECT_LE(v["name"].get<std::string>().size(), 12u * 4) << text;
    EXPECT_TRUE(v.contains("age") && v["age"].is_number_integer()) << text;
    ASSERT_TRUE(v.contains("pets") && v["pets"].is_array() && v["pets"].size() <= 3) << text;
    for (const Json& p : v["pets"]) EXPECT_TRUE(p == "cat" || p == "dog") << text;
    ++outputs;
  }
  EXPECT_EQ(outputs, 4) << r.out;
  test::write_file(t / "bad.json", R"({"type": "object", "properties": {"a": {"pattern": "x+"}}})");
  auto bad = run_dsv3("generate --model " + dir + " -p x --json-schema " + (t / "bad.json"));
  EXPECT_EQ(bad.exit_code, 1);
  EXPECT_NE(bad.err.find("bad.json: schema.properties.a: unsupported keyword 'pattern'"), std::string::npos) << bad.err;
}

// --mlock locks the weights (or, without the privilege or the memory-lock limit for them, says
// why and runs unlocked); either way, and with the weights read into memory (--no-mmap), the
// output is the same.
TEST(GenerateCommand, MlockLocksTheWeightsOrSaysWhyNot) {
  const std::string dir = test::small_chat_model_dir();
  ::setenv("DSV3_LOG", "info", 1);
  auto r = run_dsv3("generate --model " + dir + " -p 'What is the sea?' -n 8 --temperature 0 --mlock --no-mmap");
  ::unsetenv("DSV3_LOG");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(r.out, "Prompt: What is the sea?\nCompletion: " + expected_reply("What is the sea?", 8) + "\n\n");
  const bool locked = r.err.find(" GB of weights in memory (--mlock)") != std::string::npos;
  const bool said_why = r.err.find("--mlock: ") != std::string::npos && r.err.find("memory-lock limit") != std::string::npos;
  EXPECT_TRUE(locked != said_why) << r.err;
}
