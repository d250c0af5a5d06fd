#pragma once
// Token text -> id for the 128k vocab entries, built at load. One flat open-addressing
// table over a single string arena: loading does 400k lookups (merges name their tokens by
// text), and a node-based std::unordered_map<std::string> spent ~40 ms of the load in cache
// misses and allocations.

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace dsv3 {

class TokenIndex {
 public:
  // Adds an entry; false when `text` is already present (the table is left unchanged).
  bool insert(std::string_view text, int32_t id);
  std::optional<int32_t> find(std::string_view text) const;
  size_t size() const { return ids_.size(); }
  void reserve(size_t entries);

 private:
  static size_t hash(std::string_view s) { return std::hash<std::string_view>()(s); }
  std::string_view text_of(uint32_t entry) const {
    return std::string_view(arena_).substr(offsets_[entry], offsets_[entry + 1] - offsets_[entry]);
  }
  void rehash(size_t slots);

  std::string arena_;
  std::vector<uint32_t> offsets_{0};  // entry i is arena_[offsets_[i], offsets_[i+1])
  std::vector<int32_t> ids_;
  std::vector<uint32_t> slots_;       // entry index + 1; 0 = empty
};

}  // namespace dsv3
