#include "tools/perplexity.h"

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <limits>
#include <memory>
#include <vector>

#include "format/safetensors.h"
#include "tensor/shape.h"

namespace dsv3 {
namespace {

constexpr const char* kFormat = "dsv3-perplexity-v1";

// Log-softmax of one row in double: out[v] = logits[v] - logsumexp(logits).
void log_softmax(const float* logits, int64_t n, std::vector<double>& out) {
  out.resize(static_cast<size_t>(n));
  double mx = -std::numeric_limits<double>::infinity();
  for (int64_t i = 0; i < n; ++i) mx = std::max(mx, static_cast<double>(logits[i]));
  double sum = 0;
  for (int64_t i = 0; i < n; ++i) sum += std::exp(static_cast<double>(logits[i]) - mx);
  const double lse = mx + std::log(sum);
  for (int64_t i = 0; i < n; ++i) out[static_cast<size_t>(i)] = static_cast<double>(logits[i]) - lse;
}

template <class T>
int64_t argmax(const T* v, int64_t n) {
  int64_t best = 0;
  for (int64_t i = 1; i < n; ++i)
    if (v[i] > v[best]) best = i;
  return best;
}

// A saved run being written: the header first (its size is known up front), then rows.
class SavedRunWriter {
 public:
  static Result<std::unique_ptr<SavedRunWriter>> open(const std::string& path, int64_t scored, int64_t vocab,
                                                      const PerplexityOptions& o) {
    auto w = std::unique_ptr<SavedRunWriter>(new SavedRunWriter);
    w->path_ = path;
    w->partial_ = path + ".dsv3-partial";
    w->f_ = std::fopen(w->partial_.c_str(), "wb");
    if (!w->f_) return Error("cannot create '" + w->partial_ + "': " + std::strerror(errno));
    std::vector<uint64_t> offsets;
    // Header order is by name: log_probs, then targets.
    const std::string header = make_safetensors_header(
        {{"log_probs", DType::F32, {scored, vocab}}, {"targets", DType::I32, {scored}}},
        {{"format", kFormat}, {"ctx", std::to_string(o.ctx)}, {"bos", o.bos ? std::to_string(*o.bos) : "none"}},
        &offsets);
    uint8_t len[8];
    for (int i = 0; i < 8; ++i) len[i] = static_cast<uint8_t>((header.size() >> (8 * i)) & 0xFF);
    DSV3_TRY(w->write(len, 8));
    DSV3_TRY(w->write(header.data(), header.size()));
    return w;
  }
  ~SavedRunWriter() {
    if (f_) {
      std::fclose(f_);
      std::remove(partial_.c_str());
    }
  }
  Status write(const void* p, size_t n) {
    if (std::fwrite(p, 1, n, f_) != n) return Error("writing '" + partial_ + "': " + std::strerror(errno));
    return {};
  }
  Status commit(const std::vector<int32_t>& targets) {
    DSV3_TRY(write(targets.data(), targets.size() * sizeof(int32_t)));
    const bool ok = std::fclose(f_) == 0;
    f_ = nullptr;
    if (!ok || std::rename(partial_.c_str(), path_.c_str()) != 0) {
      std::remove(partial_.c_str());
      return Error("cannot write '" + path_ + "': " + std::strerror(errno));
    }
    return {};
  }

 private:
  SavedRunWriter() = default;
  std::string path_, partial_;
  FILE* f_ = nullptr;
};

// A saved run read back: rows of log-probabilities and their targets.
struct SavedRun {
  std::unique_ptr<SafetensorsFile> file;
  const float* log_probs = nullptr;  // [scored, vocab]
  const int32_t* targets = nullptr;  // [scored]
};

Result<SavedRun> open_saved_run(const std::string& path, int64_t scored, int64_t vocab, int64_t ctx) {
  SavedRun run;
  DSV3_ASSIGN(run.file, SafetensorsFile::open(path));
  const auto& meta = run.file->metadata();
  auto fmt = meta.find("format");
  if (fmt == meta.end() || fmt->second != kFormat)
    return Error("'" + path + "' is not a saved perplexity run (metadata 'format' is not " + kFormat +
                 "; write one with --save-logits)");
  auto c = meta.find("ctx");
  if (c == meta.end() || c->second != std::to_string(ctx))
    return Error("'" + path + "' was scored with ctx " + (c == meta.end() ? "?" : c->second) + ", this run uses " +
                 std::to_string(ctx) + " (use the same --ctx)");
  const TensorInfo* lp = run.file->find("log_probs");
  const TensorInfo* tg = run.file->find("targets");
  if (!lp || lp->dtype != DType::F32 || lp->shape.size() != 2 || !tg || tg->dtype != DType::I32)
    return Error("'" + path + "': expected tensors 'log_probs' F32 [scored, vocab] and 'targets' I32");
  if (lp->shape[1] != vocab)
    return Error("'" + path + "': vocabulary of " + std::to_string(lp->shape[1]) + " entries, this model has " +
                 std::to_string(vocab));
  if (lp->shape[0] < scored || tg->shape != std::vector<int64_t>{lp->shape[0]})
    return Error("'" + path + "': " + std::to_string(lp->shape[0]) + " scored tokens, this run scores " +
                 std::to_string(scored) + " (same text, --ctx and --chunks?)");
  run.log_probs = reinterpret_cast<const float*>(run.file->data(*lp));
  run.targets = reinterpret_cast<const int32_t*>(run.file->data(*tg));
  return run;
}

}  // namespace

int64_t perplexity_scored_tokens(int64_t n_tokens, int64_t ctx) {
  if (ctx < 4) return 0;
  return n_tokens / ctx * (ctx - 1 - ctx / 2);
}

Result<PerplexityResult> compute_perplexity(const Model& model, std::span<const int32_t> tokens,
                                            const PerplexityOptions& o) {
  if (o.ctx < 4) return Error("--ctx " + std::to_string(o.ctx) + " is too small (at least 4)");
  if (o.ctx > model.max_context())
    return Error("--ctx " + std::to_string(o.ctx) + " exceeds the model's context (" +
                 std::to_string(model.max_context()) + ")");
  int64_t windows = static_cast<int64_t>(tokens.size()) / o.ctx;
  if (o.max_windows > 0) windows = std::min(windows, o.max_windows);
  if (windows == 0)
    return Error("the text has " + std::to_string(tokens.size()) + " tokens; scoring needs at least one window of --ctx " +
                 std::to_string(o.ctx) + " tokens");
  const int64_t V = model.vocab_size(), first = o.ctx / 2, per_window = o.ctx - 1 - first;
  const int64_t scored = windows * per_window;

  std::unique_ptr<SavedRunWriter> writer;
  if (!o.save_logits.empty()) {
    auto w = SavedRunWriter::open(o.save_logits, scored, V, o);
    if (!w.ok()) return std::move(w).error().context("--save-logits");
    writer = std::move(w).value();
  }
  std::optional<SavedRun> base;
  if (!o.kl_base.empty()) {
    auto b = open_saved_run(o.kl_base, scored, V, o.ctx);
    if (!b.ok()) return std::move(b).error().context("--kl-base");
    base = std::move(b).value();
  }

  PerplexityResult r;
  r.windows = windows;
  r.scored = scored;
  double nll_sum = 0, nll_sq = 0, base_nll_sum = 0, kl_sum = 0;
  int64_t agree = 0;
  std::vector<double> kls, lp;
  std::vector<float> row_f32(static_cast<size_t>(V));
  std::vector<int32_t> targets;
  std::vector<int32_t> window(static_cast<size_t>(o.ctx));
  for (int64_t w = 0; w < windows; ++w) {
    std::copy_n(tokens.begin() + w * o.ctx, o.ctx, window.begin());
    if (o.bos) window[0] = *o.bos;
    KVCache cache = model.new_cache();
    SequenceInput in{&cache, window, Logits::All};
    ForwardOutput out;
    DSV3_TRY(model.forward({&in, 1}, &out).context(str_f("window %lld", static_cast<long long>(w))));
    for (int64_t p = first; p < o.ctx - 1; ++p) {
      const int32_t target = window[static_cast<size_t>(p + 1)];
      const int64_t i = static_cast<int64_t>(targets.size());
      log_softmax(out.logits.data() + p * V, V, lp);
      const double nll = -lp[static_cast<size_t>(target)];
      nll_sum += nll;
      nll_sq += nll * nll;
      if (writer) {
        for (int64_t v = 0; v < V; ++v) row_f32[static_cast<size_t>(v)] = static_cast<float>(lp[static_cast<size_t>(v)]);
        DSV3_TRY(writer->write(row_f32.data(), row_f32.size() * sizeof(float)).context("--save-logits"));
      }
      if (base) {
        if (base->targets[i] != target)
          return Error(str_f("--kl-base: scored token %lld is %d in the base run and %d here: not the same text",
                             static_cast<long long>(i), base->targets[i], target));
        const float* b = base->log_probs + i * V;
        double kl = 0;
        for (int64_t v = 0; v < V; ++v) {
          const double bv = b[v];
          kl += std::exp(bv) * (bv - lp[static_cast<size_t>(v)]);
        }
        kl = std::max(kl, 0.0);  // rounding can leave -1e-17 for equal rows
        kls.push_back(kl);
        kl_sum += kl;
        base_nll_sum += -static_cast<double>(b[target]);
        agree += argmax(b, V) == argmax(lp.data(), V);
      }
      targets.push_back(target);
    }
    if (o.on_window) o.on_window(w + 1, windows);
  }
  if (writer) DSV3_TRY(writer->commit(targets).context("--save-logits"));

  const double n = static_cast<double>(scored);
  r.mean_nll = nll_sum / n;
  r.perplexity = std::exp(r.mean_nll);
  const double var = std::max(0.0, nll_sq / n - r.mean_nll * r.mean_nll);
  r.ppl_stderr = scored > 1 ? r.perplexity * std::sqrt(var / (n - 1)) : 0;
  if (base) {
    r.has_base = true;
    r.base_perplexity = std::exp(base_nll_sum / n);
    r.kl_mean = kl_sum / n;
    std::sort(kls.begin(), kls.end());
    const size_t rank = static_cast<size_t>(std::ceil(0.99 * n));  // nearest rank, 1-based
    r.kl_p99 = kls[std::max<size_t>(rank, 1) - 1];
    r.kl_max = kls.back();
    r.top1_agreement = static_cast<double>(agree) / n;
  }
  return r;
}

}  // namespace dsv3
