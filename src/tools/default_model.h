#pragma once
// The built-in default model: published weights cannot ship, so commands run without
// --model use a tiny model of the DeepSeek-V3 architecture (MLA, sigmoid-routed MoE, an MTP
// layer, FP8 weights, DeepSeek-V3's vocabulary and tokenizer) trained on the Brown corpus by
// scripts/train_default_model.py. Its files are committed xz-compressed under
// assets/default-model; the first use installs them, decompressed, into the cache directory.
// It writes poor English: it is there to try dsv3 out, not to answer questions.

#include <string>

#include "base/result.h"

namespace dsv3 {

// Where the default model lives: $DSV3_DEFAULT_MODEL, else $XDG_CACHE_HOME/dsv3/default-v2,
// else ~/.cache/dsv3/default-v2. (default-v1 was the random-weight model that came before;
// a retrained model needs the next name, so that no cache of the old one is reused.)
std::string default_model_dir();

// Writes the model committed in `assets_dir` (config.json, model.safetensors.index.json and
// each shard the index names as SHARD.xz) into `out_dir`, decompressed, with tokenizer.json
// and tokenizer_config.json from `tokenizer_dir`. `out_dir` must not exist; on failure it
// is removed.
Status install_default_model(const std::string& assets_dir, const std::string& tokenizer_dir,
                             const std::string& out_dir);

// Returns the default model's directory, installing it from `assets_dir` first if needed.
// Says on stderr, every time, which model this is.
Result<std::string> ensure_default_model(const std::string& assets_dir, const std::string& tokenizer_dir);

}  // namespace dsv3
