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

#include <algorithm>
#include <cstdint>
#include <vector>

namespace dsv3 {

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
};

}  // namespace dsv3
