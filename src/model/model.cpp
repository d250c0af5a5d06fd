// Mirrors DeepSeek model.py Transformer.forward: embed, blocks, final norm, head.

#include "model/model.h"

#include <cstring>

#include "base/log.h"
#include "base/memory_stats.h"
#include "kernels/ops.h"
#include "model/block.h"

namespace dsv3 {
namespace {

void embed_rows(const LinearWeight& table, std::span<const int32_t> tokens, float* out) {
  const int64_t D = table.cols;
  for (size_t i = 0; i < tokens.size(); ++i)
    for (int64_t c = 0; c < D; ++c) out[i * D + c] = table.at(tokens[i], c);
}

}  // namespace

Result<std::unique_ptr<Model>> Model::load(const std::string& dir, const ModelOptions& options) {
  auto m = std::unique_ptr<Model>(new Model());
  DSV3_ASSIGN(m->config_, load_model_config(dir));
  DSV3_ASSIGN(m->checkpoint_, Checkpoint::open(dir));
  const ModelConfig& c = m->config_;
  if (options.load_mtp && c.num_nextn_predict_layers == 0)
    return Error(dir + "/config.json: num_nextn_predict_layers is 0: this checkpoint has no MTP module");
  WeightBinder binder(m->checkpoint_.get(), c);
  m->weights_ = bind_model_weights(binder, c, options.load_mtp);
  auto bound = binder.finish();
  if (!bound.ok()) return std::move(bound).error().context(dir);
  // Tensors nobody asked for (MTP layers when not needed, unknown names): ignored.
  size_t unused = 0;
  for (const auto& [name, t] : m->checkpoint_->tensors())
    if (!binder.used().count(name)) {
      ++unused;
      DSV3_LOG_DEBUG("unused tensor '%s'", name.c_str());
    }
  if (unused) DSV3_LOG_INFO("%zu tensors in the checkpoint are not used by this command (e.g. MTP layers)", unused);
  m->pool_ = std::make_unique<ThreadPool>(options.threads);
  m->rope_ = std::make_unique<Rope>(c);
  m->attention_ = options.attention;
  m->max_context_ = options.max_context > 0 ? options.max_context : c.max_position_embeddings;
  if (m->max_context_ > c.max_position_embeddings) {
    DSV3_LOG_WARN("context %lld is beyond max_position_embeddings (%lld) of config.json; using %lld",
                  static_cast<long long>(m->max_context_), static_cast<long long>(c.max_position_embeddings),
                  static_cast<long long>(c.max_position_embeddings));
    m->max_context_ = c.max_position_embeddings;
  }
  MemoryStats mem = memory_stats();
  DSV3_LOG_INFO("loaded %s: %zu tensors in %zu shard(s), %.2f GB mapped (%.1f MB copied); resident %.1f MB "
                "(file pages %.1f MB, anonymous %.1f MB)",
                dir.c_str(), m->checkpoint_->tensors().size(), m->checkpoint_->shards().size(),
                m->checkpoint_->total_file_bytes() / 1e9, m->checkpoint_->copied_bytes() / 1e6,
                mem.resident_bytes / 1e6, mem.resident_file_bytes / 1e6, mem.resident_anon_bytes / 1e6);
  return m;
}

Status Model::check_tokens(std::span<const int32_t> tokens) const {
  for (int32_t t : tokens)
    if (t < 0 || t >= config_.vocab_size)
      return error_f("token id %d is outside the vocabulary [0, %lld)", t, static_cast<long long>(config_.vocab_size));
  return {};
}

Status Model::forward(std::span<const SequenceInput> batch, ForwardOutput* out, bool want_hidden) const {
  const ModelConfig& c = config_;
  const int64_t D = c.hidden_size;
  TokenBatch tb;
  std::vector<int32_t> tokens;
  for (const SequenceInput& s : batch) {
    DSV3_TRY(check_tokens(s.tokens));
    const int64_t start = s.cache->length(), n = static_cast<int64_t>(s.tokens.size());
    if (n == 0) return Error("empty sequence in forward batch");
    if (start + n > max_context_)
      return error_f("context length exceeded: %lld tokens, the limit is %lld", static_cast<long long>(start + n),
                     static_cast<long long>(max_context_));
    s.cache->reserve(start + n);
    tb.segments.push_back({tb.n_tokens(), n, s.cache});
    for (int64_t i = 0; i < n; ++i) tb.positions.push_back(start + i);
    tokens.insert(tokens.end(), s.tokens.begin(), s.tokens.end());
  }
  const int64_t N = tb.n_tokens();
  ForwardContext ctx{*pool_, c, *rope_, attention_};

  // h = embed(tokens)                                                   [N, hidden]
  std::vector<float> x(static_cast<size_t>(N * D));
  embed_rows(weights_.embed, tokens, x.data());
  for (int64_t l = 0; l < c.num_hidden_layers; ++l) block_forward(ctx, weights_.layers[l], tb, l, x.data());
  for (const auto& seg : tb.segments) seg.cache->advance(seg.count);

  // h = norm(h); logits = head(h) for the rows asked for
  std::vector<float> normed(static_cast<size_t>(N * D));
  kernels::rms_norm(*pool_, x.data(), weights_.norm.data(), N, D, static_cast<float>(c.rms_norm_eps), normed.data());
  std::vector<int64_t> rows;
  out->first_row.clear();
  for (size_t i = 0; i < batch.size(); ++i) {
    const auto& seg = tb.segments[i];
    if (batch[i].logits == Logits::None) {
      out->first_row.push_back(-1);
      continue;
    }
    out->first_row.push_back(static_cast<int64_t>(rows.size()));
    if (batch[i].logits == Logits::All)
      for (int64_t k = 0; k < seg.count; ++k) rows.push_back(seg.offset + k);
    else
      rows.push_back(seg.offset + seg.count - 1);
  }
  std::vector<float> head_in(rows.size() * D);
  for (size_t r = 0; r < rows.size(); ++r) std::memcpy(head_in.data() + r * D, normed.data() + rows[r] * D, sizeof(float) * D);
  out->logits.resize(rows.size() * c.vocab_size);
  kernels::matmul(*pool_, weights_.head, head_in.data(), static_cast<int64_t>(rows.size()), out->logits.data());
  if (want_hidden) out->hidden = std::move(normed);
  return {};
}

Status Model::mtp_forward(const float* hidden, std::span<const int32_t> next_tokens, KVCache* mtp_cache,
                          float* logits) const {
  if (!has_mtp()) return Error("this model was loaded without its MTP module");
  DSV3_TRY(check_tokens(next_tokens));
  const ModelConfig& c = config_;
  const MtpWeights& w = weights_.mtp[0];
  const int64_t n = static_cast<int64_t>(next_tokens.size()), D = c.hidden_size;
  if (n == 0) return {};
  const int64_t start = mtp_cache->length();
  if (start + n > max_context_) return Error("context length exceeded in the MTP module");
  const float eps = static_cast<float>(c.rms_norm_eps);
  // h = eh_proj(concat(enorm(embed(t_{i+1})), hnorm(hidden_i)))          [n, 2D] -> [n, D]
  std::vector<float> cat(static_cast<size_t>(n * 2 * D)), e(static_cast<size_t>(n * D));
  embed_rows(w.embed, next_tokens, e.data());
  kernels::rms_norm(*pool_, e.data(), w.enorm.data(), n, D, eps, cat.data(), D, 2 * D);
  kernels::rms_norm(*pool_, hidden, w.hnorm.data(), n, D, eps, cat.data() + D, D, 2 * D);
  std::vector<float> x(static_cast<size_t>(n * D));
  kernels::matmul(*pool_, w.eh_proj, cat.data(), n, x.data());
  // h = Block(h) at the MTP cache's next positions
  TokenBatch tb;
  mtp_cache->reserve(start + n);
  tb.segments.push_back({0, n, mtp_cache});
  for (int64_t i = 0; i < n; ++i) tb.positions.push_back(start + i);
  ForwardContext ctx{*pool_, c, *rope_, attention_};
  block_forward(ctx, w.block, tb, 0, x.data());
  mtp_cache->advance(n);
  // logits = shared_head.head(shared_head.norm(h))
  kernels::rms_norm(*pool_, x.data(), w.shared_head.norm.data(), n, D, eps, x.data());
  kernels::matmul(*pool_, w.shared_head.head, x.data(), n, logits);
  return {};
}

}  // namespace dsv3
