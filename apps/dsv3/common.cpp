#include "common.h"

#include <cerrno>
#include <cstdlib>
#include <filesystem>

#include "kernels/amx.h"
#include "kernels/dispatch.h"
#include "tools/default_model.h"

namespace dsv3::cli {

void add_model_options(CLI::App* app, ModelArgs& args) {
  app->add_option("--model", args.model, "Checkpoint directory (HuggingFace layout); default: the built-in random model");
  app->add_option("-t,--threads", args.threads, "Worker threads (default: one per available core)")->check(CLI::Range(0, 4096));
  app->add_option("--kernels", args.kernels, "Kernel path: scalar, avx2 or avx512 (default: the best this CPU supports)");
  app->add_option("--attention", args.attention, "MLA form: absorbed (latent cache, default) or naive")
      ->check(CLI::IsMember({"absorbed", "naive"}));
  app->add_option("--ctx", args.ctx, "Context limit in tokens (default: max_position_embeddings; serve: 16384)")
      ->check(CLI::Range(int64_t(1), int64_t(1) << 31));
}

std::string bundled_tokenizer_dir() {
  for (std::string dir : {std::string(DSV3_SOURCE_DIR) + "/assets/deepseek-v3-tokenizer",
                          std::string(DSV3_SOURCE_DIR) + "/../shared/fixtures/tokenizer"}) {
    if (std::filesystem::exists(dir + "/tokenizer.json")) return dir;
  }
  return "";
}

Result<std::string> resolve_model_dir(const std::string& model) {
  if (!model.empty()) return model;
  return ensure_default_model(bundled_tokenizer_dir());
}

Result<std::unique_ptr<Model>> load_model(const ModelArgs& args, bool load_mtp) {
  DSV3_TRY(kernels::select_isa_from_env());
  DSV3_TRY(kernels::set_amx_mode_from_env());
  if (!args.kernels.empty()) {
    DSV3_ASSIGN(kernels::Isa isa, kernels::parse_isa(args.kernels));
    DSV3_TRY(kernels::select_isa(isa));
  }
  DSV3_ASSIGN(std::string dir, resolve_model_dir(args.model));
  ModelOptions opt;
  opt.threads = args.threads;
  opt.load_mtp = load_mtp;
  opt.attention = args.attention == "naive" ? AttentionImpl::Naive : AttentionImpl::Absorbed;
  opt.max_context = args.ctx;
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
