#include "tools/default_model.h"

#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <filesystem>

#include "base/thread_pool.h"
#include "tools/make_random.h"

namespace dsv3 {
namespace fs = std::filesystem;

std::string default_model_dir() {
  if (const char* p = std::getenv("DSV3_DEFAULT_MODEL"); p && *p) return p;
  if (const char* x = std::getenv("XDG_CACHE_HOME"); x && *x) return std::string(x) + "/dsv3/default-v1";
  const char* home = std::getenv("HOME");
  return std::string(home && *home ? home : "/tmp") + "/.cache/dsv3/default-v1";
}

const char* default_model_config() {
  return R"({
  "architectures": ["DeepseekV3ForCausalLM"],
  "model_type": "deepseek_v3",
  "vocab_size": 129280,
  "hidden_size": 256,
  "intermediate_size": 768,
  "moe_intermediate_size": 128,
  "num_hidden_layers": 4,
  "first_k_dense_replace": 1,
  "num_attention_heads": 8,
  "num_key_value_heads": 8,
  "q_lora_rank": 192,
  "kv_lora_rank": 128,
  "qk_nope_head_dim": 32,
  "qk_rope_head_dim": 16,
  "v_head_dim": 32,
  "n_routed_experts": 32,
  "num_experts_per_tok": 4,
  "n_group": 4,
  "topk_group": 2,
  "n_shared_experts": 1,
  "routed_scaling_factor": 2.5,
  "scoring_func": "sigmoid",
  "topk_method": "noaux_tc",
  "norm_topk_prob": true,
  "moe_layer_freq": 1,
  "hidden_act": "silu",
  "rms_norm_eps": 1e-06,
  "rope_theta": 10000,
  "rope_scaling": {"type": "yarn", "factor": 40, "original_max_position_embeddings": 4096,
                   "beta_fast": 32, "beta_slow": 1, "mscale": 1.0, "mscale_all_dim": 1.0},
  "max_position_embeddings": 163840,
  "num_nextn_predict_layers": 1,
  "tie_word_embeddings": false,
  "bos_token_id": 0,
  "eos_token_id": 1,
  "torch_dtype": "bfloat16",
  "quantization_config": {"activation_scheme": "dynamic", "fmt": "e4m3", "quant_method": "fp8",
                          "weight_block_size": [128, 128]}
})";
}

Result<std::string> ensure_default_model(const std::string& tokenizer_dir) {
  const std::string dir = default_model_dir();
  if (fs::exists(dir + "/config.json")) {
    // Every run says so, not only the first: the output must never pass for a real model's.
    std::fprintf(stderr, "dsv3: no --model given: using the built-in default model (RANDOM weights, output is noise) in %s\n",
                 dir.c_str());
    return dir;
  }
  std::fprintf(stderr,
               "dsv3: no --model given: creating the built-in default model in %s\n"
               "dsv3: it has RANDOM weights (DeepSeek-V3 architecture, tiny sizes): its output is noise, it is there to "
               "try dsv3 out. Use --model DIR for a real checkpoint.\n",
               dir.c_str());
  // Build in a private temporary directory, then rename: concurrent first runs never see a
  // half-written model.
  std::error_code ec;
  fs::create_directories(fs::path(dir).parent_path(), ec);
  std::string tmp = dir + ".tmp-" + std::to_string(::getpid());
  fs::remove_all(tmp, ec);
  MakeRandomOptions opt;
  opt.out_dir = tmp;
  opt.seed = 1;
  opt.tokenizer_dir = tokenizer_dir;
  ThreadPool pool;
  auto config = OrderedJson::parse(default_model_config());
  Status st = make_random_checkpoint(config, opt, pool);
  if (!st.ok()) {
    fs::remove_all(tmp, ec);
    return std::move(st).error().context("creating the default model");
  }
  fs::rename(tmp, dir, ec);
  if (ec) {
    fs::remove_all(tmp, ec);
    if (!fs::exists(dir + "/config.json")) return error_f("cannot create the default model in '%s'", dir.c_str());
  }
  return dir;
}

}  // namespace dsv3
