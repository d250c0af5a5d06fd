#include "tokenizer/bpe.h"

#include <algorithm>
#include <functional>
#include <limits>

namespace dsv3 {

void MergeTable::insert(int32_t left, int32_t right, int32_t rank, int32_t result) {
  filter_.clear();  // finalize() rebuilds it
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
  // insert() keeps the load factor at or below 1/2: probes stay short and the table small
  // (4 MB for DeepSeek-V3's 128k merges), which matters more than probe length here.
  // Bloom filter: 16 bits per merge, two probes (about 1.5% false positives).
  size_t bits = 64;
  while (bits < count_ * 16) bits *= 2;
  filter_.assign(bits / 64, 0);
  for (const Slot& s : slots_) {
    if (s.key == kEmpty) continue;
    uint64_t h = s.key * 0x9E3779B97F4A7C15ull;
    size_t b1 = (h >> 20) & (bits - 1), b2 = (h >> 42) & (bits - 1);
    filter_[b1 >> 6] |= uint64_t{1} << (b1 & 63);
    filter_[b2 >> 6] |= uint64_t{1} << (b2 & 63);
  }
}

Bpe::Bpe(std::vector<int32_t> byte_ids, MergeTable merges)
    : byte_ids_(std::move(byte_ids)), merges_(std::move(merges)), byte_pairs_(256 * 256, MergeTable::Merge{kNoRank, -1}) {
  for (int a = 0; a < 256; ++a)
    for (int b = 0; b < 256; ++b)
      if (const MergeTable::Merge* m = merges_.find(byte_ids_[a], byte_ids_[b])) byte_pairs_[a * 256 + b] = *m;
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
  constexpr int32_t kNone = kNoRank;
  int32_t ids[kSmallWord], ranks[kSmallWord], results[kSmallWord];  // ranks[i]: pair (i, i+1)
  size_t n = word.size();
  if (n > kSmallWord) {
    encode_large(word, out);
    return;
  }
  if (n == 1) {
    out.push_back(byte_ids_[static_cast<unsigned char>(word[0])]);
    return;
  }
  for (size_t i = 0; i < n; ++i) ids[i] = byte_ids_[static_cast<unsigned char>(word[i])];
  auto look = [&](size_t i) {
    const MergeTable::Merge* m = merges_.find(ids[i], ids[i + 1]);
    ranks[i] = m ? m->rank : kNone;
    results[i] = m ? m->result : -1;
  };
  for (size_t i = 0; i + 1 < n; ++i) {
    const MergeTable::Merge& m = byte_pair(static_cast<unsigned char>(word[i]), static_cast<unsigned char>(word[i + 1]));
    ranks[i] = m.rank;
    results[i] = m.result;
  }
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
  // Symbols form a linked list over byte positions; a symbol is named by the position it
  // starts at, so "leftmost" is "smallest position". Candidate merges sit in a min-heap of
  // (rank << 32 | position): one 8-byte key, ordered by rank then position. An entry is
  // stale when its left symbol died or the pair at that position no longer has that rank.
  // Scratch buffers are per thread: no allocation per word, no shared state.
  struct Scratch {
    std::vector<int32_t> id, next, prev, rank, result;
    std::vector<uint64_t> heap;
  };
  thread_local Scratch scratch;
  size_t n = word.size();
  auto& id = scratch.id;
  auto& next = scratch.next;
  auto& prev = scratch.prev;
  auto& heap = scratch.heap;
  id.resize(n);
  next.resize(n);
  prev.resize(n);
  heap.clear();
  for (size_t i = 0; i < n; ++i) {
    id[i] = byte_ids_[static_cast<unsigned char>(word[i])];
    prev[i] = static_cast<int32_t>(i) - 1;
    next[i] = i + 1 < n ? static_cast<int32_t>(i + 1) : -1;
  }
  // rank[p] / result[p]: the merge of the pair whose left symbol starts at p (kNoRank when
  // none). A heap entry is current iff its rank equals rank[p]: ranks name pairs uniquely.
  auto& rank = scratch.rank;
  auto& result = scratch.result;
  rank.resize(n);
  result.resize(n);
  auto key = [](int32_t r, int32_t pos) { return (static_cast<uint64_t>(r) << 32) | static_cast<uint32_t>(pos); };
  for (size_t i = 0; i + 1 < n; ++i) {
    const MergeTable::Merge& m = byte_pair(static_cast<unsigned char>(word[i]), static_cast<unsigned char>(word[i + 1]));
    rank[i] = m.rank;
    result[i] = m.result;
    if (m.rank != kNoRank) heap.push_back(key(m.rank, static_cast<int32_t>(i)));
  }
  rank[n - 1] = kNoRank;
  auto later = std::greater<uint64_t>();
  std::make_heap(heap.begin(), heap.end(), later);
  auto update = [&](int32_t left) {
    int32_t right = next[left];
    const MergeTable::Merge* m = right < 0 ? nullptr : merges_.find(id[left], id[right]);
    rank[left] = m ? m->rank : kNoRank;
    result[left] = m ? m->result : -1;
    if (m) {
      heap.push_back(key(m->rank, left));
      std::push_heap(heap.begin(), heap.end(), later);
    }
  };
  while (!heap.empty()) {
    std::pop_heap(heap.begin(), heap.end(), later);
    uint64_t top = heap.back();
    heap.pop_back();
    auto r = static_cast<int32_t>(top >> 32);
    auto left = static_cast<int32_t>(top & 0xFFFFFFFFu);
    if (id[left] < 0 || rank[left] != r) continue;  // merged away, or the pair changed
    int32_t right = next[left];
    id[left] = result[left];
    id[right] = -1;
    next[left] = next[right];
    if (next[right] >= 0) prev[next[right]] = left;
    if (prev[left] >= 0) update(prev[left]);
    update(left);
  }
  for (int32_t i = 0; i >= 0; i = next[i]) out.push_back(id[i]);
}

}  // namespace dsv3
