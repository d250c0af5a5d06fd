// dsv3 chat: interactive chat in the terminal, as DeepSeek's demo: a ">>> " prompt, history
// through the chat template, /clear and /exit, tokens streamed as they are generated, and a
// speed line after each answer. Each turn is a request to the engine, which keeps the
// conversation's KV cache between turns (its prefix cache), so a turn prefills only its new
// tokens.

#include <signal.h>
#include <unistd.h>

#include <atomic>
#include <cstdio>
#include <iostream>
#include <memory>

#include "command.h"
#include "common.h"
#include "line_reader.h"
#include "runtime/engine.h"
#include "server/prompt.h"
#include "server/text_stream.h"
#include "tokenizer/incremental_decoder.h"
#include "tokenizer/tokenizer.h"

namespace dsv3::cli {
namespace {

std::atomic<bool> g_generating{false};
std::atomic<bool> g_interrupted{false};

void on_sigint(int) {
  // At the prompt, or a second Ctrl-C while an answer is being stopped: leave. While
  // answering (or reading a long prompt): stop this answer.
  if (!g_generating.load() || g_interrupted.exchange(true)) _exit(130);
}

struct ChatArgs {
  ModelArgs model;
  SpeculativeArgs speculative;
  SamplingArgs sampling;
  JsonOutputArgs json;
  int64_t max_new_tokens = 1024;
  std::string system;
  std::string tokenizer;
  bool thinking = false;
};

std::string trim(const std::string& s) {
  size_t b = s.find_first_not_of(" \t\r\n"), e = s.find_last_not_of(" \t\r\n");
  return b == std::string::npos ? std::string() : s.substr(b, e - b + 1);
}

int run_chat(const ChatArgs& a) {
  auto dir = resolve_model_dir(a.model.model);
  if (!dir.ok()) return fail("chat", dir.error().message());
  const std::string tok_dir = a.tokenizer.empty() ? *dir : a.tokenizer;
  auto tok = load_tokenizer(*dir, a.tokenizer);
  if (!tok.ok()) return fail("chat", tok.error().message());
  if (!(*tok)->has_chat_format()) return fail("chat", tok_dir + "/tokenizer_config.json has no chat_template");
  ModelArgs margs = a.model;
  margs.model = *dir;
  auto model = load_model(margs, a.speculative.mtp);
  if (!model.ok()) return fail("chat", model.error().message());
  const Tokenizer& tokenizer = **tok;
  const bool dim_stderr = isatty(STDERR_FILENO);
  if (Status st = check_tokenizer_fits(tokenizer, **model, tok_dir); !st.ok()) return fail("chat", st.error().message());
  const Model& m = **model;
  // One conversation at a time; its cache (up to the whole context) is kept for the next turn.
  // Prompts are prefilled in chunks of 512 tokens, between which Ctrl-C is noticed.
  EngineOptions eo;
  apply_speculative(a.speculative, &eo);
  eo.max_batch = 1;
  eo.max_queue = 1;
  eo.max_step_tokens = 512;
  eo.prefix_cache_bytes = m.new_cache(eo.draft_tokens > 0).row_bytes() * static_cast<uint64_t>(m.max_context());
  Engine engine(m, eo);
  ::signal(SIGINT, on_sigint);

  RequestParams params;
  params.max_new_tokens = a.max_new_tokens;
  // Each answer draws from its own seed, seed + turn: a session replays with the same --seed,
  // and no two turns repeat each other's draws (as a generator carried on across turns).
  const uint64_t seed = seed_or_random(a.sampling);
  uint64_t turn = 0;
  params.sampling = sampling_params(a.sampling, seed);
  auto grammar = json_grammar(a.json, tokenizer);
  if (!grammar.ok()) return fail("chat", grammar.error().message());
  params.sampling.grammar = *grammar;  // every answer a JSON value of the schema
  if (tokenizer.eos_id()) params.stop_tokens.push_back(*tokenizer.eos_id());
  const bool tty = ::isatty(0);
  if (tty) std::printf("Chatting with %s. /clear forgets the conversation, /exit quits.\n", dir->c_str());

  Json messages = Json::array();
  auto reset = [&] {
    messages = Json::array();
    if (!a.system.empty()) messages.push_back({{"role", "system"}, {"content", a.system}});
  };
  reset();
  LineReader input(">>> ");
  for (;;) {
    std::optional<std::string> next = input.read();
    if (!next) {
      std::printf("\n");
      break;
    }
    std::string line = std::move(*next);
    std::string text = trim(line);
    if (text == "/exit") {
      if (!input.interactive()) std::printf("\n");  // a terminal echoed the user's Enter already
      break;
    }
    if (text == "/clear") {  // the old conversation's cache ages out of the prefix cache
      reset();
      continue;
    }
    if (text.empty()) continue;
    if (!line.empty() && line.back() == '\r') line.pop_back();  // a CRLF terminal or file
    if (auto bad = find_invalid_utf8(line)) {
      std::fprintf(stderr, "dsv3 chat: error: the message is not valid UTF-8 (byte offset %zu); not sent\n", *bad);
      continue;
    }
    messages.push_back({{"role", "user"}, {"content", line}});
    server::ChatRequest req;
    req.messages = messages;
    if (a.thinking) req.template_kwargs["thinking"] = true;
    server::ChatPrompt prompt;
    if (auto e = server::build_chat_prompt(tokenizer, req, &prompt)) {
      std::fprintf(stderr, "dsv3 chat: error: %s\n", e->message.c_str());
      messages.erase(messages.end() - 1);
      continue;
    }
    IncrementalDecoder decoder(tokenizer, /*skip_special_tokens=*/true);
    // A reasoning model's think block goes to stderr (dimmed on a terminal), the answer to
    // stdout: the two stay apart on screen and in pipes.
    server::ReasoningSplitter splitter(prompt.opens_reasoning);
    std::string reply, reasoning;
    auto show = [&](const server::SplitText& t) {
      if (!t.reasoning.empty()) {
        reasoning += t.reasoning;
        std::fprintf(stderr, "%s%s%s", dim_stderr ? "\x1b[2m" : "", t.reasoning.c_str(), dim_stderr ? "\x1b[0m" : "");
      }
      reply += t.content;
      std::fwrite(t.content.data(), 1, t.content.size(), stdout);
      std::fflush(stdout);
    };
    params.sampling.seed = seed + turn++;
    g_interrupted = false;
    g_generating = true;
    const EngineStats before = engine.stats();
    SubmitResult submitted = engine.submit(prompt.ids, params);
    if (submitted.status != SubmitStatus::Ok) {
      g_generating = false;
      const bool full = static_cast<int64_t>(prompt.ids.size()) > m.max_context();
      std::fprintf(stderr, "dsv3 chat: error: %s%s\n", submitted.message.c_str(),
                   full ? "; /clear starts a new conversation (or raise --ctx)" : "");
      messages.erase(messages.end() - 1);
      continue;
    }
    RequestResult result = wait_for_result(
        *submitted.handle,
        [&](const TokenOutput& t) {
          show(splitter.push(decoder.push(t.token)));
        },
        [] { return g_interrupted.load(); });  // Ctrl-C: stop this answer (or the prompt's prefill)
    g_generating = false;
    show(splitter.push(decoder.flush()));
    show(splitter.flush());
    if (!reasoning.empty() && reply.empty()) std::fprintf(stderr, "\n");
    std::printf("\n");
    std::fflush(stdout);  // before the report on stderr, also when stdout is a pipe
    if (result.finish == FinishReason::Failed) {
      std::fprintf(stderr, "dsv3 chat: error: %s\n", result.error.c_str());
      messages.erase(messages.end() - 1);
      continue;
    }
    const bool interrupted = result.finish == FinishReason::Cancelled;
    if (result.tokens.empty() && interrupted) {  // stopped while reading the prompt: as if never sent
      std::fprintf(stderr, "[interrupted while reading the prompt]\n");
      messages.erase(messages.end() - 1);
      continue;
    }
    messages.push_back({{"role", "assistant"}, {"content", reply}});
    if (!reasoning.empty()) messages.back()["reasoning_content"] = reasoning;  // each template decides
    // Ended by length before -n: the cache reached the context limit.
    const bool context_full =
        result.finish == FinishReason::Length && static_cast<int64_t>(result.tokens.size()) < a.max_new_tokens;
    const int64_t prompt_tokens = static_cast<int64_t>(prompt.ids.size());
    const EngineStats after = engine.stats();
    const uint64_t drafted = after.draft_tokens - before.draft_tokens;
    const std::string drafts =
        drafted == 0 ? std::string()
                     : str_f(", drafts kept %llu/%llu", static_cast<unsigned long long>(after.draft_tokens_accepted -
                                                                                         before.draft_tokens_accepted),
                             static_cast<unsigned long long>(drafted));
    const int64_t fresh = prompt_tokens - result.cached_tokens;
    std::fprintf(stderr, "[prompt: %lld tokens (%lld new), %.1f tok/s | generation: %zu tokens, %.1f tok/s%s%s]\n",
                 static_cast<long long>(prompt_tokens), static_cast<long long>(fresh),
                 result.timing.prefill > 0 ? fresh / result.timing.prefill : 0.0, result.tokens.size(),
                 result.timing.decode > 0 ? result.tokens.size() / result.timing.decode : 0.0, drafts.c_str(),
                 interrupted    ? ", interrupted"
                 : context_full ? ", the context is full: /clear starts a new conversation"
                                : "");
  }
  return 0;
}

Command add_chat(CLI::App& root) {
  auto args = std::make_shared<ChatArgs>();
  CLI::App* app = root.add_subcommand("chat", "Interactive chat in the terminal (/clear, /exit)");
  add_model_options(app, args->model);
  add_speculative_options(app, args->speculative);
  add_sampling_options(app, args->sampling, "Random seed; answer k of a session draws from seed + k (default: random)");
  add_json_output_options(app, args->json);
  app->add_option("-n,--max-new-tokens", args->max_new_tokens, "Longest answer in tokens")->check(CLI::Range(int64_t(1), int64_t(1) << 31));
  app->add_option("--system", args->system, "System prompt");
  add_tokenizer_option(app, args->tokenizer);
  app->add_flag("--thinking", args->thinking,
                "Pass thinking=true to the chat template (DeepSeek-V3.1's thinking mode; templates without the "
                "variable ignore it)");
  return {app, [args] { return run_chat(*args); }};
}

}  // namespace

DSV3_REGISTER_COMMAND("chat", add_chat);

}  // namespace dsv3::cli
