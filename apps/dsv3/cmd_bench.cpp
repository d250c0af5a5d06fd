// dsv3 bench: prefill and decode speed against this machine's measured ceilings.

#include <cstdio>
#include <memory>
#include <vector>

#include "command.h"
#include "common.h"
#include "tools/bench.h"
#include "server/json_vocabulary.h"
#include "tools/json_mask_bench.h"

namespace dsv3::cli {
namespace {

struct BenchArgs {
  ModelArgs model;
  BenchOptions o;
  bool json = false;
  double probe_gb = 1.0;
  bool mtp = false;
  int draft_tokens = 1;
  bool json_mask = false;
  JsonOutputArgs json_output;
  std::string tokenizer;
  bool sweep = false;
  std::vector<int64_t> sweep_prompts{16, 128, 512, 2048};
  std::vector<int> sweep_batches{1, 2, 4, 8, 16};
};

// A schema of the kind agents send: nested objects, an array, enum, anyOf, every scalar type.
constexpr const char* kMaskBenchSchema = R"({"type": "object", "properties": {
  "name": {"type": "string"}, "age": {"type": "integer"}, "score": {"type": "number"},
  "active": {"type": "boolean"}, "role": {"enum": ["admin", "user", "guest"]},
  "note": {"anyOf": [{"type": "string"}, {"type": "null"}]},
  "tags": {"type": "array", "items": {"type": "string"}, "maxItems": 4},
  "address": {"type": "object", "properties": {"city": {"type": "string"}, "zip": {"type": "string"}},
              "required": ["city", "zip"], "additionalProperties": false}},
  "required": ["name", "age", "score", "active", "role", "note", "tags", "address"], "additionalProperties": false})";

// The mask's cost per token next to the decode step just measured: at batch B a step computes
// B masks (on the pool's threads, but counted here as if one after another: the worst case).
int print_json_mask(const std::string& schema_name, std::shared_ptr<const grammar::JsonGrammar> grammar,
                    const BenchReport& rep, int batch);

int report_json_mask(const BenchArgs& a, const BenchReport& rep) {
  auto dir = resolve_model_dir(a.model.model);
  if (!dir.ok()) return fail("bench", dir.error().message());
  auto tok = load_tokenizer(*dir, a.tokenizer);
  if (!tok.ok()) return fail("bench", tok.error().message());
  if (!a.json_output.json_schema.empty()) {
    auto g = json_grammar(a.json_output, **tok);
    if (!g.ok()) return fail("bench", g.error().message());
    return print_json_mask(a.json_output.json_schema, *g, rep, a.o.batch);
  }
  auto compiled = grammar::compile_json_schema(Json::parse(kMaskBenchSchema));
  if (!compiled.ok()) return fail("bench", compiled.error().message());
  std::vector<int32_t> ends;
  if ((*tok)->eos_id()) ends.push_back(*(*tok)->eos_id());
  auto g = std::make_shared<grammar::JsonGrammar>(grammar::JsonGrammar{
      std::make_shared<grammar::Schema>(std::move(compiled).value()), server::json_token_vocabulary(**tok), ends});
  return print_json_mask("built-in 8-property schema", g, rep, a.o.batch);
}

int print_json_mask(const std::string& schema_name, std::shared_ptr<const grammar::JsonGrammar> grammar,
                    const BenchReport& rep, int batch) {
  constexpr int kOutputs = 20;
  constexpr int64_t kMaxTokens = 128;
  const JsonMaskTimes t = run_json_mask_bench(grammar, kOutputs, kMaxTokens, 1);
  std::printf("json mask (%s): %lld outputs, %lld tokens: median %.1f us, mean %.1f us, p90 %.1f us per token\n",
              schema_name.c_str(), static_cast<long long>(t.outputs), static_cast<long long>(t.tokens), t.median(),
              t.mean(), t.percentile(0.9));
  if (rep.decode_tokens_per_s.median > 0) {
    const double step1 = 1e6 / rep.decode_tokens_per_s.median;
    std::printf("  decode step at batch 1: %.0f us; mean mask / step: %.1f%%\n", step1, 100.0 * t.mean() / step1);
  }
  if (batch > 1 && rep.batch_decode_tokens_per_s.median > 0) {
    const double step = 1e6 * batch / rep.batch_decode_tokens_per_s.median;
    std::printf("  decode step at batch %d: %.0f us; %d masks / step: %.1f%% (one after another)\n", batch, step, batch,
                100.0 * batch * t.mean() / step);
  }
  return 0;
}

int run_bench_command(const BenchArgs& a) {
  auto model = load_model(a.model, a.mtp);
  if (!model.ok()) return fail("bench", model.error().message());
  BenchOptions o = a.o;
  o.draft_tokens = a.mtp ? a.draft_tokens : 0;
  o.probe_bytes = static_cast<size_t>(a.probe_gb * (1 << 30));
  if (a.sweep) {
    o.sweep_prompt_tokens = a.sweep_prompts;
    o.sweep_batches = a.sweep_batches;
  }
  auto rep = run_bench(**model, o);
  if (!rep.ok()) return fail("bench", rep.error().message());
  if (a.json) std::printf("%s\n", rep->to_json().dump(2).c_str());
  else std::printf("%s", rep->to_text().c_str());
  if (a.json_mask) return report_json_mask(a, *rep);
  return 0;
}

Command add_bench(CLI::App& root) {
  auto args = std::make_shared<BenchArgs>();
  CLI::App* app = root.add_subcommand("bench", "Prefill and decode speed vs this machine's measured bandwidth and FLOP peak");
  add_model_options(app, args->model);
  app->add_option("-p,--prompt-tokens", args->o.prompt_tokens, "Prompt length for prefill")->check(CLI::Range(int64_t(1), int64_t(1) << 24));
  app->add_option("-n,--decode-tokens", args->o.decode_tokens, "Tokens decoded after the prompt")->check(CLI::Range(int64_t(0), int64_t(1) << 24));
  app->add_option("--batch", args->o.batch, "Also decode this many sequences together and report the aggregate")
      ->check(CLI::Range(1, 4096));
  app->add_option("--repeat", args->o.repeats, "Runs (min/median/max reported)")->check(CLI::Range(1, 1000));
  app->add_option("--probe-gb", args->probe_gb, "Size of the bandwidth probe's buffer (well above the last-level cache)")
      ->check(CLI::Range(0.01, 256.0));
  CLI::Option* mtp = app->add_flag("--mtp", args->mtp,
                                   "Also time speculative decoding's draft + verify step against a plain step "
                                   "(at --batch), with the bytes each must read");
  app->add_option("--draft-tokens", args->draft_tokens, "Drafts per sequence and step (with --mtp)")
      ->check(CLI::Range(1, 8))
      ->needs(mtp);
  CLI::Option* sweep = app->add_flag(
      "--sweep", args->sweep,
      "Also prefill at several prompt lengths and decode at several batch sizes (each --repeat times, -n steps), "
      "each next to the measured peak of the matmul math (--math) and the bandwidth ceiling");
  app->add_option("--sweep-prompts", args->sweep_prompts, "Prompt lengths of --sweep (default 16,128,512,2048)")
      ->delimiter(',')
      ->check(CLI::Range(int64_t(1), int64_t(1) << 24))
      ->needs(sweep);
  app->add_option("--sweep-batches", args->sweep_batches, "Batch sizes of --sweep (default 1,2,4,8,16)")
      ->delimiter(',')
      ->check(CLI::Range(1, 4096))
      ->needs(sweep);
  app->add_flag("--profile", args->o.profile,
                "Also account the last run's decode step product by product: each part of the model's weight bytes, "
                "time and read rate per token next to the bandwidth probe, and the time outside the products");
  app->add_flag("--json", args->json, "Print the report as JSON");
  app->add_flag("--json-mask", args->json_mask,
                "Also time constrained decoding's token mask per token (random outputs of --json-schema FILE, "
                "or a built-in schema) next to the decode step");
  app->add_option("--json-schema", args->json_output.json_schema, "Schema for --json-mask");
  app->add_option("--tokenizer", args->tokenizer, "Tokenizer directory for --json-mask (default: the model's)");
  return {app, [args] { return run_bench_command(*args); }};
}

}  // namespace

DSV3_REGISTER_COMMAND("bench", add_bench);

}  // namespace dsv3::cli
