#include "runtime/prefix_cache.h"

#include <algorithm>

namespace dsv3 {

int64_t common_prefix_length(std::span<const int32_t> a, std::span<const int32_t> b) {
  const size_t n = std::min(a.size(), b.size());
  return static_cast<int64_t>(std::mismatch(a.begin(), a.begin() + static_cast<std::ptrdiff_t>(n), b.begin()).first -
                              a.begin());
}

void PrefixCache::offer(std::span<const int32_t> tokens, KVCache cache, bool mtp_rows) {
  if (!enabled() || cache.length() <= 0 || static_cast<int64_t>(tokens.size()) < cache.length()) return;
  // A cache larger than the whole budget keeps the prefix that fits: a long chat still
  // starts its next turn from most of its history.
  const int64_t fits = static_cast<int64_t>(budget_ / std::max<uint64_t>(1, cache.row_bytes()));
  if (fits <= 0) return;
  cache.truncate(fits);
  const int64_t n = cache.length();
  tokens = tokens.first(static_cast<size_t>(n));
  for (Entry& e : entries_)
    if (static_cast<int64_t>(e.tokens.size()) >= n && common_prefix_length(e.tokens, tokens) == n) {
      e.last_use = ++clock_;
      return;
    }
  std::erase_if(entries_, [&](const Entry& e) {
    const bool extended = common_prefix_length(e.tokens, tokens) == static_cast<int64_t>(e.tokens.size());
    if (extended) bytes_ -= e.cache.bytes();
    return extended;
  });
  cache.shrink_to_fit();
  evict_to(budget_ - cache.bytes());
  bytes_ += cache.bytes();
  entries_.push_back({std::vector<int32_t>(tokens.begin(), tokens.end()), std::move(cache), ++clock_, mtp_rows});
}

int64_t PrefixCache::restore(std::span<const int32_t> prompt, KVCache* cache, bool* mtp_rows) {
  if (entries_.empty() || prompt.size() < 2) return 0;
  const std::span<const int32_t> usable = prompt.first(prompt.size() - 1);
  Entry* best = nullptr;
  int64_t best_len = 0;
  for (Entry& e : entries_) {
    const int64_t len = common_prefix_length(e.tokens, usable);
    if (len > best_len) best = &e, best_len = len;
  }
  if (!best) return 0;
  best->last_use = ++clock_;
  cache->assign_prefix(best->cache, best_len);
  if (mtp_rows) *mtp_rows = best->mtp_rows;
  return best_len;
}

void PrefixCache::evict_to(uint64_t budget) {
  while (bytes_ > budget && !entries_.empty()) {
    auto oldest = std::min_element(entries_.begin(), entries_.end(),
                                   [](const Entry& a, const Entry& b) { return a.last_use < b.last_use; });
    bytes_ -= oldest->cache.bytes();
    entries_.erase(oldest);
  }
}

}  // namespace dsv3
