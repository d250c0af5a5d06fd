#pragma once
// The DeepSeek-V2/V3 transformer (DeepSeek model.py: Transformer), loaded from a checkpoint
// directory in the HuggingFace layout, weights used in place from the mapped shards.

#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "base/result.h"
#include "base/thread_pool.h"
#include "format/checkpoint.h"
#include "dist/communicator.h"
#include "format/model_config.h"
#include "kernels/kernel_choice.h"
#include "model/forward_context.h"
#include "model/kv_cache.h"
#include "model/partition.h"
#include "model/rope.h"
#include "model/weights.h"

namespace dsv3 {

struct ModelOptions {
  int threads = 0;                 // 0: one per available core
  bool load_mtp = false;           // bind the MTP layers (error if the checkpoint has none)
  AttentionImpl attention = AttentionImpl::Absorbed;
  int64_t max_context = 0;         // 0: max_position_embeddings from config.json
  // Map every weight page in at load (prefault_weights), so that the first request does not
  // pay a page fault per 4 KB of weights; commands that compute set it, inspect-like ones not.
  bool prefault = false;
  // Lock the weights in memory after mapping them (lock_weights, --mlock): the kernel never
  // evicts them, so an idle server does not lose them to reclaim. Failing to lock (the
  // memory-lock limit) is a warning: the model runs without the lock.
  bool lock_memory = false;
  // Read the weight files into memory (huge pages) instead of mapping them (--no-mmap;
  // base/mapped_file.h: FileLoad::Read).
  bool read_into_memory = false;
  // Kernel path, FP8 math and AMX mode the run asked for: Model::load applies them (on every
  // rank) before loading; unset fields keep this process's defaults.
  kernels::KernelChoice kernels;
  // The ranks to split the model across (partition.h); null or world size 1: this process holds
  // it all. On rank 0 the model leads: each call is broadcast to the other ranks, which run
  // Model::follow. Must outlive the model.
  Communicator* comm = nullptr;
};

// Which rows of logits a sequence of a forward step wants.
enum class Logits {
  None,  // no logits: a prefill chunk that does not end the prompt
  Last,  // the last new token's row: the next token's distribution
  All,   // a row for every new token (scoring a prompt, the logits command)
};

// One sequence's part of a forward step: new tokens appended after what its cache holds.
struct SequenceInput {
  KVCache* cache = nullptr;
  std::span<const int32_t> tokens;
  Logits logits = Logits::Last;
};

struct ForwardOutput {
  std::vector<float> logits;         // [rows, vocab]
  std::vector<int64_t> first_row;    // per sequence: its first row in `logits` (-1: none)
  std::vector<float> hidden;         // [n_tokens, hidden] final-normed states (when asked)
  int64_t experts_read = 0;          // routed experts run, summed over the MoE layers (bench)
};

class Model {
 public:
  // On rank 0 of several (options.comm), also makes the other ranks load their share; every
  // rank's failure, or a difference between ranks' builds or checkpoints, is an error here.
  static Result<std::unique_ptr<Model>> load(const std::string& dir, const ModelOptions& options);
  ~Model();

  // A rank other than 0: loads, runs and unloads models as rank 0's messages say, until rank 0
  // quits (Model::quit_followers). Errors when a message cannot be followed. A load reads
  // `own_dir` when given (this rank's own --model: its machine keeps the checkpoint elsewhere),
  // else the directory rank 0 names; every other option is rank 0's.
  static Status follow(Communicator& comm, const std::string& own_dir = "");
  // Rank 0: tells the other ranks to exit follow() (the end of the command).
  static void quit_followers(Communicator& comm);

  const ModelConfig& config() const { return config_; }
  const ModelWeights& weights() const { return weights_; }
  const Checkpoint& checkpoint() const { return *checkpoint_; }
  ThreadPool& pool() const { return *pool_; }
  int64_t max_context() const { return max_context_; }
  int64_t vocab_size() const { return config_.vocab_size; }
  void set_attention(AttentionImpl impl) { attention_ = impl; }
  AttentionImpl attention() const { return attention_; }
  const Partition& partition() const { return partition_; }
  Communicator& comm() const { return *comm_; }
  // Rank 0 of a model split across ranks: it broadcasts every call.
  bool leads_ranks() const { return partition_.split() && comm_->is_leader(); }
  // Every rank's collective counters, gathered on rank 0 ([world]; world size 1: this one's).
  std::vector<CommStats> gather_comm_stats() const;
  // V3.2 models: false runs dense MLA without the indexer (a benchmark's baseline).
  void set_sparse_attention(bool sparse) { sparse_attention_ = sparse; }
  // When set, every indexer appends its choices to `trace` (tests; nullptr stops).
  void set_indexer_trace(IndexerTrace* trace) { indexer_trace_ = trace; }

  // A sequence's cache: a layer per block, plus one for the MTP layer when `with_mtp` (the
  // engine's speculative decoding keeps both in one cache, so that they grow, roll back and
  // are reused as a prompt prefix together).
  KVCache new_cache(bool with_mtp = false) const {
    return KVCache(config_.num_hidden_layers + (with_mtp ? 1 : 0), config_.kv_cache_dim(), config_.index_key_dim());
  }

  // Runs one step over a batch of sequences; each cache advances by its tokens. Errors for
  // token ids outside the vocabulary or a sequence that would pass max_context().
  Status forward(std::span<const SequenceInput> batch, ForwardOutput* out, bool want_hidden = false) const;

  // Multi-Token Prediction (mtp.h). For i in [0, n): the draft logits of the token after
  // next_tokens[i], from hidden[i] (the main model's final-normed state at the position
  // before next_tokens[i]) and the embedding of next_tokens[i]; the MTP layer runs at the
  // next positions of its own cache. Validated as forward() validates its batch.
  bool has_mtp() const { return !weights_.mtp.empty(); }
  KVCache new_mtp_cache() const { return KVCache(1, config_.kv_cache_dim(), config_.index_key_dim()); }
  Status mtp_forward(const float* hidden, std::span<const int32_t> next_tokens, KVCache* mtp_cache,
                     float* logits) const;

  // One sequence's part of an MTP pass in a cache from new_cache(true): the MTP layer runs at
  // positions [first_position, first_position + tokens.size()) of its layer of the cache (the
  // main model's rows there are written already; the cache's length does not change).
  // tokens[i] is the token after position first_position + i, hidden its main (or, drafting
  // further, the MTP block's own) state at that position: [tokens.size(), hidden_size].
  struct MtpInput {
    KVCache* cache = nullptr;
    int64_t first_position = 0;
    std::span<const int32_t> tokens;
    const float* hidden = nullptr;
    Logits logits = Logits::Last;
  };
  // The MTP pass of a step over several sequences: out->logits the draft logits of the rows
  // asked for, out->hidden the MTP block's output of every row (before shared_head.norm).
  Status mtp_step(std::span<const MtpInput> batch, ForwardOutput* out) const;

 private:
  Model() = default;
  // Checks a step's sequences (token ids in the vocabulary, none empty, none past
  // max_context()), makes room in their caches and lays them out as one batch.
  Result<TokenBatch> assemble_batch(std::span<const SequenceInput> batch) const;
  ForwardContext context() const {
    ForwardContext ctx{*pool_, config_, *rope_, partition_, *comm_, attention_};
    ctx.sparse_attention = sparse_attention_;
    ctx.indexer_trace = indexer_trace_;
    return ctx;
  }
  // Loads this rank's share (partition_) on every rank, then checks all ranks together.
  static Result<std::unique_ptr<Model>> load_share(const std::string& dir, const ModelOptions& options,
                                                   Communicator& comm);
  static Result<std::unique_ptr<Model>> load_local(const std::string& dir, const ModelOptions& options,
                                                   Communicator& comm);
  // Rank 0: sends a step's message to the other ranks.
  void broadcast_step(struct StepMessage& message) const;
  // out->logits and first_row: head(h) for the rows each segment of `tb` wants.
  void head_rows(const LinearWeight& head, const TokenBatch& tb, std::span<const Logits> wanted, const float* h,
                 ForwardOutput* out) const;

  ModelConfig config_;
  std::unique_ptr<Checkpoint> checkpoint_;
  ModelWeights weights_;
  std::unique_ptr<ThreadPool> pool_;
  std::unique_ptr<Rope> rope_;
  AttentionImpl attention_ = AttentionImpl::Absorbed;
  bool sparse_attention_ = true;
  IndexerTrace* indexer_trace_ = nullptr;
  int64_t max_context_ = 0;
  LocalCommunicator local_comm_;
  Communicator* comm_ = &local_comm_;
  Partition partition_;
};

}  // namespace dsv3
