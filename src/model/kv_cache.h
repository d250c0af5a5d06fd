#pragma once
// One sequence's attention cache in MLA's compressed form: per layer and per token, the
// normalized latent c (kv_lora_rank values) followed by the rotated shared key k_pe
// (qk_rope_head_dim values). Attention scores a whole row with one dot product against the
// absorbed query (q_lat | q_pe).
//
// Memory grows with the sequence (no reservation of the full context up front); truncate()
// rolls back (e.g. rejected speculative tokens).
//
// Across ranks (model/follower.h) every rank keeps its own copy of each cache, as model.py
// does; rank 0 names a cache to the others by its id, and tells them when it became a copy
// of another (assign_prefix) or was freed (release, destruction; see CacheJournal).

#include <algorithm>
#include <atomic>
#include <cstdint>
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

class KVCache {
 public:
  KVCache(int64_t n_layers, int64_t row_dim) : row_dim_(row_dim), layers_(static_cast<size_t>(n_layers)) {}
  ~KVCache() { CacheJournal::instance().released(id_); }
  // A copy is a new cache holding the same rows; a moved-from cache is no cache any more.
  KVCache(const KVCache& other)
      : row_dim_(other.row_dim_), length_(other.length_), capacity_(other.capacity_), layers_(other.layers_),
        origin_{other.id_, other.length_} {}
  KVCache(KVCache&& other) noexcept
      : row_dim_(other.row_dim_), length_(other.length_), capacity_(other.capacity_),
        layers_(std::move(other.layers_)), id_(std::exchange(other.id_, 0)), origin_(other.origin_) {}
  KVCache& operator=(KVCache other) noexcept {
    CacheJournal::instance().released(id_);
    row_dim_ = other.row_dim_;
    length_ = other.length_;
    capacity_ = other.capacity_;
    layers_ = std::move(other.layers_);
    id_ = std::exchange(other.id_, 0);
    origin_ = other.origin_;
    return *this;
  }

  // Names this cache to the other ranks; never reused in a process.
  uint64_t id() const { return id_; }
  // Where this cache's rows came from since the last step, when they were copied from
  // another cache (source 0: they were not).
  struct Origin {
    uint64_t source = 0;
    int64_t rows = 0;
  };
  Origin take_origin() { return std::exchange(origin_, {}); }

  int64_t length() const { return length_; }
  int64_t row_dim() const { return row_dim_; }
  int64_t n_layers() const { return static_cast<int64_t>(layers_.size()); }

  // Makes room for `n_tokens` rows in every layer (amortized growth).
  void reserve(int64_t n_tokens) {
    if (n_tokens <= capacity_) return;
    int64_t cap = std::max<int64_t>(n_tokens, capacity_ + capacity_ / 2 + 16);
    for (auto& l : layers_) l.resize(static_cast<size_t>(cap * row_dim_));
    capacity_ = cap;
  }
  // Rows of one layer: [capacity, row_dim]; rows [0, length) are filled.
  float* layer(int64_t l) { return layers_[static_cast<size_t>(l)].data(); }
  const float* layer(int64_t l) const { return layers_[static_cast<size_t>(l)].data(); }

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
    length_ = n;
    origin_ = {src.id_, n};
  }
  // Gives back the rows past length() (a cache kept after its request ended).
  void shrink_to_fit() {
    for (auto& l : layers_) {
      l.resize(static_cast<size_t>(length_ * row_dim_));
      l.shrink_to_fit();
    }
    capacity_ = length_;
  }
  // Frees the memory (a finished request).
  void release() {
    for (auto& l : layers_) std::vector<float>().swap(l);
    capacity_ = 0;
    length_ = 0;
    CacheJournal::instance().released(std::exchange(id_, CacheJournal::next_id()));
    origin_ = {};
  }
  uint64_t bytes() const { return static_cast<uint64_t>(capacity_) * row_bytes(); }
  // Bytes of one token's rows over all layers.
  uint64_t row_bytes() const { return static_cast<uint64_t>(row_dim_) * sizeof(float) * layers_.size(); }

 private:
  int64_t row_dim_;
  int64_t length_ = 0;
  int64_t capacity_ = 0;
  std::vector<std::vector<float>> layers_;
  uint64_t id_ = CacheJournal::next_id();
  Origin origin_;
};

}  // namespace dsv3
