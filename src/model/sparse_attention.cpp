#include "model/sparse_attention.h"

#include <algorithm>
#include <cstring>
#include <vector>

#include "kernels/ops.h"

namespace dsv3 {

namespace {
// Gathered rows per round of kernels::mla_attention calls: bounds the copy's memory
// (64 MiB of float32) when a long prefill selects index_topk rows for each of its tokens.
constexpr int64_t kGatherFloats = int64_t{16} << 20;
}  // namespace

void sparse_mla_attention(const ForwardContext& ctx, const TokenBatch& batch, int64_t cache_layer, const float* q_abs,
                          const IndexSelection& selection, float* o_lat) {
  const ModelConfig& c = ctx.config;
  const int64_t H = c.num_attention_heads, R = c.kv_lora_rank, rope = c.qk_rope_head_dim, row = R + rope;
  struct TokenRef {
    int64_t t;
    const float* cache;
  };
  std::vector<TokenRef> tokens;
  for (const auto& seg : batch.segments)
    for (int64_t i = 0; i < seg.count; ++i) tokens.push_back({seg.offset + i, seg.cache->layer(cache_layer)});

  std::vector<float> gathered;
  std::vector<kernels::MlaAttentionArgs> args;
  size_t next = 0;
  while (next < tokens.size()) {
    // One round: tokens in order until the gathered rows would pass kGatherFloats (at least one).
    size_t end = next;
    int64_t floats = 0;
    while (end < tokens.size()) {
      const int64_t t = tokens[end].t, count = selection.counts[t];
      const bool all = count == batch.positions[t] + 1;
      const int64_t need = all ? 0 : count * row;
      if (end > next && floats + need > kGatherFloats) break;
      floats += need;
      ++end;
    }
    gathered.resize(static_cast<size_t>(floats));
    args.clear();
    int64_t used = 0;
    for (size_t i = next; i < end; ++i) {
      const int64_t t = tokens[i].t, count = selection.counts[t], pos = batch.positions[t];
      kernels::MlaAttentionArgs& a = args.emplace_back();
      a.n_tokens = 1;
      a.n_heads = H;
      a.kv_lora_rank = R;
      a.rope_dim = rope;
      a.q = q_abs + t * H * row;
      a.scale = static_cast<float>(c.softmax_scale());
      a.out = o_lat + t * H * R;
      a.first_pos = count - 1;  // the token sees rows [0, count) of `cache`
      if (count == pos + 1) {
        a.cache = tokens[i].cache;
      } else {
        float* dst = gathered.data() + used;
        const int32_t* sel = selection.row(t);
        for (int64_t j = 0; j < count; ++j)
          std::memcpy(dst + j * row, tokens[i].cache + static_cast<int64_t>(sel[j]) * row, sizeof(float) * row);
        a.cache = dst;
        used += count * row;
      }
    }
    kernels::mla_attention(ctx.pool, args);
    next = end;
  }
}

}  // namespace dsv3
