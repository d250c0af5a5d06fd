#pragma once
// One sequence's attention cache in MLA's compressed form: per layer and per token, the
// normalized latent c (kv_lora_rank values) followed by the rotated shared key k_pe
// (qk_rope_head_dim values). Attention scores a whole row with one dot product against the
// absorbed query (q_lat | q_pe).
//
// DeepSeek-V3.2 models keep, next to it, the lightning indexer's key of every token and
// layer: index_key_dim FP8 e4m3 bytes and one float32 scale (model.py's k_cache and
// k_scale_cache). It grows, rolls back and is copied with the latent rows.
//
// Memory grows with the sequence (no reservation of the full context up front); truncate()
// rolls back (e.g. rejected speculative tokens).
//
// Across ranks (model/follower.cpp) every rank keeps its own copy of each cache, as model.py
// does; rank 0 names a cache to the others by its id, and tells them when it became a copy
// of another (assign_prefix) or was freed (release, destruction; see CacheJournal).

#include <algorithm>
#include <atomic>
#include <cstdint>
#include <limits>
#include <mutex>
#include <utility>
#include <vector>

namespace dsv3 {

// Caches rank 0 freed since the last step, so that the other ranks free theirs. Records only
// once enabled (a model split across ranks, on rank 0).
class CacheJournal {
 public:
  static CacheJournal& instance() {
    static CacheJournal journal;
    return journal;
  }
  void enable() { enabled_.store(true); }
  void released(uint64_t id) {
    if (!enabled_.load(std::memory_order_relaxed) || id == 0) return;
    std::lock_guard<std::mutex> lock(mu_);
    released_.push_back(id);
  }
  std::vector<uint64_t> take_released() {
    std::lock_guard<std::mutex> lock(mu_);
    return std::exchange(released_, {});
  }
  static uint64_t next_id() {
    static std::atomic<uint64_t> next{1};
    return next.fetch_add(1);
  }

 private:
  std::atomic<bool> enabled_{false};
  std::mutex mu_;
  std::vector<uint64_t> released_;
};

// A cache's name for the other ranks: a fresh id per cache (never reused in a process), moved
// with it; a copy is a new cache whose rows came from the original; the end of a cache is
// journaled.
class CacheIdentity {
 public:
  // Where a cache's rows came from since the last step, when copied from another cache
  // (source 0: they were not; rows past the source's length are not copied).
  struct Origin {
    uint64_t source = 0;
    int64_t rows = 0;
  };
  CacheIdentity() = default;
  CacheIdentity(const CacheIdentity& other) : origin_{other.id_, std::numeric_limits<int64_t>::max()} {}
  CacheIdentity(CacheIdentity&& other) noexcept : id_(std::exchange(other.id_, 0)), origin_(other.origin_) {}
  CacheIdentity& operator=(const CacheIdentity& other) {
    if (this != &other) renew(), origin_ = {other.id_, std::numeric_limits<int64_t>::max()};
    return *this;
  }
  CacheIdentity& operator=(CacheIdentity&& other) noexcept {
    if (this != &other) {
      CacheJournal::instance().released(id_);
      id_ = std::exchange(other.id_, 0);
      origin_ = other.origin_;
    }
    return *this;
  }
  ~CacheIdentity() { CacheJournal::instance().released(id_); }

  uint64_t id() const { return id_; }
  void copied_from(const CacheIdentity& source, int64_t rows) { origin_ = {source.id_, rows}; }
  Origin take_origin() { return std::exchange(origin_, {}); }
  // The cache was emptied: it continues under a new name.
  void renew() {
    CacheJournal::instance().released(std::exchange(id_, CacheJournal::next_id()));
    origin_ = {};
  }

 private:
  uint64_t id_ = CacheJournal::next_id();
  Origin origin_;
};

class KVCache {
 public:
  KVCache(int64_t n_layers, int64_t row_dim, int64_t index_key_dim = 0)
      : row_dim_(row_dim), index_key_dim_(index_key_dim), layers_(static_cast<size_t>(n_layers)),
        index_keys_(index_key_dim > 0 ? static_cast<size_t>(n_layers) : 0),
        index_scales_(index_key_dim > 0 ? static_cast<size_t>(n_layers) : 0) {}

  int64_t length() const { return length_; }
  int64_t row_dim() const { return row_dim_; }
  int64_t n_layers() const { return static_cast<int64_t>(layers_.size()); }
  int64_t index_key_dim() const { return index_key_dim_; }
  // Names this cache to the other ranks (CacheIdentity).
  uint64_t id() const { return identity_.id(); }
  CacheIdentity::Origin take_origin() { return identity_.take_origin(); }

  // Makes room for `n_tokens` rows in every layer (amortized growth).
  void reserve(int64_t n_tokens) {
    if (n_tokens <= capacity_) return;
    int64_t cap = std::max<int64_t>(n_tokens, capacity_ + capacity_ / 2 + 16);
    for (auto& l : layers_) l.resize(static_cast<size_t>(cap * row_dim_));
    for (auto& k : index_keys_) k.resize(static_cast<size_t>(cap * index_key_dim_));
    for (auto& s : index_scales_) s.resize(static_cast<size_t>(cap));
    capacity_ = cap;
  }
  // Rows of one layer: [capacity, row_dim]; rows [0, length) are filled.
  float* layer(int64_t l) { return layers_[static_cast<size_t>(l)].data(); }
  const float* layer(int64_t l) const { return layers_[static_cast<size_t>(l)].data(); }
  // The indexer's keys of one layer: [capacity, index_key_dim] e4m3 bytes, [capacity] scales.
  uint8_t* index_keys(int64_t l) { return index_keys_[static_cast<size_t>(l)].data(); }
  const uint8_t* index_keys(int64_t l) const { return index_keys_[static_cast<size_t>(l)].data(); }
  float* index_scales(int64_t l) { return index_scales_[static_cast<size_t>(l)].data(); }
  const float* index_scales(int64_t l) const { return index_scales_[static_cast<size_t>(l)].data(); }

  // Marks `n` more tokens as filled (after every layer wrote its rows).
  void advance(int64_t n) { length_ += n; }
  void truncate(int64_t length) { length_ = std::min(length_, length); }
  void clear() { length_ = 0; }
  // Becomes a copy of src's first n rows in every layer (a cached prompt prefix).
  void assign_prefix(const KVCache& src, int64_t n) {
    n = std::min(n, src.length_);
    length_ = 0;
    reserve(n);
    for (size_t l = 0; l < layers_.size(); ++l)
      std::copy_n(src.layers_[l].data(), static_cast<size_t>(n * row_dim_), layers_[l].data());
    for (size_t l = 0; l < index_keys_.size() && l < src.index_keys_.size(); ++l) {
      std::copy_n(src.index_keys_[l].data(), static_cast<size_t>(n * index_key_dim_), index_keys_[l].data());
      std::copy_n(src.index_scales_[l].data(), static_cast<size_t>(n), index_scales_[l].data());
    }
    length_ = n;
    identity_.copied_from(src.identity_, n);
  }
  // Gives back the rows past length() (a cache kept after its request ended).
  void shrink_to_fit() {
    for (auto& l : layers_) {
      l.resize(static_cast<size_t>(length_ * row_dim_));
      l.shrink_to_fit();
    }
    for (auto& k : index_keys_) {
      k.resize(static_cast<size_t>(length_ * index_key_dim_));
      k.shrink_to_fit();
    }
    for (auto& s : index_scales_) {
      s.resize(static_cast<size_t>(length_));
      s.shrink_to_fit();
    }
    capacity_ = length_;
  }
  // Frees the memory (a finished request).
  void release() {
    for (auto& l : layers_) std::vector<float>().swap(l);
    for (auto& k : index_keys_) std::vector<uint8_t>().swap(k);
    for (auto& s : index_scales_) std::vector<float>().swap(s);
    capacity_ = 0;
    length_ = 0;
    identity_.renew();
  }
  uint64_t bytes() const { return static_cast<uint64_t>(capacity_) * row_bytes(); }
  // Bytes of one token's rows over all layers (latent rows and, with an indexer, its keys).
  uint64_t row_bytes() const {
    return (static_cast<uint64_t>(row_dim_) * sizeof(float) + index_row_bytes()) * layers_.size();
  }
  // Of which the indexer's key and scale, per layer.
  uint64_t index_row_bytes() const {
    return index_key_dim_ > 0 ? static_cast<uint64_t>(index_key_dim_) + sizeof(float) : 0;
  }

 private:
  int64_t row_dim_;
  int64_t index_key_dim_;
  int64_t length_ = 0;
  int64_t capacity_ = 0;
  std::vector<std::vector<float>> layers_;
  std::vector<std::vector<uint8_t>> index_keys_;   // per layer, when index_key_dim > 0
  std::vector<std::vector<float>> index_scales_;
  CacheIdentity identity_;
};

}  // namespace dsv3
