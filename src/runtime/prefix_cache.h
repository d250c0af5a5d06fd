#pragma once
// Prefix caching across requests (vLLM's automatic prefix caching, llama-server's
// cache_prompt): the KV caches of finished requests are kept, up to a byte budget, so that a
// later prompt that starts with the same tokens skips prefilling them. A chat client resends
// the whole conversation every turn, and many requests share one system prompt; on a CPU a
// 2,000-token history costs seconds of prefill per turn without this.
//
// Reuse changes no output: a cache row depends only on the tokens up to its position (every
// kernel's result is independent of the batch, the prefill chunking and the thread count),
// so the copied rows are bit for bit what prefilling the prefix again would write.
//
// Engine thread only (no locking).

#include <cstdint>
#include <span>
#include <vector>

#include "model/kv_cache.h"

namespace dsv3 {

// How many leading tokens a and b share.
int64_t common_prefix_length(std::span<const int32_t> a, std::span<const int32_t> b);

class PrefixCache {
 public:
  explicit PrefixCache(uint64_t budget_bytes) : budget_(budget_bytes) {}

  bool enabled() const { return budget_ > 0; }
  // Keeps `cache`, whose rows hold tokens[0, cache.length()), as the most recently used
  // entry; cut to its first rows when it alone is larger than the budget. Entries it extends
  // are dropped (it serves every prompt they served, and more); it is dropped itself if one
  // already extends it. Least recently used entries go past the budget.
  // `mtp_rows`: the cache's MTP layer (speculative decoding) is current for its rows.
  void offer(std::span<const int32_t> tokens, KVCache cache, bool mtp_rows = false);
  // Makes `cache` a copy of the longest cached prefix of prompt[0, size - 1) (the last token
  // is always computed: its logits choose the first new token) and returns that prefix's
  // length; 0 when nothing matches.
  // `mtp_rows` (optional): whether the copied rows include a current MTP layer.
  int64_t restore(std::span<const int32_t> prompt, KVCache* cache, bool* mtp_rows = nullptr);

  uint64_t bytes() const { return bytes_; }
  size_t entries() const { return entries_.size(); }

 private:
  struct Entry {
    std::vector<int32_t> tokens;  // of the cached rows
    KVCache cache;
    uint64_t last_use = 0;
    bool mtp_rows = false;
  };
  void evict_to(uint64_t budget);

  uint64_t budget_;
  uint64_t bytes_ = 0;
  uint64_t clock_ = 0;
  std::vector<Entry> entries_;
};

}  // namespace dsv3
