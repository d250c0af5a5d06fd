// dsv3 tokenize: text or a chat to token ids, as JSON on stdout.
//   dsv3 tokenize --model DIR (--text S | --text-file F | --chat MESSAGES.json) [--add-bos]
// Text prints {"ids":[...]}; a chat prints {"text":"<rendered template>","ids":[...]}.
// Invalid UTF-8 in the text (or text file) is an error naming the byte offset of the first
// bad sequence: the tokenizer never guesses a repair for input it did not get as text.
// MESSAGES.json is an array of messages, or an object {"messages": [...], ...} whose other
// members (tools, add_generation_prompt, thinking, ...) become template variables;
// add_generation_prompt defaults to true.

#include <cstdio>

#include "base/json.h"
#include "base/mapped_file.h"
#include "command.h"
#include "tokenizer/tokenizer.h"

namespace dsv3::cli {

namespace {

constexpr uint64_t kMaxTextBytes = 1ull << 30;
constexpr uint64_t kMaxChatBytes = 256ull << 20;

struct Options {
  std::string model, text, text_file, chat;
  bool add_bos = false;
};

int fail_tokenize(const std::string& message) { return fail("tokenize", message); }

Result<std::string> checked_text(std::string text, const std::string& what) {
  if (auto bad = find_invalid_utf8(text))
    return error_f("%s: invalid UTF-8 at byte offset %zu (the text must be UTF-8)", what.c_str(), *bad);
  return text;
}

void print_json(const OrderedJson& out) {
  std::string s = out.dump(-1, ' ', false, OrderedJson::error_handler_t::replace);
  std::fwrite(s.data(), 1, s.size(), stdout);
  std::fputc('\n', stdout);
}

int run(const Options& o) {
  auto tok = Tokenizer::load(o.model);
  if (!tok.ok()) return fail_tokenize(tok.error().message());
  const Tokenizer& t = **tok;

  if (!o.chat.empty()) {
    auto text = read_text_file(o.chat, kMaxChatBytes);
    if (!text.ok()) return fail_tokenize(text.error().message());
    auto parsed = parse_ordered_json(*text, o.chat);
    if (!parsed.ok()) return fail_tokenize(parsed.error().message());
    OrderedJson messages, extra = OrderedJson::object();
    bool add_generation_prompt = true;
    if (parsed->is_array()) {
      messages = std::move(*parsed);
    } else if (parsed->is_object() && parsed->contains("messages")) {
      for (auto it = parsed->begin(); it != parsed->end(); ++it) {
        if (it.key() == "messages") messages = it.value();
        else if (it.key() == "add_generation_prompt" && it.value().is_boolean()) add_generation_prompt = it.value().get<bool>();
        else extra[it.key()] = it.value();
      }
    } else {
      return fail_tokenize(o.chat + ": expected a JSON array of messages or an object with \"messages\"");
    }
    if (!messages.is_array()) return fail_tokenize(o.chat + ": \"messages\" must be an array");
    if (!t.has_chat_format()) return fail_tokenize(o.model + "/tokenizer_config.json has no chat_template");
    if (!extra.contains("bos_token")) extra["bos_token"] = t.bos_token();
    if (!extra.contains("eos_token")) extra["eos_token"] = t.eos_token();
    auto rendered = t.apply_chat_template(messages, add_generation_prompt, extra);
    if (!rendered.ok()) return fail_tokenize(o.chat + ": " + rendered.error().message());
    OrderedJson out;
    out["text"] = *rendered;
    out["ids"] = t.encode(*rendered, o.add_bos);
    print_json(out);
    return 0;
  }

  Result<std::string> text = o.text_file.empty() ? checked_text(o.text, "--text")
                                                 : read_text_file(o.text_file, kMaxTextBytes);
  if (!text.ok()) return fail_tokenize(text.error().message());
  if (!o.text_file.empty()) {
    text = checked_text(std::move(*text), o.text_file);
    if (!text.ok()) return fail_tokenize(text.error().message());
  }
  OrderedJson out;
  out["ids"] = t.encode(*text, o.add_bos);
  print_json(out);
  return 0;
}

Command make(CLI::App& root) {
  auto opts = std::make_shared<Options>();
  CLI::App* app = root.add_subcommand("tokenize", "Text or a chat (rendered with the model's chat template) to token ids, as JSON");
  app->add_option("--model", opts->model, "Model directory with tokenizer.json and tokenizer_config.json")->required();
  auto* text = app->add_option("--text", opts->text, "Text to tokenize");
  auto* file = app->add_option("--text-file", opts->text_file, "File whose bytes (UTF-8) are tokenized");
  auto* chat = app->add_option("--chat", opts->chat, "JSON file: array of messages, or {\"messages\": [...], template variables}");
  text->excludes(file)->excludes(chat);
  file->excludes(chat);
  app->add_flag("--add-bos", opts->add_bos, "Prepend BOS when tokenizer_config.json sets add_bos_token (never twice)");
  Command c;
  c.app = app;
  c.run = [opts, app]() -> int {
    if (opts->text.empty() && opts->text_file.empty() && opts->chat.empty() && app->count("--text") == 0) {
      std::fprintf(stderr, "dsv3 tokenize: error: one of --text, --text-file, --chat is required\n");
      return 2;
    }
    return run(*opts);
  };
  return c;
}

}  // namespace

DSV3_REGISTER_COMMAND("tokenize", make);

}  // namespace dsv3::cli
