#pragma once
// One request inside the engine: its prompt, how far prefill has come, what it generated,
// its KV cache and its sampler. The scheduler moves it from waiting to running to finished;
// the client sees it only through its RequestHandle.

#include <cstdint>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "model/kv_cache.h"
#include "runtime/request.h"
#include "runtime/sampler.h"

namespace dsv3 {

struct Sequence {
  std::shared_ptr<RequestHandle> handle;
  RequestParams params;
  std::vector<int32_t> prompt;
  int64_t prefilled = 0;        // prompt tokens whose rows the cache holds
  int64_t cached_tokens = 0;    // of them, copied from the prefix cache at admission
  std::vector<int32_t> output;  // generated tokens; the cache holds rows for all but the last
  KVCache cache;
  Sampler sampler;
  // Speculative decoding: the tokens the MTP module proposes after the next one, verified at
  // the next step; and that step's input, the last generated token followed by the drafts.
  std::vector<int32_t> draft;
  std::vector<int32_t> decode_input;
  // The cache's MTP layer has a row for every position the main layers have: the sequence can
  // draft. Lost for good when a step skips the MTP (drafting does not pay).
  bool mtp_synced = false;
  bool finished = false;
  FinishReason finish = FinishReason::Length;  // how, once finished
  std::string error;                           // why, when finish is Failed

  Sequence(std::shared_ptr<RequestHandle> h, RequestParams p, std::vector<int32_t> tokens, KVCache c)
      : handle(std::move(h)), params(std::move(p)), prompt(std::move(tokens)), cache(std::move(c)),
        sampler(params.sampling, params.max_new_tokens) {}

  bool prefill_done() const { return prefilled == static_cast<int64_t>(prompt.size()); }
  // The prompt and what was generated after it: the tokens the cache's rows stand for
  // (all but the last generated one, which has no row until it is fed back).
  std::vector<int32_t> all_tokens() const {
    std::vector<int32_t> t = prompt;
    t.insert(t.end(), output.begin(), output.end());
    return t;
  }
};

}  // namespace dsv3
