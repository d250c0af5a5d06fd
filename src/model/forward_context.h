#pragma once
// What every layer's forward needs besides its weights: the thread pool, the config, the
// rope tables, the attention form, and the batch layout.

#include <cstdint>
#include <vector>

#include "base/thread_pool.h"
#include "format/model_config.h"
#include "model/kv_cache.h"
#include "model/rope.h"

namespace dsv3 {

// model.py's attn_impl. Absorbed ("absorb", its default): wkv_b's key rows (W_UK) folded into
// the query and its value rows (W_UV) applied after the weighted latent sum, so that scores
// run against the compressed cache. Naive: K and V decompressed from the cache for every
// position, then plain multi-head attention. Same math.
enum class AttentionImpl { Absorbed, Naive };

// The tokens of one forward step: sequences concatenated into one activation matrix.
struct TokenBatch {
  struct Segment {
    int64_t offset = 0;        // first row in the batch
    int64_t count = 0;         // new tokens of this sequence
    KVCache* cache = nullptr;  // holds positions [0, first position) already
  };
  std::vector<int32_t> tokens;     // [n_tokens] the new tokens, sequence after sequence
  std::vector<int64_t> positions;  // [n_tokens] absolute position of each token
  std::vector<Segment> segments;
  int64_t n_tokens() const { return static_cast<int64_t>(positions.size()); }
};

// What the V3.2 indexers chose, for tests and tools: per layer of the cache, one row per
// token of each forward step (in batch order), the selected positions in ascending order.
struct IndexerTrace {
  std::vector<std::vector<std::vector<int32_t>>> layers;
};

struct ForwardContext {
  ThreadPool& pool;
  const ModelConfig& config;
  const Rope& rope;
  AttentionImpl attention = AttentionImpl::Absorbed;
  int64_t* experts_read = nullptr;  // when set: routed experts run, summed over the MoE layers
  // V3.2 models: attend to the indexer's choice (false: every earlier token, as V3 does,
  // with no indexer run; a benchmark's dense baseline, not the model's own math).
  bool sparse_attention = true;
  IndexerTrace* indexer_trace = nullptr;  // when set: every indexer's choice is appended
};

}  // namespace dsv3
