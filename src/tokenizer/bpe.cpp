#include "tokenizer/bpe.h"

#include <limits>
#include <queue>

namespace dsv3 {

void MergeTable::insert(int32_t left, int32_t right, int32_t rank, int32_t result) {
  if ((count_ + 1) * 2 > slots_.size()) grow();
  uint64_t key = pack(left, right);
  size_t mask = slots_.size() - 1;
  for (size_t i = hash(key) & mask;; i = (i + 1) & mask) {
    Slot& s = slots_[i];
    if (s.key == key) {
      s.merge = {rank, result};
      return;
    }
    if (s.key == kEmpty) {
      s.key = key;
      s.merge = {rank, result};
      ++count_;
      return;
    }
  }
}

void MergeTable::grow() {
  std::vector<Slot> old = std::move(slots_);
  slots_.assign(old.size() * 2, Slot{});
  count_ = 0;
  for (const Slot& s : old)
    if (s.key != kEmpty) insert(static_cast<int32_t>(s.key >> 32), static_cast<int32_t>(s.key & 0xFFFFFFFFu),
                                s.merge.rank, s.merge.result);
}

void MergeTable::finalize() {
  // Keep the load factor at or below 1/4 so that probes stay short.
  while (count_ * 4 > slots_.size()) grow();
}

void Bpe::encode_word(std::string_view word, std::vector<int32_t>& out) const {
  if (word.size() == 1) {
    out.push_back(byte_ids_[static_cast<unsigned char>(word[0])]);
  } else if (word.size() <= kSmallWord) {
    encode_small(word, out);
  } else {
    encode_large(word, out);
  }
}

void Bpe::encode_small(std::string_view word, std::vector<int32_t>& out) const {
  constexpr int32_t kNone = std::numeric_limits<int32_t>::max();
  int32_t ids[kSmallWord], ranks[kSmallWord], results[kSmallWord];  // ranks[i]: pair (i, i+1)
  size_t n = word.size();
  if (n > kSmallWord) {
    encode_large(word, out);
    return;
  }
  for (size_t i = 0; i < n; ++i) ids[i] = byte_ids_[static_cast<unsigned char>(word[i])];
  auto look = [&](size_t i) {
    const MergeTable::Merge* m = merges_.find(ids[i], ids[i + 1]);
    ranks[i] = m ? m->rank : kNone;
    results[i] = m ? m->result : -1;
  };
  for (size_t i = 0; i + 1 < n; ++i) look(i);
  while (n > 1) {
    size_t best = 0;
    int32_t best_rank = kNone;
    for (size_t i = 0; i + 1 < n; ++i)
      if (ranks[i] < best_rank) best_rank = ranks[i], best = i;  // strict <: leftmost among ties
    if (best_rank == kNone) break;
    ids[best] = results[best];
    for (size_t i = best + 1; i + 1 < n; ++i) {
      ids[i] = ids[i + 1];
      ranks[i] = ranks[i + 1];
      results[i] = results[i + 1];
    }
    --n;
    if (best > 0) look(best - 1);
    if (best + 1 < n) look(best);
  }
  out.insert(out.end(), ids, ids + n);
}

void Bpe::encode_large(std::string_view word, std::vector<int32_t>& out) const {
  // Symbols form a doubly linked list over positions; a symbol is identified by the byte
  // position it starts at, so "leftmost" is "smallest position".
  size_t n = word.size();
  std::vector<int32_t> id(n), prev(n), next(n);
  std::vector<uint8_t> alive(n, 1);
  for (size_t i = 0; i < n; ++i) {
    id[i] = byte_ids_[static_cast<unsigned char>(word[i])];
    prev[i] = static_cast<int32_t>(i) - 1;
    next[i] = i + 1 < n ? static_cast<int32_t>(i + 1) : -1;
  }
  struct Candidate {
    int32_t rank;
    int32_t pos;       // left symbol
    int32_t left_id;   // ids when queued: a stale entry no longer matches
    int32_t right_id;
    bool operator>(const Candidate& o) const { return rank != o.rank ? rank > o.rank : pos > o.pos; }
  };
  std::priority_queue<Candidate, std::vector<Candidate>, std::greater<Candidate>> queue;
  auto push = [&](int32_t left) {
    int32_t right = next[left];
    if (right < 0) return;
    if (const MergeTable::Merge* m = merges_.find(id[left], id[right]))
      queue.push({m->rank, left, id[left], id[right]});
  };
  for (size_t i = 0; i + 1 < n; ++i) push(static_cast<int32_t>(i));
  while (!queue.empty()) {
    Candidate c = queue.top();
    queue.pop();
    int32_t left = c.pos;
    if (!alive[left] || id[left] != c.left_id) continue;
    int32_t right = next[left];
    if (right < 0 || id[right] != c.right_id) continue;
    const MergeTable::Merge* m = merges_.find(id[left], id[right]);
    id[left] = m->result;
    alive[right] = 0;
    next[left] = next[right];
    if (next[right] >= 0) prev[next[right]] = left;
    if (prev[left] >= 0) push(prev[left]);
    push(left);
  }
  for (int32_t i = 0; i >= 0; i = next[i]) out.push_back(id[i]);
}

}  // namespace dsv3
