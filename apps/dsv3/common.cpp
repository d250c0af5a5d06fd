#include "common.h"

#include <cerrno>
#include <charconv>
#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <limits>
#include <random>

#include "base/mapped_file.h"
#include "command.h"
#include "dist/communicator.h"
#include "kernels/kernel_choice.h"
#include "server/json_vocabulary.h"
#include "tools/default_model.h"

namespace dsv3::cli {

void add_model_options(CLI::App* app, ModelArgs& args) {
  app->add_option("--model", args.model, "Checkpoint directory (HuggingFace layout); default: the built-in tiny model trained on the Brown corpus");
  app->add_option("-t,--threads", args.threads, "Worker threads (default: one per available core)")->check(CLI::Range(0, 4096));
  app->add_option("--kernels", args.kernels, "Kernel path: scalar, avx2 or avx512 (default: the best this CPU supports)")
      ->check(CLI::IsMember({"scalar", "avx2", "avx512"}));
  app->add_option("--math", args.math,
                  "How FP8 weights are multiplied: exact (float32 FMAs, the default, held to DeepSeek's float32 "
                  "goldens) or bf16 (AVX512-BF16 dot products, activations rounded to bf16: ~2x the multiply-adds "
                  "per instruction for prompt processing; logits move by less than DeepSeek's own bfloat16 run moves "
                  "them). Also DSV3_MATH")
      ->check(CLI::IsMember({"exact", "bf16"}));
  app->add_option("--attention", args.attention, "MLA form: absorbed (latent cache, default) or naive")
      ->check(CLI::IsMember({"absorbed", "naive"}));
  app->add_option("--ctx", args.ctx, "Context limit in tokens (default: max_position_embeddings; serve: 16384)")
      ->check(CLI::Range(int64_t(1), int64_t(1) << 31));
  app->add_flag("--mlock", args.mlock,
                "Lock the weights in memory so that the system never evicts them (swap, page-cache reclaim, "
                "proactive reclaim of idle files): an idle server does not read them from disk again. Needs a "
                "memory-lock limit (ulimit -l) as large as the weights, or CAP_IPC_LOCK; without it, a warning "
                "and the run goes on unlocked");
  app->add_flag("--no-mmap", args.no_mmap,
                "Read the weight files into memory (transparent huge pages) instead of mapping them: a slower "
                "load and a private copy of whole shard files (the page cache's is dropped), but 2 MB pages "
                "whatever the page cache holds (mapped weights are in 2 MB pages only where it holds the files in "
                "2 MB folios; bench shows the share): fewer TLB misses, and a server that idled answers its next "
                "request at full speed where the kernel samples page accesses (DAMON) under a hypervisor");
}

std::string bundled_tokenizer_dir() {
  std::string dir = std::string(DSV3_SOURCE_DIR) + "/assets/deepseek-v3-tokenizer";
  return std::filesystem::exists(dir + "/tokenizer.json") ? dir : "";
}

std::string bundled_default_model_dir() {
  std::string dir = std::string(DSV3_SOURCE_DIR) + "/assets/default-model";
  return std::filesystem::exists(dir + "/config.json") ? dir : "";
}

void add_tokenizer_option(CLI::App* app, std::string& dir) {
  app->add_option("--tokenizer", dir, "Directory with tokenizer.json / tokenizer_config.json (default: --model)");
}

Result<std::unique_ptr<Tokenizer>> load_tokenizer(const std::string& model_dir, const std::string& tokenizer_dir) {
  return Tokenizer::load(tokenizer_dir.empty() ? model_dir : tokenizer_dir);
}

Status check_tokenizer_fits(const Tokenizer& tokenizer, const Model& model, const std::string& tokenizer_dir) {
  if (tokenizer.vocab_size() <= model.vocab_size()) return {};
  return error_f("the tokenizer in %s has ids up to %d, but the model's vocab_size is %lld (config.json): they do not "
                 "belong together (point --tokenizer at the model's own tokenizer)",
                 tokenizer_dir.c_str(), tokenizer.vocab_size() - 1, static_cast<long long>(model.vocab_size()));
}

void add_sampling_options(CLI::App* app, SamplingArgs& args, const std::string& seed_help) {
  app->add_option("--temperature", args.temperature, "Sampling temperature; 0 = greedy")->check(finite_in(0, 100));
  app->add_option("--top-p", args.top_p, "Nucleus sampling mass")->check(finite_in(0, 1));
  app->add_option("--top-k", args.top_k, "Sample among the k most likely tokens (0 = all)")->check(CLI::Range(0, 1 << 30));
  app->add_option("--seed", args.seed, seed_help)->check(integer_in<int64_t>(-1, std::numeric_limits<int64_t>::max()));
}

SamplingParams sampling_params(const SamplingArgs& args, uint64_t seed) {
  SamplingParams p;
  p.temperature = args.temperature;
  p.top_p = args.top_p;
  p.top_k = args.top_k;
  p.seed = seed;
  return p;
}

void add_json_output_options(CLI::App* app, JsonOutputArgs& args) {
  CLI::Option* schema = app->add_option("--json-schema", args.json_schema,
                                        "Answer with JSON matching this JSON Schema file (constrained decoding)");
  app->add_flag("--json", args.json, "Answer with a JSON object (constrained decoding)")->excludes(schema);
}

Result<std::shared_ptr<const grammar::JsonGrammar>> json_grammar(const JsonOutputArgs& args, const Tokenizer& tokenizer) {
  if (args.json_schema.empty() && !args.json) return std::shared_ptr<const grammar::JsonGrammar>();
  std::shared_ptr<const grammar::Schema> schema;
  if (args.json) {
    schema = std::make_shared<grammar::Schema>(grammar::any_json_object_schema());
  } else {
    auto text = read_text_file(args.json_schema, 16u << 20);
    if (!text.ok()) return std::move(text).error();
    auto json = parse_json(*text, args.json_schema);
    if (!json.ok()) return std::move(json).error();
    auto compiled = grammar::compile_json_schema(*json, "schema");
    if (!compiled.ok()) return std::move(compiled).error().context(args.json_schema);
    schema = std::make_shared<grammar::Schema>(std::move(compiled).value());
  }
  std::vector<int32_t> ends;
  if (tokenizer.eos_id()) ends.push_back(*tokenizer.eos_id());
  return std::shared_ptr<const grammar::JsonGrammar>(std::make_shared<grammar::JsonGrammar>(
      grammar::JsonGrammar{schema, server::json_token_vocabulary(tokenizer), ends}));
}

uint64_t seed_or_random(const SamplingArgs& args) {
  return args.seed >= 0 ? static_cast<uint64_t>(args.seed) : static_cast<uint64_t>(std::random_device{}());
}

template <typename T>
CLI::Validator integer_in(T lo, T hi) {
  const std::string range = "[" + std::to_string(lo) + ", " + std::to_string(hi) + "]";
  return CLI::Validator(
      [lo, hi, range](std::string& s) -> std::string {
        T v = 0;
        const auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
        if (s.empty() || ec != std::errc() || end != s.data() + s.size() || v < lo || v > hi)
          return "'" + s.substr(0, 40) + "' is not an integer in " + range;
        return "";
      },
      "INT in " + range);
}
template CLI::Validator integer_in<int64_t>(int64_t, int64_t);
template CLI::Validator integer_in<uint64_t>(uint64_t, uint64_t);

CLI::Validator non_empty(const char* what) {
  return CLI::Validator([what](std::string& s) { return s.empty() ? std::string(what) + " is empty" : std::string(); },
                        "TEXT");
}

void add_speculative_options(CLI::App* app, SpeculativeArgs& args) {
  CLI::Option* mtp = app->add_flag("--mtp", args.mtp,
                                   "Speculative decoding with the checkpoint's MTP module (same output, fewer steps "
                                   "where drafts are kept)");
  app->add_option("--draft-tokens", args.draft_tokens, "Tokens the MTP module drafts per step (with --mtp)")
      ->check(CLI::Range(1, 8))
      ->needs(mtp);
  app->add_option("--draft-policy", args.policy,
                  "adaptive: draft only where measured costs and acceptance say it pays; always: every step")
      ->check(CLI::IsMember({"adaptive", "always"}))
      ->needs(mtp);
}

void apply_speculative(const SpeculativeArgs& args, EngineOptions* options) {
  options->draft_tokens = args.mtp ? args.draft_tokens : 0;
  options->draft_policy_adaptive = args.policy == "adaptive";
}

CLI::Validator finite_in(double lo, double hi) {
  return CLI::Validator(
      [lo, hi](std::string& s) -> std::string {
        char* end = nullptr;
        const double v = std::strtod(s.c_str(), &end);
        if (s.empty() || *end != '\0' || !std::isfinite(v) || v < lo || v > hi)
          return str_f("'%s' is not a number in [%g, %g]", s.substr(0, 40).c_str(), lo, hi);
        return "";
      },
      str_f("FLOAT in [%g - %g]", lo, hi));
}

Result<std::string> resolve_model_dir(const std::string& model) {
  if (!model.empty()) {
    std::error_code ec;
    if (!std::filesystem::is_directory(model, ec))
      return Error("--model " + model + (std::filesystem::exists(model, ec) ? ": not a directory" : ": no such directory"));
    return model;
  }
  return ensure_default_model(bundled_default_model_dir(), bundled_tokenizer_dir());
}

Result<std::unique_ptr<Model>> load_model(const ModelArgs& args, bool load_mtp) {
  ModelOptions opt;
  // The environment's choices, then the flags over them; Model::load applies them on every rank.
  DSV3_ASSIGN(opt.kernels, kernels::kernel_choice_from_env());
  if (!args.math.empty()) {
    DSV3_ASSIGN(opt.kernels.math, kernels::parse_matmul_math(args.math).context("--math"));
  }
  if (!args.kernels.empty()) {
    DSV3_ASSIGN(opt.kernels.isa, kernels::parse_isa(args.kernels).context("--kernels"));
  }
  DSV3_ASSIGN(std::string dir, resolve_model_dir(args.model));
  opt.threads = args.threads;
  opt.load_mtp = load_mtp;
  opt.attention = args.attention == "naive" ? AttentionImpl::Naive : AttentionImpl::Absorbed;
  opt.max_context = args.ctx;
  opt.prefault = true;  // the commands that load a model compute with it (llama.cpp maps with MAP_POPULATE)
  opt.lock_memory = args.mlock;
  opt.read_into_memory = args.no_mmap;
  opt.comm = &world();
  return Model::load(dir, opt);
}

Result<std::vector<int32_t>> parse_token_list(const std::string& text) {
  std::vector<int32_t> out;
  size_t start = 0;
  while (start <= text.size()) {
    size_t comma = text.find(',', start);
    std::string item = text.substr(start, comma == std::string::npos ? std::string::npos : comma - start);
    while (!item.empty() && item.front() == ' ') item.erase(item.begin());
    while (!item.empty() && item.back() == ' ') item.pop_back();
    if (item.empty()) return Error("--tokens: empty entry in '" + text.substr(0, 60) + "'");
    char* end = nullptr;
    errno = 0;
    long long v = std::strtoll(item.c_str(), &end, 10);
    if (*end != '\0' || errno == ERANGE || v < 0 || v > INT32_MAX)
      return Error("--tokens: '" + item.substr(0, 30) + "' is not a non-negative token id");
    out.push_back(static_cast<int32_t>(v));
    if (comma == std::string::npos) break;
    start = comma + 1;
  }
  return out;
}

}  // namespace dsv3::cli
