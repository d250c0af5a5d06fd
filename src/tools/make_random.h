#pragma once
// make-random: writes a random-weight checkpoint in the HuggingFace layout for any config
// of the family (sharded safetensors, index, config.json; FP8 projections with 128x128
// block scales like the published files, or all BF16). Deterministic per seed. Serves the
// tests, the benchmarks and the built-in default model, and lets a user try a config's
// shapes (e.g. DeepSeek-V3's cut to a few layers) before downloading hundreds of GB.

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "base/json.h"
#include "base/result.h"
#include "base/thread_pool.h"
#include "model/weights.h"
#include "tools/random_weights.h"

namespace dsv3 {

struct MakeRandomOptions {
  std::string out_dir;
  uint64_t seed = 0;
  std::optional<std::string> dtype;  // "fp8" or "bf16"; default: fp8 iff the config has quantization_config
  uint64_t shard_bytes = uint64_t(4) << 30;
  std::string tokenizer_dir;         // copy tokenizer.json / tokenizer_config.json from here
  bool progress = false;             // progress lines on stderr
};

// Applies `key=value` overrides to a config (`a.b=v` reaches nested objects; the value is
// parsed as JSON when it parses, else taken as a string). Errors name the override.
Status apply_config_overrides(OrderedJson& config, const std::vector<std::string>& sets);

// Writes the checkpoint for `config` (config.json contents). Files are written under
// temporary names and renamed at the end, so an interrupted run leaves nothing that looks
// complete.
Status make_random_checkpoint(const OrderedJson& config, const MakeRandomOptions& options, ThreadPool& pool);

// How make-random draws the values of one spec'd tensor (exposed for tests).
RandomTensor random_plan_for(const TensorSpec& spec);

}  // namespace dsv3
