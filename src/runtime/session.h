#pragma once
// A sequence's KV cache kept across generations (a chat conversation): each call gets the
// whole token sequence (e.g. the conversation re-rendered through the chat template), keeps
// the cached prefix it shares with what was computed before, and prefills only the rest.

#include <cstdint>
#include <functional>
#include <span>
#include <vector>

#include "base/result.h"
#include "model/model.h"
#include "runtime/generate.h"

namespace dsv3 {

class Session {
 public:
  explicit Session(const Model& model) : model_(model), cache_(model.new_cache()) {}

  // Generates a continuation of `prompt`. Errors: empty prompt, longer than the context,
  // bad ids, numerical failure. result.prompt_tokens counts the whole prompt;
  // reused_tokens() tells how many of them came from the cache.
  Result<GenerationResult> generate(std::span<const int32_t> prompt, const GenerateOptions& options,
                                    const std::function<bool(int32_t)>& on_token = {});
  int64_t reused_tokens() const { return reused_; }
  void clear();

 private:
  const Model& model_;
  KVCache cache_;
  std::vector<int32_t> cached_;  // the tokens whose keys/values the cache holds, in order
  int64_t reused_ = 0;
};

}  // namespace dsv3
