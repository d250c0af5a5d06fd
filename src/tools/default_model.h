#pragma once
// The built-in default model: published weights cannot ship, so commands run without
// --model use a small random-weight checkpoint of the V3 architecture (FP8, MTP, group
// routing, YaRN, DeepSeek-V3's vocabulary and tokenizer), written by make-random on first
// use. Its output is noise: it exists to try dsv3 out and to exercise every code path.

#include <string>

#include "base/result.h"

namespace dsv3 {

// Where the default model lives: $DSV3_DEFAULT_MODEL, else $XDG_CACHE_HOME/dsv3/default-v1,
// else ~/.cache/dsv3/default-v1.
std::string default_model_dir();

// The default model's config.json contents.
const char* default_model_config();

// Returns the default model's directory, creating it first if needed (announced on stderr).
// `tokenizer_dir` (may be empty) supplies tokenizer.json / tokenizer_config.json.
Result<std::string> ensure_default_model(const std::string& tokenizer_dir);

}  // namespace dsv3
