// Mirrors DeepSeek model.py Transformer.forward: embed, blocks, final norm, head.

#include "model/model.h"

#include <cstring>

#include "base/log.h"
#include "base/memory_stats.h"
#include "kernels/ops.h"
#include "kernels/product_profile.h"
#include "model/block.h"
#include "model/embedding.h"
#include "model/mtp.h"
#include "model/step_buffers.h"
#include "model/step_message.h"

namespace dsv3 {

Result<std::unique_ptr<Model>> Model::load(const std::string& dir, const ModelOptions& options) {
  if (!options.comm || options.comm->size() == 1) {
    DSV3_TRY(kernels::apply_kernel_choice(options.kernels));
    LocalCommunicator local;
    return load_local(dir, options, local);
  }
  // Rank 0 asks the other ranks (in Model::follow) to load the same directory with the same options.
  std::vector<uint8_t> bytes = encode_step(load_step(dir, options));
  options.comm->broadcast_message(&bytes, 0, /*idle=*/false);
  return load_share(dir, options, *options.comm);
}

Result<std::unique_ptr<Model>> Model::load_local(const std::string& dir, const ModelOptions& options,
                                                 Communicator& comm) {
  auto m = std::unique_ptr<Model>(new Model());
  DSV3_ASSIGN(m->config_, load_model_config(dir));
  DSV3_ASSIGN(m->partition_, make_partition(m->config_, comm.rank(), comm.size()));
  if (m->partition_.split()) m->comm_ = &comm;
  // A rank of a split model maps only the shards holding tensors it binds: its replicated part
  // and its slices (inspect --ranks lists them), so a machine needs only those files.
  DSV3_ASSIGN(m->checkpoint_,
              Checkpoint::open(dir, m->partition_.split() ? ShardOpening::OnFirstUse : ShardOpening::All,
                               options.read_into_memory ? FileLoad::Read : FileLoad::Map));
  const ModelConfig& c = m->config_;
  if (options.load_mtp && c.num_nextn_predict_layers == 0)
    return Error(dir + "/config.json: num_nextn_predict_layers is 0: this checkpoint has no MTP module");
  WeightBinder binder(m->checkpoint_.get(), c);
  m->weights_ = bind_model_weights(binder, c, options.load_mtp, &m->partition_);
  // A shard that could not be opened shows in the binder as missing tensors: say why instead.
  DSV3_TRY(m->checkpoint_->shard_error());
  auto bound = binder.finish();
  if (!bound.ok()) return std::move(bound).error().context(dir);
  // Tensors nobody asked for (MTP layers when not needed, other ranks' experts, unknown names): ignored.
  size_t unused = 0;
  for (const auto& [name, t] : m->checkpoint_->tensors())
    if (!binder.used().count(name)) {
      ++unused;
      DSV3_LOG_DEBUG("unused tensor '%s'", name.c_str());
    }
  if (unused && !m->partition_.split())
    DSV3_LOG_INFO("%zu tensors in the checkpoint are not used by this command (e.g. MTP layers)", unused);
  m->pool_ = std::make_unique<ThreadPool>(options.threads);
  if (options.prefault) prefault_weights(m->weights_, *m->pool_);
  if (options.lock_memory) {
    auto locked = lock_weights(m->weights_);
    if (locked.ok())
      DSV3_LOG_INFO("locked %.2f GB of weights in memory (--mlock)", static_cast<double>(*locked) * 1e-9);
    else
      DSV3_LOG_WARN("--mlock: %s; running without the lock (the system may evict weight pages)",
                    locked.error().message().c_str());
  }
  m->rope_ = std::make_unique<Rope>(c);
  m->attention_ = options.attention;
  m->max_context_ = options.max_context > 0 ? options.max_context : c.max_position_embeddings;
  if (m->max_context_ > c.max_position_embeddings) {
    DSV3_LOG_WARN("context %lld is beyond max_position_embeddings (%lld) of config.json; using %lld",
                  static_cast<long long>(m->max_context_), static_cast<long long>(c.max_position_embeddings),
                  static_cast<long long>(c.max_position_embeddings));
    m->max_context_ = c.max_position_embeddings;
  }
  // How much of the weights the kernel maps 2 MB at a time (base/memory_stats.h): once mapped
  // in, the page cache's folios decide, and those of a file written or read before with small
  // I/O stay small until they are dropped.
  const PageResidency pages = options.prefault ? m->checkpoint_->page_residency() : PageResidency{};
  const std::string thp = transparent_huge_pages_mode();
  if (!options.read_into_memory && pages.resident_bytes >= (uint64_t{1} << 30) &&
      pages.huge_bytes < pages.resident_bytes / 2 && (thp == "always" || thp == "madvise"))
    DSV3_LOG_WARN("only %.0f%% of the weights' %.2f GB in memory are in 2 MB pages: the page cache holds the shard "
                  "files in 4 KB pages (written or read before in small pieces). Decode ran 1.2x faster here with them "
                  "in 2 MB pages (docs/benchmarks.md, \"Weights in 2 MB pages\"). To fix it once, drop the files' "
                  "cached pages while no process maps them (sync; for f in %s/*.safetensors; do dd if=\"$f\" "
                  "iflag=nocache count=0; done): the next load reads them back in 2 MB pages. Or use --no-mmap",
                  100.0 * static_cast<double>(pages.huge_bytes) / static_cast<double>(pages.resident_bytes),
                  pages.resident_bytes / 1e9, dir.c_str());
  MemoryStats mem = memory_stats();
  if (m->partition_.split())
    DSV3_LOG_INFO("rank %d of %d: heads [%lld, %lld), experts [%lld, %lld), vocabulary [%lld, %lld); %.1f MB of "
                  "column slices copied; %s",
                  comm.rank(), comm.size(), static_cast<long long>(m->partition_.heads.begin),
                  static_cast<long long>(m->partition_.heads.end), static_cast<long long>(m->partition_.experts.begin),
                  static_cast<long long>(m->partition_.experts.end), static_cast<long long>(m->partition_.vocab.begin),
                  static_cast<long long>(m->partition_.vocab.end), m->weights_.slices.bytes / 1e6,
                  kernels::active_kernels_summary().c_str());
  DSV3_LOG_INFO("loaded %s: %zu tensors in %zu shard(s), %.2f GB mapped (%.1f MB copied); resident %.1f MB "
                "(file pages %.1f MB, anonymous %.1f MB); weights in 2 MB pages %.1f MB",
                dir.c_str(), m->checkpoint_->tensors().size(), m->checkpoint_->shards().size(),
                m->checkpoint_->total_file_bytes() / 1e9, m->checkpoint_->copied_bytes() / 1e6,
                mem.resident_bytes / 1e6, mem.resident_file_bytes / 1e6, mem.resident_anon_bytes / 1e6,
                pages.huge_bytes / 1e6);
  return m;
}

Result<TokenBatch> Model::assemble_batch(std::span<const SequenceInput> batch) const {
  TokenBatch tb;
  for (const SequenceInput& s : batch) {
    for (int32_t t : s.tokens)
      if (t < 0 || t >= config_.vocab_size)
        return error_f("token id %d is outside the vocabulary [0, %lld)", t, static_cast<long long>(config_.vocab_size));
    const int64_t start = s.cache->length(), n = static_cast<int64_t>(s.tokens.size());
    if (n == 0) return Error("empty sequence in forward batch");
    if (start + n > max_context_)
      return error_f("context length exceeded: %lld tokens, the limit is %lld", static_cast<long long>(start + n),
                     static_cast<long long>(max_context_));
    s.cache->reserve(start + n);
    tb.segments.push_back({tb.n_tokens(), n, s.cache});
    for (int64_t i = 0; i < n; ++i) tb.positions.push_back(start + i);
    tb.tokens.insert(tb.tokens.end(), s.tokens.begin(), s.tokens.end());
  }
  return tb;
}

// A cache as the other ranks must find it before a step (and, when its rows were copied from
// another cache since the last step, where from).
static CacheRef cache_ref(KVCache* cache) {
  const CacheIdentity::Origin origin = cache->take_origin();
  return {cache->id(), cache->n_layers(), cache->length(), origin.source, origin.rows};
}

void Model::broadcast_step(StepMessage& message) const {
  message.released = CacheJournal::instance().take_released();
  std::vector<uint8_t> bytes = encode_step(message);
  comm_->broadcast_message(&bytes, 0, /*idle=*/false);
}

Status Model::forward(std::span<const SequenceInput> batch, ForwardOutput* out, bool want_hidden) const {
  DSV3_ASSIGN(const TokenBatch tb, assemble_batch(batch));
  if (leads_ranks()) {
    StepMessage step;
    step.kind = StepKind::Forward;
    step.want_hidden = want_hidden;
    for (const SequenceInput& s : batch)
      step.segments.push_back({cache_ref(s.cache), 0, {s.tokens.begin(), s.tokens.end()}, static_cast<uint8_t>(s.logits)});
    broadcast_step(step);
  }
  const ModelConfig& c = config_;
  const int64_t N = tb.n_tokens(), D = c.hidden_size;
  ForwardContext ctx = context();
  out->experts_read = 0;
  ctx.experts_read = &out->experts_read;

  // h = self.embed(tokens)                                              [N, dim]
  StepBuffers buffers;  // the step's outermost frame (step_buffers.h)
  float* const h = buffers.floats(N * D);
  embed_forward(weights_.embed, tb.tokens, h, partition_.vocab);
  comm_->all_reduce_sum(h, N * D);
  // for layer in self.layers: h = layer(h, ...)
  for (int64_t l = 0; l < c.num_hidden_layers; ++l) block_forward(ctx, weights_.layers[l], tb, l, h);
  for (const auto& seg : tb.segments) seg.cache->advance(seg.count);

  // h = self.norm(h)
  std::vector<float> normed(static_cast<size_t>(N * D));
  kernels::rms_norm(*pool_, h, weights_.norm.data(), N, D, static_cast<float>(c.rms_norm_eps), normed.data());
  // logits = self.head(h) for the rows each sequence asks for (model.py: the last token's)
  std::vector<Logits> wanted;
  for (const SequenceInput& s : batch) wanted.push_back(s.logits);
  head_rows(weights_.head, tb, wanted, normed.data(), out);
  if (want_hidden) out->hidden = std::move(normed);
  return {};
}

void Model::head_rows(const LinearWeight& head, const TokenBatch& tb, std::span<const Logits> wanted, const float* h,
                      ForwardOutput* out) const {
  const int64_t D = config_.hidden_size;
  std::vector<int64_t> rows;
  out->first_row.clear();
  for (size_t i = 0; i < wanted.size(); ++i) {
    const auto& seg = tb.segments[i];
    if (wanted[i] == Logits::None) {
      out->first_row.push_back(-1);
      continue;
    }
    out->first_row.push_back(static_cast<int64_t>(rows.size()));
    if (wanted[i] == Logits::All)
      for (int64_t k = 0; k < seg.count; ++k) rows.push_back(seg.offset + k);
    else
      rows.push_back(seg.offset + seg.count - 1);
  }
  std::vector<float> head_in(rows.size() * D);
  for (size_t r = 0; r < rows.size(); ++r) std::memcpy(head_in.data() + r * D, h + rows[r] * D, sizeof(float) * D);
  const int64_t n_rows = static_cast<int64_t>(rows.size()), V = config_.vocab_size;
  const kernels::ProductPart part("head");
  if (!partition_.split()) {
    out->logits.resize(rows.size() * V);
    kernels::matmul(*pool_, head, head_in.data(), n_rows, out->logits.data());
    return;
  }
  // The head is split by vocabulary (ColumnParallelLinear): each rank's [rows, its vocabulary]
  // goes to rank 0 (model.py all-gathers; only rank 0 samples), which lays them side by side.
  std::vector<float> local(static_cast<size_t>(n_rows * partition_.vocab.size()));
  kernels::matmul(*pool_, head, head_in.data(), n_rows, local.data());
  std::vector<size_t> counts;
  for (int r = 0; r < partition_.world; ++r)
    counts.push_back(static_cast<size_t>(n_rows * split_range(V, partition_.world, r).size()) * sizeof(float));
  std::vector<float> gathered(comm_->is_leader() ? static_cast<size_t>(n_rows * V) : 0);
  comm_->gather(local.data(), counts, gathered.data(), 0);
  if (!comm_->is_leader()) return;
  out->logits.resize(static_cast<size_t>(n_rows * V));
  const float* block = gathered.data();
  for (int r = 0; r < partition_.world; ++r) {
    const Range part = split_range(V, partition_.world, r);
    for (int64_t i = 0; i < n_rows; ++i)
      std::memcpy(out->logits.data() + i * V + part.begin, block + i * part.size(), sizeof(float) * part.size());
    block += n_rows * part.size();
  }
}

Status Model::mtp_forward(const float* hidden, std::span<const int32_t> next_tokens, KVCache* mtp_cache,
                          float* logits) const {
  if (!has_mtp()) return Error("this model was loaded without its MTP module");
  if (next_tokens.empty()) return {};
  const SequenceInput in{mtp_cache, next_tokens, Logits::All};
  auto tb = assemble_batch({&in, 1});
  if (!tb.ok()) return std::move(tb).error().context("MTP module");
  const int64_t N = tb->n_tokens(), D = config_.hidden_size;
  if (leads_ranks()) {
    StepMessage step;
    step.kind = StepKind::MtpForward;
    step.segments.push_back({cache_ref(mtp_cache), 0, {next_tokens.begin(), next_tokens.end()}, 0});
    step.hidden.assign(hidden, hidden + N * D);
    broadcast_step(step);
  }
  std::vector<float> h(static_cast<size_t>(N * D));
  mtp_block_forward(context(), weights_.mtp[0], *tb, /*cache_layer=*/0, hidden, h.data());
  // logits = shared_head.head(shared_head.norm(h))                        [N, vocab]
  std::vector<float> normed(h.size());
  kernels::rms_norm(*pool_, h.data(), weights_.mtp[0].shared_head.norm.data(), N, D,
                    static_cast<float>(config_.rms_norm_eps), normed.data());
  ForwardOutput out;
  const Logits all = Logits::All;
  head_rows(weights_.mtp[0].shared_head.head, *tb, {&all, 1}, normed.data(), &out);
  if (logits) std::memcpy(logits, out.logits.data(), out.logits.size() * sizeof(float));
  mtp_cache->advance(N);
  return {};
}

Status Model::mtp_step(std::span<const MtpInput> batch, ForwardOutput* out) const {
  if (!has_mtp()) return Error("this model was loaded without its MTP module");
  const int64_t D = config_.hidden_size, layer = config_.num_hidden_layers;
  TokenBatch tb;
  std::vector<float> hidden;
  std::vector<Logits> wanted;
  for (const MtpInput& in : batch) {
    const int64_t n = static_cast<int64_t>(in.tokens.size());
    for (int32_t t : in.tokens)
      if (t < 0 || t >= config_.vocab_size)
        return error_f("MTP module: token id %d is outside the vocabulary [0, %lld)", t,
                       static_cast<long long>(config_.vocab_size));
    if (n == 0) return Error("MTP module: empty sequence in the batch");
    if (in.cache->n_layers() <= layer) return Error("MTP module: the cache has no MTP layer (new_cache(true))");
    if (in.first_position < 0 || in.first_position + n > max_context_)
      return error_f("MTP module: positions [%lld, %lld) are outside the context limit of %lld",
                     static_cast<long long>(in.first_position), static_cast<long long>(in.first_position + n),
                     static_cast<long long>(max_context_));
    in.cache->reserve(in.first_position + n);
    tb.segments.push_back({tb.n_tokens(), n, in.cache});
    for (int64_t i = 0; i < n; ++i) tb.positions.push_back(in.first_position + i);
    tb.tokens.insert(tb.tokens.end(), in.tokens.begin(), in.tokens.end());
    hidden.insert(hidden.end(), in.hidden, in.hidden + n * D);
    wanted.push_back(in.logits);
  }
  if (leads_ranks()) {
    StepMessage step;
    step.kind = StepKind::MtpStep;
    for (const MtpInput& in : batch)
      step.segments.push_back(
          {cache_ref(in.cache), in.first_position, {in.tokens.begin(), in.tokens.end()}, static_cast<uint8_t>(in.logits)});
    step.hidden = hidden;
    broadcast_step(step);
  }
  std::vector<float> h(hidden.size());
  ForwardContext ctx = context();
  out->experts_read = 0;
  ctx.experts_read = &out->experts_read;
  mtp_block_forward(ctx, weights_.mtp[0], tb, layer, hidden.data(), h.data());
  // Draft logits for the rows asked for: shared_head.head(shared_head.norm(h))
  std::vector<float> normed(h.size());
  kernels::rms_norm(*pool_, h.data(), weights_.mtp[0].shared_head.norm.data(), tb.n_tokens(), D,
                    static_cast<float>(config_.rms_norm_eps), normed.data());
  head_rows(weights_.mtp[0].shared_head.head, tb, wanted, normed.data(), out);
  out->hidden = std::move(h);
  return {};
}

}  // namespace dsv3
