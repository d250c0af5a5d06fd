#pragma once
// The vocabulary's token byte strings as a trie laid out in preorder: node i's subtree is
// nodes [i, subtree_end), so a walk that finds a prefix invalid skips every token under it in
// one jump. A walk visits only the prefixes a matcher accepts, not the whole vocabulary.

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

namespace dsv3::grammar {

class TokenTrie {
 public:
  struct Node {
    uint32_t subtree_end = 0;  // first node after this node's subtree
    uint32_t ids_begin = 0, ids_end = 0;  // tokens whose bytes end here: ids()[ids_begin, ids_end)
    uint16_t depth = 0;        // bytes from the root (the root is 0)
    uint8_t byte = 0;          // the byte on the edge into this node
  };

  TokenTrie() = default;
  // (id, bytes) of every token the trie holds; empty byte strings are left out.
  explicit TokenTrie(std::vector<std::pair<int32_t, std::string>> tokens);

  const std::vector<Node>& nodes() const { return nodes_; }
  const std::vector<int32_t>& ids() const { return ids_; }
  size_t max_depth() const { return max_depth_; }

 private:
  void build(const std::vector<std::pair<int32_t, std::string>>& sorted, size_t lo, size_t hi, uint16_t depth,
             uint8_t byte);

  std::vector<Node> nodes_;
  std::vector<int32_t> ids_;
  size_t max_depth_ = 0;
};

}  // namespace dsv3::grammar
