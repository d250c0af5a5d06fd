#pragma once
// Byte-level BPE by merge rank: a word (one pre-tokenizer piece, as raw bytes) starts as one
// symbol per byte and repeatedly merges the adjacent pair of lowest merge rank, leftmost
// first among equal ranks, until no adjacent pair has a merge. Same result as HF tokenizers'
// BPE::merge_word. Words of up to kSmallWord symbols use flat arrays (cache-friendly, few
// lookups); longer ones use a heap over a linked list, O(n log n), so a 1 MB piece of one
// repeated character stays fast (not quadratic).
// Words longer than kSmallWord use the heap; both give the same result (tested).

#include <cstdint>
#include <string_view>
#include <vector>

namespace dsv3 {

class MergeTable {
 public:
  struct Merge {
    int32_t rank;
    int32_t result;  // id of the merged token
  };

  // Records that (left, right) merge into `result` with `rank`; a later insert of the same
  // pair replaces the earlier (as HF's map building does).
  void insert(int32_t left, int32_t right, int32_t rank, int32_t result);
  // Prepares the lookup table; call once after all inserts.
  void finalize();
  // The merge of (left, right), or nullptr.
  const Merge* find(int32_t left, int32_t right) const {
    uint64_t key = pack(left, right);
    // Most lookups late in a word ask for pairs that have no merge; a small Bloom filter
    // (256 KB, stays in L2) answers those without touching the 4 MB slot array.
    uint64_t h = key * 0x9E3779B97F4A7C15ull;
    if (!filter_.empty()) {
      size_t bits = filter_.size() * 64 - 1;
      size_t b1 = (h >> 20) & bits, b2 = (h >> 42) & bits;
      if (!((filter_[b1 >> 6] >> (b1 & 63)) & 1) || !((filter_[b2 >> 6] >> (b2 & 63)) & 1)) return nullptr;
    }
    size_t mask = slots_.size() - 1;
    for (size_t i = hash(key) & mask;; i = (i + 1) & mask) {
      const Slot& s = slots_[i];
      if (s.key == key) return &s.merge;
      if (s.key == kEmpty) return nullptr;
    }
  }
  size_t size() const { return count_; }

 private:
  static constexpr uint64_t kEmpty = ~uint64_t{0};
  struct Slot {
    uint64_t key = kEmpty;
    Merge merge{};
  };
  static uint64_t pack(int32_t a, int32_t b) {
    return (static_cast<uint64_t>(static_cast<uint32_t>(a)) << 32) | static_cast<uint32_t>(b);
  }
  static size_t hash(uint64_t key) { return static_cast<size_t>((key * 0x9E3779B97F4A7C15ull) >> 20); }
  void grow();

  std::vector<Slot> slots_ = std::vector<Slot>(16);
  std::vector<uint64_t> filter_;  // built by finalize(); empty = no filtering
  size_t count_ = 0;
};

class Bpe {
 public:
  static constexpr size_t kSmallWord = 48;

  // byte_ids[b]: id of the token for the single byte b.
  Bpe(std::vector<int32_t> byte_ids, MergeTable merges);

  // Appends the ids of `word` (raw bytes) to `out`. Thread-safe (const, no shared state).
  void encode_word(std::string_view word, std::vector<int32_t>& out) const;
  // The two strategies, exposed so tests can check they agree.
  void encode_small(std::string_view word, std::vector<int32_t>& out) const;
  void encode_large(std::string_view word, std::vector<int32_t>& out) const;

  const MergeTable& merges() const { return merges_; }

 private:
  static constexpr int32_t kNoRank = 0x7FFFFFFF;
  // Merge of the single-byte tokens (a, b) at [a * 256 + b] (rank kNoRank when none): every
  // word starts as bytes, so its first n-1 lookups hit this 512 KB table, not the hash table.
  const MergeTable::Merge& byte_pair(unsigned char a, unsigned char b) const { return byte_pairs_[a * 256u + b]; }

  std::vector<int32_t> byte_ids_;
  MergeTable merges_;
  std::vector<MergeTable::Merge> byte_pairs_;
};

}  // namespace dsv3
