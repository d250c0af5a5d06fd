#include "grammar/token_trie.h"

#include <algorithm>

namespace dsv3::grammar {

TokenTrie::TokenTrie(std::vector<std::pair<int32_t, std::string>> tokens) {
  std::erase_if(tokens, [](const auto& t) { return t.second.empty(); });
  std::sort(tokens.begin(), tokens.end(), [](const auto& a, const auto& b) { return a.second < b.second; });
  for (const auto& t : tokens) max_depth_ = std::max(max_depth_, t.second.size());
  nodes_.reserve(tokens.size() * 2);
  build(tokens, 0, tokens.size(), 0, 0);
}

// Entries [lo, hi) of `sorted` share their first `depth` bytes: they form one node (those of
// exactly `depth` bytes end here, and sort first) and its children, one per next byte.
void TokenTrie::build(const std::vector<std::pair<int32_t, std::string>>& sorted, size_t lo, size_t hi, uint16_t depth,
                      uint8_t byte) {
  const size_t index = nodes_.size();
  nodes_.push_back({});
  nodes_[index].depth = depth;
  nodes_[index].byte = byte;
  nodes_[index].ids_begin = static_cast<uint32_t>(ids_.size());
  while (lo < hi && sorted[lo].second.size() == depth) ids_.push_back(sorted[lo++].first);
  nodes_[index].ids_end = static_cast<uint32_t>(ids_.size());
  while (lo < hi) {
    const char next = sorted[lo].second[depth];
    size_t end = lo;
    while (end < hi && sorted[end].second[depth] == next) ++end;
    build(sorted, lo, end, static_cast<uint16_t>(depth + 1), static_cast<uint8_t>(next));
    lo = end;
  }
  nodes_[index].subtree_end = static_cast<uint32_t>(nodes_.size());
}

}  // namespace dsv3::grammar
