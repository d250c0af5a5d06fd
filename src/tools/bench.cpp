#include "tools/bench.h"

#include <algorithm>
#include <chrono>
#include <optional>

#include "base/cpu_features.h"
#include "base/memory_stats.h"
#include "kernels/dispatch.h"
#include "kernels/matmul_math.h"
#include "kernels/probe.h"
#include "kernels/product_profile.h"
#include "model/footprint.h"
#include "runtime/sampler.h"

namespace dsv3 {
namespace {

using Clock = std::chrono::steady_clock;

Spread spread(std::vector<double> v) {
  Spread s;
  if (v.empty()) return s;
  std::sort(v.begin(), v.end());
  s.min = v.front();
  s.max = v.back();
  s.median = v.size() % 2 ? v[v.size() / 2] : 0.5 * (v[v.size() / 2 - 1] + v[v.size() / 2]);
  return s;
}

Json spread_json(const Spread& s) { return Json{{"min", s.min}, {"median", s.median}, {"max", s.max}}; }

// Steps of `batch` sequences after short prompts, alternating a plain decode step with a step
// that verifies `k` drafts per sequence and drafts again; the drafts' rows are then rolled
// back, so that both kinds of step run at the same contexts. The token values do not matter
// for the timing (the same weights are read whatever the tokens choose, but for which
// experts), so the drafts are the last token repeated and the MTP layer's rows for the
// prompts are left unwritten.
Result<SpeculativeBench> bench_speculative(const Model& model, const std::vector<int32_t>& prompt, int64_t steps,
                                           int batch, int k) {
  const ModelConfig& c = model.config();
  const int64_t V = c.vocab_size, D = c.hidden_size;
  const ModelFootprint fp = compute_footprint(c, &model.checkpoint());
  auto step_bytes = [&](uint64_t fixed, int64_t experts) {
    return static_cast<double>(fixed) + static_cast<double>(experts) * static_cast<double>(fp.routed_expert_bytes);
  };
  const int64_t short_prompt = std::min<int64_t>(static_cast<int64_t>(prompt.size()), 64);
  if (short_prompt + 2 * steps + k + 1 > model.max_context()) return Error("bench --mtp: -n is too large for the context");
  std::vector<KVCache> caches;
  std::vector<std::vector<int32_t>> last(static_cast<size_t>(batch));
  {
    std::vector<SequenceInput> in;
    std::vector<std::vector<int32_t>> prompts(static_cast<size_t>(batch));
    for (int b = 0; b < batch; ++b) caches.push_back(model.new_cache(/*with_mtp=*/true));
    for (int b = 0; b < batch; ++b) {
      for (int64_t i = 0; i < short_prompt; ++i) prompts[b].push_back(prompt[(b * 7 + i) % prompt.size()]);
      in.push_back({&caches[b], prompts[b], Logits::Last});
    }
    ForwardOutput out;
    DSV3_TRY(model.forward(in, &out));
    for (int b = 0; b < batch; ++b) last[b] = {argmax(out.logits.data() + out.first_row[b] * V, V)};
  }
  SpeculativeBench r;
  r.draft_tokens = k;
  r.batch = batch;
  r.steps = static_cast<int>(steps);
  std::vector<double> plain_s, draft_s;
  double plain_bytes = 0, draft_bytes = 0;
  for (int64_t step = 0; step < steps; ++step) {
    // A plain step: one token per sequence.
    {
      std::vector<SequenceInput> in;
      for (int b = 0; b < batch; ++b) in.push_back({&caches[b], last[b], Logits::Last});
      ForwardOutput out;
      const auto t0 = Clock::now();
      DSV3_TRY(model.forward(in, &out));
      for (int b = 0; b < batch; ++b) last[b] = {argmax(out.logits.data() + out.first_row[b] * V, V)};
      plain_s.push_back(std::chrono::duration<double>(Clock::now() - t0).count());
      plain_bytes += step_bytes(fp.decode_fixed_bytes, out.experts_read);
    }
    // A step with drafts: 1 + k tokens per sequence, every row's logits compared, the MTP
    // layer's row for the kept position, then k drafting passes.
    {
      std::vector<std::vector<int32_t>> fed(static_cast<size_t>(batch));
      std::vector<SequenceInput> in;
      for (int b = 0; b < batch; ++b) {
        fed[b].assign(static_cast<size_t>(k + 1), last[b][0]);
        in.push_back({&caches[b], fed[b], Logits::All});
      }
      ForwardOutput out, mtp;
      const auto t0 = Clock::now();
      DSV3_TRY(model.forward(in, &out, /*want_hidden=*/true));
      for (int b = 0; b < batch; ++b)
        for (int j = 0; j <= k; ++j) last[b] = {argmax(out.logits.data() + (out.first_row[b] + j) * V, V)};
      double bytes = step_bytes(fp.decode_fixed_bytes, out.experts_read);
      std::vector<Model::MtpInput> catch_up;
      for (int b = 0; b < batch; ++b)
        catch_up.push_back({&caches[b], caches[b].length() - (k + 1), last[b],
                            out.hidden.data() + static_cast<int64_t>(b) * (k + 1) * D, Logits::Last});
      for (int pass = 0; pass < k; ++pass) {
        // pass 0 writes the kept position's row; the next ones draft further from there
        DSV3_TRY(model.mtp_step(catch_up, &mtp));
        bytes += step_bytes(fp.mtp_fixed_bytes, mtp.experts_read);
        for (int b = 0; b < batch; ++b) {
          catch_up[b].first_position += 1;
          catch_up[b].hidden = mtp.hidden.data() + static_cast<int64_t>(b) * D;
        }
      }
      draft_s.push_back(std::chrono::duration<double>(Clock::now() - t0).count());
      draft_bytes += bytes;
      for (auto& cache : caches) cache.truncate(cache.length() - k);  // the drafts were rejected
    }
  }
  r.plain_step_seconds = spread(plain_s);
  r.draft_step_seconds = spread(draft_s);
  r.plain_step_bytes = plain_bytes / static_cast<double>(steps);
  r.draft_step_bytes = draft_bytes / static_cast<double>(steps);
  return r;
}

// `batch` sequences, each after its own short prompt (a slice of `prompt`), decoded together:
// one forward per step with one new token per sequence. Per repeat the aggregate tokens per
// second; the bytes a step must read and its FLOPs, as means over the steps.
struct BatchedRun {
  std::vector<double> tokens_per_s;
  double bytes_per_step = 0, flops_per_step = 0;
};

Result<BatchedRun> run_batched(const Model& model, const std::vector<int32_t>& prompt, int batch, int64_t steps,
                               int repeats) {
  const ModelConfig& c = model.config();
  const ModelFootprint fp = compute_footprint(c, &model.checkpoint());
  const int64_t short_prompt = std::min<int64_t>(static_cast<int64_t>(prompt.size()), 16);
  BatchedRun run;
  double bytes = 0, flops = 0;
  int64_t counted = 0;
  for (int r = 0; r < repeats; ++r) {
    std::vector<KVCache> caches;
    for (int b = 0; b < batch; ++b) caches.push_back(model.new_cache());
    std::vector<SequenceInput> in(static_cast<size_t>(batch));
    std::vector<std::vector<int32_t>> tokens(static_cast<size_t>(batch));
    for (int b = 0; b < batch; ++b) {
      for (int64_t i = 0; i < short_prompt; ++i) tokens[b].push_back(prompt[(b * 7 + i) % prompt.size()]);
      in[b] = SequenceInput{&caches[b], tokens[b], Logits::Last};
    }
    ForwardOutput out;
    DSV3_TRY(model.forward(in, &out));
    auto t0 = Clock::now();
    for (int64_t i = 0; i < steps; ++i) {
      for (int b = 0; b < batch; ++b) {
        tokens[b] = {argmax(out.logits.data() + out.first_row[b] * c.vocab_size, c.vocab_size)};
        in[b] = SequenceInput{&caches[b], tokens[b], Logits::Last};
      }
      DSV3_TRY(model.forward(in, &out));
      bytes += static_cast<double>(fp.decode_fixed_bytes) +
               static_cast<double>(out.experts_read) * static_cast<double>(fp.routed_expert_bytes);
      flops += batch * forward_flops(c, short_prompt + i, 1, model.attention());
      ++counted;
    }
    run.tokens_per_s.push_back(static_cast<double>(steps * batch) /
                               std::chrono::duration<double>(Clock::now() - t0).count());
  }
  if (counted > 0) {
    run.bytes_per_step = bytes / static_cast<double>(counted);
    run.flops_per_step = flops / static_cast<double>(counted);
  }
  return run;
}

}  // namespace

double SpeculativeBench::predicted_speedup(double acceptance) const {
  double tokens = 1.0, p = 1.0;
  for (int i = 0; i < draft_tokens; ++i) tokens += p *= acceptance;
  return step_ratio() > 0 ? tokens / step_ratio() : 0;
}

double forward_flops(const ModelConfig& c, int64_t start, int64_t n, AttentionImpl form) {
  const double D = static_cast<double>(c.hidden_size), H = static_cast<double>(c.num_attention_heads);
  const double nope = static_cast<double>(c.qk_nope_head_dim), rope = static_cast<double>(c.qk_rope_head_dim);
  const double vd = static_cast<double>(c.v_head_dim), R = static_cast<double>(c.kv_lora_rank);
  double per_token = 0;  // multiply-adds per token in products that do not depend on position
  double attention = 0;  // multiply-adds of the score/value products over all tokens
  const bool naive = form == AttentionImpl::Naive;
  for (int64_t l = 0; l < c.num_hidden_layers; ++l) {
    double q = c.has_q_lora() ? c.q_lora_rank * D + H * (nope + rope) * c.q_lora_rank : H * (nope + rope) * D;
    per_token += q + (R + rope) * D + H * vd * D;  // q, kv_a, o_proj
    if (!naive) per_token += H * nope * R + H * R * vd;  // absorbed: W_UK into q, W_UV after the sum
    if (c.is_moe_layer(l)) {
      per_token += c.n_routed_experts * D;  // router
      per_token += (c.num_experts_per_tok + c.n_shared_experts) * 3.0 * D * c.moe_intermediate_size;
    } else {
      per_token += 3.0 * D * c.intermediate_size;
    }
    // token i attends to start + i + 1 positions: absorbed, scores over (R + rope) and the
    // weighted sum over R; naive, keys and values made from every cached position's latent
    // (wkv_b, each step), scores over (nope + rope) and the weighted sum over v
    const double pairs = static_cast<double>(n) * static_cast<double>(start) + n * (n + 1) / 2.0;
    if (naive) attention += static_cast<double>(start + n) * H * (nope + vd) * R + pairs * H * (nope + rope + vd);
    else attention += pairs * H * (R + rope + R);
  }
  const double head = static_cast<double>(c.vocab_size) * D;  // last token only
  return 2.0 * (per_token * static_cast<double>(n) + attention + head);
}

Result<BenchReport> run_bench(const Model& model, const BenchOptions& o) {
  if (o.prompt_tokens < 1 || o.decode_tokens < 0 || o.repeats < 1) return Error("bench needs -p >= 1, -n >= 0, --repeat >= 1");
  int64_t longest_prompt = o.prompt_tokens;
  for (int64_t p : o.sweep_prompt_tokens) {
    if (p < 1) return Error("bench --sweep: prompt lengths must be >= 1");
    longest_prompt = std::max(longest_prompt, p);
  }
  if (longest_prompt > model.max_context())
    return error_f("bench --sweep: a prompt of %lld tokens exceeds the context limit %lld (--ctx)",
                   static_cast<long long>(longest_prompt), static_cast<long long>(model.max_context()));
  if (o.prompt_tokens + o.decode_tokens > model.max_context())
    return error_f("-p + -n (%lld) exceeds the context limit %lld", static_cast<long long>(o.prompt_tokens + o.decode_tokens),
                   static_cast<long long>(model.max_context()));
  const ModelConfig& c = model.config();
  BenchReport rep;
  rep.model = model.checkpoint().dir();
  rep.cpu = cpu_features().model_name;
  rep.isa = kernels::isa_name(kernels::active_isa());
  rep.math = kernels::matmul_math_name(kernels::matmul_math());
  rep.threads = model.pool().size();
  rep.prompt_tokens = o.prompt_tokens;
  rep.decode_tokens = o.decode_tokens;
  rep.repeats = o.repeats;
  rep.resident_bytes_after_load = memory_stats().resident_bytes;
  rep.file_bytes = model.checkpoint().total_file_bytes();
  const PageResidency weight_pages = model.checkpoint().page_residency();
  rep.weight_resident_bytes = weight_pages.resident_bytes;
  rep.weight_huge_page_bytes = weight_pages.huge_bytes;
  rep.decode_bytes_per_token = compute_footprint(c, &model.checkpoint()).decode_bytes_per_token;

  // A fixed pseudo-random prompt (ids spread over the vocabulary).
  std::vector<int32_t> prompt(static_cast<size_t>(longest_prompt));
  uint64_t x = 12345;
  for (auto& t : prompt) {
    x = x * 6364136223846793005ull + 1442695040888963407ull;
    t = static_cast<int32_t>((x >> 33) % static_cast<uint64_t>(c.vocab_size));
  }
  std::vector<double> prefill, decode, paired_probe, paired_ratio, paired_peak, paired_peak_ratio;
  // One probe buffer (1 GB by default) for the measurements around each decode run and the
  // one at the end.
  std::optional<kernels::ReadBandwidthProbe> probe;
  if (o.probes) probe.emplace(model.pool(), o.probe_bytes);
  // The peak of the math the FP8 products use, in short passes (3 x 50 ms) around each run.
  auto math_peak = [&] { return kernels::measure_matmul_math_peak(model.pool(), 0.05, 3).best_flops_per_s; };
  const double prompt_flops = forward_flops(c, 0, o.prompt_tokens, model.attention());
  for (int r = 0; r < o.repeats; ++r) {
    KVCache cache = model.new_cache();
    ForwardOutput out;
    SequenceInput in{&cache, std::span<const int32_t>(prompt).first(static_cast<size_t>(o.prompt_tokens)), Logits::Last};
    if (o.probes) paired_peak.push_back(math_peak());
    auto t0 = Clock::now();
    DSV3_TRY(model.forward({&in, 1}, &out));
    double secs = std::chrono::duration<double>(Clock::now() - t0).count();
    prefill.push_back(static_cast<double>(o.prompt_tokens) / secs);
    if (o.probes) {  // the best pass of those right before and right after the run
      paired_peak.back() = std::max(paired_peak.back(), math_peak());
      paired_peak_ratio.push_back(prompt_flops / secs / paired_peak.back());
    }
    if (o.decode_tokens == 0) continue;
    const bool last = r == o.repeats - 1;
    if (probe) paired_probe.push_back(probe->measure(3).best_bytes_per_s);
    // The ranks' communication counters right around the decode, not around rank 0's probe
    // passes (the other ranks wait in a collective meanwhile, which would count as theirs).
    const std::vector<CommStats> comm_before = last ? model.gather_comm_stats() : std::vector<CommStats>{};
    if (last && o.profile) kernels::product_profile_start();
    auto t1 = Clock::now();
    for (int64_t i = 0; i < o.decode_tokens; ++i) {
      int32_t next[1] = {argmax(out.logits.data(), c.vocab_size)};
      SequenceInput one{&cache, next, Logits::Last};
      DSV3_TRY(model.forward({&one, 1}, &out));
    }
    const double decode_seconds = std::chrono::duration<double>(Clock::now() - t1).count();
    const std::vector<CommStats> comm_after =
        last && model.partition().split() ? model.gather_comm_stats() : std::vector<CommStats>{};
    if (last && o.profile) {
      kernels::product_profile_stop();
      const double n = static_cast<double>(o.decode_tokens);
      rep.decode_step_seconds = decode_seconds / n;
      for (const kernels::ProductPartStats& p : kernels::product_profile_parts())
        rep.decode_parts.push_back({p.part, static_cast<double>(p.regions) / n, static_cast<double>(p.weight_bytes) / n,
                                    p.seconds / n, p.seconds > 0 ? p.busy_seconds / (p.seconds * p.threads) : 0});
    }
    decode.push_back(static_cast<double>(o.decode_tokens) / decode_seconds);
    if (probe) {  // the best pass of those right before and right after the run
      paired_probe.back() = std::max(paired_probe.back(), probe->measure(3).best_bytes_per_s);
      paired_ratio.push_back(decode.back() * static_cast<double>(rep.decode_bytes_per_token) / paired_probe.back());
      if (last && o.profile) rep.decode_profile_probe_bytes_per_s = paired_probe.back();
    }
    if (last && model.partition().split()) {
      const double n = static_cast<double>(o.decode_tokens);
      for (size_t k = 0; k < comm_after.size(); ++k) {
        const double comm = comm_after[k].seconds - comm_before[k].seconds;
        rep.ranks.push_back({static_cast<int>(k), (decode_seconds - comm) / n, comm / n,
                             static_cast<double>(comm_after[k].bytes_sent - comm_before[k].bytes_sent) / n,
                             static_cast<double>(comm_after[k].collectives - comm_before[k].collectives) / n});
      }
    }
  }
  rep.prefill_tokens_per_s = spread(prefill);
  rep.decode_tokens_per_s = spread(decode);
  rep.paired_read_bandwidth_bytes_per_s = spread(paired_probe);
  rep.paired_bandwidth_ratio = spread(paired_ratio);
  rep.paired_peak_flops_per_s = spread(paired_peak);
  rep.paired_flops_ratio = spread(paired_peak_ratio);
  rep.batch = o.batch;
  if (o.batch > 1 && o.decode_tokens > 0) {
    DSV3_ASSIGN(BatchedRun run, run_batched(model, prompt, o.batch, o.decode_tokens, o.repeats));
    rep.batch_decode_tokens_per_s = spread(run.tokens_per_s);
  }
  for (int64_t length : o.sweep_prompt_tokens) {
    PrefillPoint point;
    point.tokens = length;
    std::vector<double> rates;
    for (int r = 0; r < o.repeats; ++r) {
      KVCache cache = model.new_cache();
      ForwardOutput out;
      SequenceInput in{&cache, std::span<const int32_t>(prompt).first(static_cast<size_t>(length)), Logits::Last};
      auto t0 = Clock::now();
      DSV3_TRY(model.forward({&in, 1}, &out));
      rates.push_back(static_cast<double>(length) / std::chrono::duration<double>(Clock::now() - t0).count());
    }
    point.tokens_per_s = spread(rates);
    point.flops_per_s = point.tokens_per_s.median * forward_flops(c, 0, length, model.attention()) / static_cast<double>(length);
    rep.prefill_sweep.push_back(point);
  }
  for (int b : o.sweep_batches) {
    if (b < 1 || o.decode_tokens < 1) return Error("bench --sweep: batches must be >= 1, and -n >= 1");
    DSV3_ASSIGN(BatchedRun run, run_batched(model, prompt, b, o.decode_tokens, o.repeats));
    BatchPoint point;
    point.batch = b;
    point.tokens_per_s = spread(run.tokens_per_s);
    point.bytes_per_step = run.bytes_per_step;
    point.flops_per_step = run.flops_per_step;
    rep.batch_sweep.push_back(point);
  }
  if (o.draft_tokens > 0 && o.decode_tokens > 0) {
    if (!model.has_mtp()) return Error("bench --mtp needs the model loaded with its MTP module");
    DSV3_ASSIGN(rep.speculative, bench_speculative(model, prompt, o.decode_tokens, o.batch, o.draft_tokens));
  }
  rep.decode_bytes_per_s = rep.decode_tokens_per_s.median * static_cast<double>(rep.decode_bytes_per_token);
  rep.prefill_flops_per_token = prompt_flops / static_cast<double>(o.prompt_tokens);
  rep.prefill_flops_per_s = rep.prefill_tokens_per_s.median * rep.prefill_flops_per_token;
  if (o.probes) {
    rep.read_bandwidth_bytes_per_s = probe->measure().best_bytes_per_s;
    rep.peak_fma_flops_per_s = kernels::measure_peak_flops(model.pool(), kernels::active_isa()).best_flops_per_s;
    if (kernels::matmul_math_supported(kernels::MatmulMath::Bf16))
      rep.peak_bf16_dot_flops_per_s = kernels::measure_peak_bf16_dot_flops(model.pool()).best_flops_per_s;
    rep.peak_flops_per_s = kernels::matmul_math() == kernels::MatmulMath::Bf16 ? rep.peak_bf16_dot_flops_per_s
                                                                                 : rep.peak_fma_flops_per_s;
  }
  for (PrefillPoint& p : rep.prefill_sweep)
    p.peak_ratio = rep.peak_flops_per_s > 0 ? p.flops_per_s / rep.peak_flops_per_s : 0;
  for (BatchPoint& p : rep.batch_sweep) {
    p.bandwidth_ceiling = p.bytes_per_step > 0 ? p.batch * rep.read_bandwidth_bytes_per_s / p.bytes_per_step : 0;
    p.flops_ceiling = p.flops_per_step > 0 ? p.batch * rep.peak_flops_per_s / p.flops_per_step : 0;
  }
  return rep;
}

Json BenchReport::prefill_sweep_json() const {
  Json a = Json::array();
  for (const PrefillPoint& p : prefill_sweep)
    a.push_back(Json{{"prompt_tokens", p.tokens},
                     {"tokens_per_s", spread_json(p.tokens_per_s)},
                     {"flops_per_s", p.flops_per_s},
                     {"peak_ratio", p.peak_ratio}});
  return a;
}

Json BenchReport::batch_sweep_json() const {
  Json a = Json::array();
  for (const BatchPoint& p : batch_sweep)
    a.push_back(Json{{"batch", p.batch},
                     {"tokens_per_s", spread_json(p.tokens_per_s)},
                     {"bytes_per_step", p.bytes_per_step},
                     {"flops_per_step", p.flops_per_step},
                     {"bandwidth_ceiling_tokens_per_s", p.bandwidth_ceiling},
                     {"flops_ceiling_tokens_per_s", p.flops_ceiling}});
  return a;
}

Json BenchReport::to_json() const {
  Json rank_costs = Json::array();
  for (const RankDecodeCost& r : ranks)
    rank_costs.push_back({{"rank", r.rank},
                          {"compute_seconds_per_token", r.compute_seconds_per_token},
                          {"comm_seconds_per_token", r.comm_seconds_per_token},
                          {"bytes_sent_per_token", r.bytes_sent_per_token},
                          {"collectives_per_token", r.collectives_per_token}});
  Json parts = Json::array();
  for (const DecodePart& p : decode_parts)
    parts.push_back({{"part", p.part},
                     {"regions_per_token", p.regions_per_token},
                     {"weight_bytes_per_token", p.bytes_per_token},
                     {"seconds_per_token", p.seconds_per_token},
                     {"read_bytes_per_s", p.read_bytes_per_s()},
                     {"threads_busy", p.busy}});
  return Json{{"ranks", rank_costs},
              {"decode_profile", decode_parts.empty() ? Json(nullptr)
                                                      : Json{{"step_seconds", decode_step_seconds},
                                                             {"read_bandwidth_bytes_per_s", decode_profile_probe_bytes_per_s},
                                                             {"parts", parts}}},
              {"model", model},
              {"cpu", cpu},
              {"kernels", isa},
              {"math", math},
              {"threads", threads},
              {"prompt_tokens", prompt_tokens},
              {"decode_tokens", decode_tokens},
              {"repeats", repeats},
              {"prefill_tokens_per_s", spread_json(prefill_tokens_per_s)},
              {"decode_tokens_per_s", spread_json(decode_tokens_per_s)},
              {"batch", batch},
              {"batch_decode_tokens_per_s", spread_json(batch_decode_tokens_per_s)},
              {"decode_weight_bytes_per_token", decode_bytes_per_token},
              {"decode_bytes_per_s", decode_bytes_per_s},
              {"read_bandwidth_bytes_per_s", read_bandwidth_bytes_per_s},
              {"decode_bandwidth_ratio", bandwidth_ratio()},
              {"paired_read_bandwidth_bytes_per_s", spread_json(paired_read_bandwidth_bytes_per_s)},
              {"paired_decode_bandwidth_ratio", spread_json(paired_bandwidth_ratio)},
              {"prefill_flops_per_token", prefill_flops_per_token},
              {"prefill_flops_per_s", prefill_flops_per_s},
              {"peak_flops_per_s", peak_flops_per_s},
              {"peak_fma_flops_per_s", peak_fma_flops_per_s},
              {"peak_bf16_dot_flops_per_s", peak_bf16_dot_flops_per_s},
              {"prefill_sweep", prefill_sweep_json()},
              {"batch_sweep", batch_sweep_json()},
              {"prefill_peak_ratio", flops_ratio()},
              {"paired_peak_flops_per_s", spread_json(paired_peak_flops_per_s)},
              {"paired_prefill_peak_ratio", spread_json(paired_flops_ratio)},
              {"resident_bytes_after_load", resident_bytes_after_load},
              {"checkpoint_file_bytes", file_bytes},
              {"weight_resident_bytes", weight_resident_bytes},
              {"weight_huge_page_bytes", weight_huge_page_bytes},
              {"speculative", speculative ? Json{{"draft_tokens", speculative->draft_tokens},
                                                 {"batch", speculative->batch},
                                                 {"steps", speculative->steps},
                                                 {"plain_step_seconds", spread_json(speculative->plain_step_seconds)},
                                                 {"draft_step_seconds", spread_json(speculative->draft_step_seconds)},
                                                 {"step_ratio", speculative->step_ratio()},
                                                 {"plain_step_bytes", speculative->plain_step_bytes},
                                                 {"draft_step_bytes", speculative->draft_step_bytes},
                                                 {"bytes_ratio", speculative->bytes_ratio()},
                                                 {"predicted_speedup",
                                                  {{"0.6", speculative->predicted_speedup(0.6)},
                                                   {"0.8", speculative->predicted_speedup(0.8)},
                                                   {"0.9", speculative->predicted_speedup(0.9)}}}}
                                          : Json(nullptr)}};
}

// The last run's decode step, part by part, each part's read rate next to the probe's.
std::string BenchReport::decode_profile_text() const {
  const double probe = decode_profile_probe_bytes_per_s;
  std::string s = str_f("profile:  the last run's decode, %.2f ms a token; %s weight products by part "
                        "(read rate vs the run's probe, %.2f GB/s):\n",
                        decode_step_seconds * 1e3, ranks.empty() ? "its" : "rank 0's share of its", probe / 1e9);
  s += str_f("          %-36s %6s %9s %8s %9s %6s %8s\n", "part", "share", "MB/token", "regions", "GB/s", "probe",
             "busy");
  double in_products = 0;
  for (const DecodePart& p : decode_parts) {
    in_products += p.seconds_per_token;
    s += str_f("          %-36s %5.1f%% %9.2f %8.1f %9.2f %5.0f%% %7.0f%%\n", p.part.c_str(),
               decode_step_seconds > 0 ? 100 * p.seconds_per_token / decode_step_seconds : 0.0, p.bytes_per_token / 1e6,
               p.regions_per_token, p.read_bytes_per_s() / 1e9, probe > 0 ? 100 * p.read_bytes_per_s() / probe : 0.0,
               100 * p.busy);
  }
  s += str_f("          %-36s %5.1f%%\n", "(outside the products)",
             decode_step_seconds > 0 ? 100 * (1 - in_products / decode_step_seconds) : 0.0);
  return s;
}

std::string BenchReport::to_text() const {
  std::string s;
  s += str_f("model:    %s (%.2f GB of files, %.0f MB resident after load; of the weights' %.0f MB in memory, "
             "%.0f%% in 2 MB pages)\n",
             model.c_str(), file_bytes / 1e9, resident_bytes_after_load / 1e6, weight_resident_bytes / 1e6,
             weight_resident_bytes ? 100.0 * static_cast<double>(weight_huge_page_bytes) / weight_resident_bytes : 0.0);
  s += str_f("machine:  %s, kernels %s, matmul math %s, %d threads\n", cpu.c_str(), isa.c_str(), math.c_str(), threads);
  s += str_f("peaks:    f32 FMA %.1f GFLOP/s", peak_fma_flops_per_s / 1e9);
  if (peak_bf16_dot_flops_per_s > 0) s += str_f(", bf16 dot (vdpbf16ps) %.1f GFLOP/s", peak_bf16_dot_flops_per_s / 1e9);
  s += str_f("; read bandwidth %.2f GB/s\n", read_bandwidth_bytes_per_s / 1e9);
  s += str_f("prefill:  %lld tokens: %.1f tok/s median (min %.1f, max %.1f) over %d runs\n",
             static_cast<long long>(prompt_tokens), prefill_tokens_per_s.median, prefill_tokens_per_s.min,
             prefill_tokens_per_s.max, repeats);
  s += str_f("          %.2f GFLOP/token -> %.1f GFLOP/s; %s peak %.1f GFLOP/s: %.0f%% of peak\n",
             prefill_flops_per_token / 1e9, prefill_flops_per_s / 1e9, math == "bf16" ? "bf16 dot" : "f32 FMA",
             peak_flops_per_s / 1e9, 100 * flops_ratio());
  if (paired_flops_ratio.median > 0)
    s += str_f("          peak around each run: %.1f GFLOP/s median (min %.1f, max %.1f); each run against its "
               "own: %.0f%% of peak median (min %.0f%%, max %.0f%%)\n",
               paired_peak_flops_per_s.median / 1e9, paired_peak_flops_per_s.min / 1e9,
               paired_peak_flops_per_s.max / 1e9, 100 * paired_flops_ratio.median, 100 * paired_flops_ratio.min,
               100 * paired_flops_ratio.max);
  if (decode_tokens > 0) {
    s += str_f("decode:   %lld tokens: %.2f tok/s median (min %.2f, max %.2f)\n", static_cast<long long>(decode_tokens),
               decode_tokens_per_s.median, decode_tokens_per_s.min, decode_tokens_per_s.max);
    s += str_f("          %.1f MB of weights read per token -> %.2f GB/s; read bandwidth %.2f GB/s: %.0f%% of bandwidth\n",
               decode_bytes_per_token / 1e6, decode_bytes_per_s / 1e9, read_bandwidth_bytes_per_s / 1e9,
               100 * bandwidth_ratio());
    if (paired_bandwidth_ratio.median > 0)
      s += str_f("          probe around each run: %.2f GB/s median (min %.2f, max %.2f); each run against its "
                 "own: %.0f%% of bandwidth median (min %.0f%%, max %.0f%%)\n",
                 paired_read_bandwidth_bytes_per_s.median / 1e9, paired_read_bandwidth_bytes_per_s.min / 1e9,
                 paired_read_bandwidth_bytes_per_s.max / 1e9, 100 * paired_bandwidth_ratio.median,
                 100 * paired_bandwidth_ratio.min, 100 * paired_bandwidth_ratio.max);
  }
  if (!decode_parts.empty()) s += decode_profile_text();
  for (const RankDecodeCost& r : ranks)
    s += str_f("rank %d:   per decoded token: compute %.2f ms, communication %.2f ms, %.1f KB sent, %.0f collectives\n",
               r.rank, r.compute_seconds_per_token * 1e3, r.comm_seconds_per_token * 1e3, r.bytes_sent_per_token / 1e3,
               r.collectives_per_token);
  if (batch > 1 && decode_tokens > 0)
    s += str_f("batched:  %d sequences decoded together: %.2f tok/s aggregate median (min %.2f, max %.2f), %.2fx one sequence\n",
               batch, batch_decode_tokens_per_s.median, batch_decode_tokens_per_s.min, batch_decode_tokens_per_s.max,
               decode_tokens_per_s.median > 0 ? batch_decode_tokens_per_s.median / decode_tokens_per_s.median : 0.0);
  for (const PrefillPoint& p : prefill_sweep)
    s += str_f("sweep:    prefill %5lld tokens: %8.1f tok/s median (min %.1f, max %.1f), %.1f GFLOP/s, %.0f%% of peak\n",
               static_cast<long long>(p.tokens), p.tokens_per_s.median, p.tokens_per_s.min, p.tokens_per_s.max,
               p.flops_per_s / 1e9, 100 * p.peak_ratio);
  for (const BatchPoint& p : batch_sweep)
    s += str_f("sweep:    decode batch %2d: %7.2f tok/s aggregate median (min %.2f, max %.2f); ceilings: bandwidth "
               "%.1f tok/s (%.0f MB/step), FLOPs %.1f tok/s: %.0f%% / %.0f%%\n",
               p.batch, p.tokens_per_s.median, p.tokens_per_s.min, p.tokens_per_s.max, p.bandwidth_ceiling,
               p.bytes_per_step / 1e6, p.flops_ceiling,
               p.bandwidth_ceiling > 0 ? 100 * p.tokens_per_s.median / p.bandwidth_ceiling : 0.0,
               p.flops_ceiling > 0 ? 100 * p.tokens_per_s.median / p.flops_ceiling : 0.0);
  if (speculative) {
    const SpeculativeBench& m = *speculative;
    s += str_f("mtp:      %d draft(s) per sequence, batch %d: a draft + verify step takes %.2fx a plain step "
               "(%.1f vs %.1f ms median, %d alternated steps)\n",
               m.draft_tokens, m.batch, m.step_ratio(), 1e3 * m.draft_step_seconds.median,
               1e3 * m.plain_step_seconds.median, m.steps);
    s += str_f("          bytes model %.2fx (%.1f vs %.1f MB read per step)\n", m.bytes_ratio(), m.draft_step_bytes / 1e6,
               m.plain_step_bytes / 1e6);
    s += str_f("          predicted speedup at acceptance 0.6 / 0.8 / 0.9: %.2fx / %.2fx / %.2fx\n",
               m.predicted_speedup(0.6), m.predicted_speedup(0.8), m.predicted_speedup(0.9));
  }
  return s;
}

}  // namespace dsv3
