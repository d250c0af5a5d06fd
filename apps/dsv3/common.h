#pragma once
// Options and helpers shared by the commands that run a model.

#include <memory>
#include <string>
#include <vector>

#include <CLI/CLI.hpp>

#include "base/result.h"
#include "model/model.h"
#include "runtime/engine.h"
#include "runtime/sampler.h"
#include "tokenizer/tokenizer.h"

namespace dsv3::cli {

struct ModelArgs {
  std::string model;             // empty: the built-in default model
  int threads = 0;
  std::string kernels;           // scalar | avx2 | avx512 (default: best for this CPU)
  std::string attention = "absorbed";
  std::string math;              // exact | bf16 (default: exact, or DSV3_MATH)
  int64_t ctx = 0;               // context limit (0: the model's max_position_embeddings)
  bool mlock = false;            // lock the weights in memory
  bool no_mmap = false;          // read the weights into memory instead of mapping them
};

// Adds --model, --threads, --kernels, --math, --attention, --ctx, --mlock, --no-mmap to a subcommand.
void add_model_options(CLI::App* app, ModelArgs& args);

// Selects kernels, resolves the default model and loads it.
Result<std::unique_ptr<Model>> load_model(const ModelArgs& args, bool load_mtp);

// The model directory the args name (creating the default model when none is given).
Result<std::string> resolve_model_dir(const std::string& model);

// Parses "0,17,923" into token ids.
Result<std::vector<int32_t>> parse_token_list(const std::string& text);

// Directory holding tokenizer.json / tokenizer_config.json for the default model, or "".
std::string bundled_tokenizer_dir();
// Directory holding the default model's committed (compressed) files, or "".
std::string bundled_default_model_dir();

// Adds --tokenizer DIR (default: the model directory) to a subcommand.
void add_tokenizer_option(CLI::App* app, std::string& dir);
// The tokenizer in `tokenizer_dir`, or else in `model_dir`.
Result<std::unique_ptr<Tokenizer>> load_tokenizer(const std::string& model_dir, const std::string& tokenizer_dir);
// Error unless every id the tokenizer can produce is a row of the model's embedding (a
// tokenizer from another model would fail at the first prompt with an id out of range).
Status check_tokenizer_fits(const Tokenizer& tokenizer, const Model& model, const std::string& tokenizer_dir);

// --temperature, --top-p, --top-k, --seed of the commands that generate.
struct SamplingArgs {
  float temperature = 0.6f;
  float top_p = 0.95f;
  int top_k = 0;
  int64_t seed = -1;  // -1: a random seed
};
void add_sampling_options(CLI::App* app, SamplingArgs& args, const std::string& seed_help);
// The sampling parameters the args ask for, drawing from `seed`.
SamplingParams sampling_params(const SamplingArgs& args, uint64_t seed);
// --seed, or a random one when none was given.
uint64_t seed_or_random(const SamplingArgs& args);

// --json-schema FILE / --json: constrained decoding, the answer a JSON value of the schema in
// FILE (the subset docs/server.md lists) or any JSON object.
struct JsonOutputArgs {
  std::string json_schema;
  bool json = false;
};
void add_json_output_options(CLI::App* app, JsonOutputArgs& args);
// The grammar the args ask for (null for free text), ending on the tokenizer's EOS. Error names
// the schema file and the keyword's path.
Result<std::shared_ptr<const grammar::JsonGrammar>> json_grammar(const JsonOutputArgs& args, const Tokenizer& tokenizer);

// --mtp, --draft-tokens, --draft-policy: speculative decoding with the checkpoint's MTP module.
struct SpeculativeArgs {
  bool mtp = false;
  int draft_tokens = 1;
  std::string policy = "adaptive";  // adaptive | always
};
void add_speculative_options(CLI::App* app, SpeculativeArgs& args);
// Sets the engine's drafting from the args (nothing without --mtp).
void apply_speculative(const SpeculativeArgs& args, EngineOptions* options);

// Validator: a finite number in [lo, hi] (CLI::Range lets NaN through).
CLI::Validator finite_in(double lo, double hi);
// An integer in [lo, hi], written in full: CLI11's own Range accepts 9223372036854775808 for
// an int64 (it saturates the conversion) and 1.5.
template <typename T>  // int64_t or uint64_t
CLI::Validator integer_in(T lo, T hi);
// Refuses an empty value ("<what> is empty").
CLI::Validator non_empty(const char* what);

}  // namespace dsv3::cli
