// dsv3 generate: generation from text prompts (one with -p, or one per line of a file, all
// batched together through the engine) or from token ids (--tokens).

#include <cstdio>
#include <fstream>
#include <memory>

#include "base/mapped_file.h"
#include "command.h"
#include "common.h"
#include "runtime/engine.h"
#include "server/prompt.h"
#include "tokenizer/incremental_decoder.h"
#include "tokenizer/tokenizer.h"

namespace dsv3::cli {
namespace {

struct GenerateArgs {
  ModelArgs model;
  SpeculativeArgs speculative;
  std::string tokens;
  std::string prompt;
  std::string input_file;
  bool raw = false;
  int64_t max_new_tokens = 200;
  SamplingArgs sampling;
  JsonOutputArgs json;
  bool ids = false;
  bool ignore_eos = false;
  std::string tokenizer;
};

std::string join_ids(const std::vector<int32_t>& v) {
  std::string s;
  for (size_t i = 0; i < v.size(); ++i) s += (i ? " " : "") + std::to_string(v[i]);
  return s;
}

// --tokens: one prompt of ids, printed as ids (--ids) or with a speed line.
int run_ids(const GenerateArgs& a) {
  auto prompt = parse_token_list(a.tokens);
  if (!prompt.ok()) return fail("generate", prompt.error().message());
  auto model = load_model(a.model, a.speculative.mtp);
  if (!model.ok()) return fail("generate", model.error().message());
  const Model& m = **model;
  EngineOptions eo;
  apply_speculative(a.speculative, &eo);
  eo.max_batch = 1;
  eo.max_step_tokens = std::max<int64_t>(512, static_cast<int64_t>(prompt->size()));  // the prompt in one pass
  Engine engine(m, eo);
  RequestParams params;
  params.max_new_tokens = a.max_new_tokens;
  params.sampling = sampling_params(a.sampling, seed_or_random(a.sampling));
  if (!a.ignore_eos)
    for (int64_t id : m.config().eos_token_ids) params.stop_tokens.push_back(static_cast<int32_t>(id));
  const int64_t prompt_tokens = static_cast<int64_t>(prompt->size());
  SubmitResult submitted = engine.submit(std::move(*prompt), params);
  if (submitted.status != SubmitStatus::Ok) return fail("generate", submitted.message);
  RequestResult result = wait_for_result(*submitted.handle);
  if (result.finish == FinishReason::Failed) return fail("generate", result.error);
  std::vector<int32_t> ids;
  for (const TokenOutput& t : result.tokens) ids.push_back(t.token);
  std::printf("%s\n", join_ids(ids).c_str());
  if (!a.ids) {
    const EngineStats st = engine.stats();
    const std::string drafts =
        st.draft_tokens == 0 ? std::string()
                             : str_f(", drafts kept %llu/%llu", static_cast<unsigned long long>(st.draft_tokens_accepted),
                                     static_cast<unsigned long long>(st.draft_tokens));
    std::fprintf(stderr, "prompt %lld tokens %.1f tok/s, generated %zu tokens %.1f tok/s%s, finish: %s\n",
                 static_cast<long long>(prompt_tokens),
                 result.timing.prefill > 0 ? prompt_tokens / result.timing.prefill : 0.0, ids.size(),
                 result.timing.decode > 0 ? ids.size() / result.timing.decode : 0.0, drafts.c_str(),
                 finish_reason_name(result.finish));
  }
  return 0;
}

// -p / --input-file: text prompts, each wrapped in the chat template (unless --raw), all
// submitted to the engine at once; printed in order as "Prompt:" / "Completion:".
int run_text(const GenerateArgs& a) {
  std::vector<std::string> prompts;
  if (!a.input_file.empty()) {
    auto text = read_text_file(a.input_file, 1ull << 30);
    if (!text.ok()) return fail("generate", text.error().message());
    if (auto bad = find_invalid_utf8(*text))
      return fail("generate", str_f("%s: invalid UTF-8 at byte offset %zu", a.input_file.c_str(), *bad));
    size_t start = text->starts_with("\xEF\xBB\xBF") ? 3 : 0;  // a UTF-8 byte order mark is not text
    
    while (start < text->size()) {
      size_t nl = text->find('\n', start);
      std::string line = text->substr(start, nl == std::string::npos ? std::string::npos : nl - start);
      if (!line.empty() && line.back() == '\r') line.pop_back();
      if (line.find_first_not_of(" \t") != std::string::npos) prompts.push_back(line);  // blank lines skipped
      if (nl == std::string::npos) break;
      start = nl + 1;
    }
    if (prompts.empty()) return fail("generate", a.input_file + " holds no prompts (one per line)");
  } else {
    if (auto bad = find_invalid_utf8(a.prompt)) return fail("generate", str_f("-p: invalid UTF-8 at byte offset %zu", *bad));
    prompts.push_back(a.prompt);
  }
  auto dir = resolve_model_dir(a.model.model);
  if (!dir.ok()) return fail("generate", dir.error().message());
  auto tok = load_tokenizer(*dir, a.tokenizer);
  if (!tok.ok()) return fail("generate", tok.error().message());
  ModelArgs margs = a.model;
  margs.model = *dir;
  auto model = load_model(margs, a.speculative.mtp);
  if (!model.ok()) return fail("generate", model.error().message());
  const Tokenizer& tokenizer = **tok;
  if (Status st = check_tokenizer_fits(tokenizer, **model, a.tokenizer.empty() ? *dir : a.tokenizer); !st.ok())
    return fail("generate", st.error().message());
  if (!a.raw && !tokenizer.has_chat_format())
    return fail("generate", "tokenizer_config.json has no chat_template: --raw sends the prompts as written");

  EngineOptions eo;
  apply_speculative(a.speculative, &eo);
  eo.max_batch = static_cast<int>(std::min<size_t>(prompts.size(), 256));
  eo.max_queue = static_cast<int>(prompts.size());
  eo.max_step_tokens = 512;
  auto grammar = json_grammar(a.json, tokenizer);
  if (!grammar.ok()) return fail("generate", grammar.error().message());
  Engine engine(**model, eo);
  const uint64_t seed = seed_or_random(a.sampling);
  std::vector<std::shared_ptr<RequestHandle>> handles;
  for (size_t i = 0; i < prompts.size(); ++i) {
    std::vector<int32_t> ids;
    if (a.raw) {
      ids = tokenizer.encode(prompts[i], /*add_bos=*/true);
    } else {
      server::ChatRequest req;
      req.messages = Json::array({{{"role", "user"}, {"content", prompts[i]}}});
      server::ChatPrompt cp;
      if (auto e = server::build_chat_prompt(tokenizer, req, &cp)) return fail("generate", e->message);
      ids = std::move(cp.ids);
    }
    RequestParams rp;
    rp.max_new_tokens = std::min<int64_t>(a.max_new_tokens, (*model)->max_context() - static_cast<int64_t>(ids.size()));
    if (rp.max_new_tokens < 1)
      return fail("generate", str_f("prompt %zu has %zu tokens, which leaves no room in the context of %lld (--ctx)",
                                    i + 1, ids.size(), static_cast<long long>((*model)->max_context())));
    // Every prompt draws from the same seed: a line's completion does not depend on its place
    // in the file (-p with the same seed gives the same text).
    rp.sampling = sampling_params(a.sampling, seed);
    rp.sampling.grammar = *grammar;
    if (!a.ignore_eos && tokenizer.eos_id()) rp.stop_tokens.push_back(*tokenizer.eos_id());
    SubmitResult sr = engine.submit(std::move(ids), rp);
    if (sr.status != SubmitStatus::Ok) return fail("generate", str_f("prompt %zu: %s", i + 1, sr.message.c_str()));
    handles.push_back(sr.handle);
  }
  for (size_t i = 0; i < prompts.size(); ++i) {
    RequestResult result = wait_for_result(*handles[i]);
    if (result.finish == FinishReason::Failed) return fail("generate", str_f("prompt %zu: %s", i + 1, result.error.c_str()));
    // Streaming decoder semantics: ids the tokenizer has no token for (the embedding rows
    // that pad the vocabulary to config.json's vocab_size) produce no text.
    IncrementalDecoder decoder(tokenizer, /*skip_special_tokens=*/true);
    std::string text;
    for (const TokenOutput& t : result.tokens) text += decoder.push(t.token);
    text += decoder.flush();
    std::printf("Prompt: %s\nCompletion: %s\n\n", prompts[i].c_str(), text.c_str());
    std::fflush(stdout);
  }
  return 0;
}

int run_generate(const GenerateArgs& a) {
  if (!a.tokens.empty() && (a.json.json || !a.json.json_schema.empty()))
    return fail("generate", "--json and --json-schema need text prompts (-p or --input-file), not --tokens");
  return a.tokens.empty() ? run_text(a) : run_ids(a);
}

Command add_generate(CLI::App& root) {
  auto args = std::make_shared<GenerateArgs>();
  CLI::App* app = root.add_subcommand("generate", "Generate from text prompts (chat template applied) or token ids");
  add_model_options(app, args->model);
  add_speculative_options(app, args->speculative);
  // Exactly one prompt source (else a usage error, exit 2).
  CLI::Option_group* source = app->add_option_group("prompt", "Exactly one of");
  source->add_option("-p,--prompt", args->prompt, "One text prompt")->check(non_empty("the prompt"));
  source->add_option("--input-file", args->input_file, "A file of prompts, one per line, all run batched together");
  CLI::Option* tokens = source->add_option("--tokens", args->tokens, "Prompt as comma-separated token ids (output: token ids)")
                            ->check(non_empty("the token list"));
  source->require_option(1);
  app->add_flag("--raw", args->raw, "Do not wrap text prompts in the chat template");
  add_tokenizer_option(app, args->tokenizer);
  app->add_option("-n,--max-new-tokens", args->max_new_tokens, "Tokens to generate at most per prompt")
      ->check(CLI::Range(int64_t(1), int64_t(1) << 31));
  add_sampling_options(app, args->sampling, "Random seed (same seed, same tokens; default: random)");
  add_json_output_options(app, args->json);
  app->add_flag("--ids", args->ids, "With --tokens: print only the generated ids, space-separated, on one line")
      ->needs(tokens);
  app->add_flag("--ignore-eos", args->ignore_eos, "Keep generating past the end-of-sequence token");
  return {app, [args] { return run_generate(*args); }};
}

}  // namespace

DSV3_REGISTER_COMMAND("generate", add_generate);

}  // namespace dsv3::cli
