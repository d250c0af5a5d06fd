#include "tools/bench.h"

#include <algorithm>
#include <chrono>

#include "base/cpu_features.h"
#include "base/memory_stats.h"
#include "kernels/dispatch.h"
#include "kernels/probe.h"
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

}  // namespace

double forward_flops(const ModelConfig& c, int64_t start, int64_t n) {
  const double D = static_cast<double>(c.hidden_size), H = static_cast<double>(c.num_attention_heads);
  const double nope = static_cast<double>(c.qk_nope_head_dim), rope = static_cast<double>(c.qk_rope_head_dim);
  const double vd = static_cast<double>(c.v_head_dim), R = static_cast<double>(c.kv_lora_rank);
  double per_token = 0;  // multiply-adds per token in products that do not depend on position
  double attention = 0;  // multiply-adds of the score/value products over all tokens
  for (int64_t l = 0; l < c.num_hidden_layers; ++l) {
    double q = c.has_q_lora() ? c.q_lora_rank * D + H * (nope + rope) * c.q_lora_rank : H * (nope + rope) * D;
    per_token += q + (R + rope) * D + H * vd * D;  // q, kv_a, o_proj
    per_token += H * nope * R + H * R * vd;        // absorbed W_UK into q, W_UV after the sum
    if (c.is_moe_layer(l)) {
      per_token += c.n_routed_experts * D;  // router
      per_token += (c.num_experts_per_tok + c.n_shared_experts) * 3.0 * D * c.moe_intermediate_size;
    } else {
      per_token += 3.0 * D * c.intermediate_size;
    }
    // token i attends to start + i + 1 positions: scores over (R + rope), weighted sum over R
    const double pairs = static_cast<double>(n) * static_cast<double>(start) + n * (n + 1) / 2.0;
    attention += pairs * H * (R + rope + R);
  }
  const double head = static_cast<double>(c.vocab_size) * D;  // last token only
  return 2.0 * (per_token * static_cast<double>(n) + attention + head);
}

Result<BenchReport> run_bench(const Model& model, const BenchOptions& o) {
  if (o.prompt_tokens < 1 || o.decode_tokens < 0 || o.repeats < 1) return Error("bench needs -p >= 1, -n >= 0, --repeat >= 1");
  if (o.prompt_tokens + o.decode_tokens > model.max_context())
    return error_f("-p + -n (%lld) exceeds the context limit %lld", static_cast<long long>(o.prompt_tokens + o.decode_tokens),
                   static_cast<long long>(model.max_context()));
  const ModelConfig& c = model.config();
  BenchReport rep;
  rep.model = model.checkpoint().dir();
  rep.cpu = cpu_features().model_name;
  rep.isa = kernels::isa_name(kernels::active_isa());
  rep.threads = model.pool().size();
  rep.prompt_tokens = o.prompt_tokens;
  rep.decode_tokens = o.decode_tokens;
  rep.repeats = o.repeats;
  rep.resident_bytes_after_load = memory_stats().resident_bytes;
  rep.file_bytes = model.checkpoint().total_file_bytes();
  rep.decode_bytes_per_token = compute_footprint(c, &model.checkpoint()).decode_bytes_per_token;

  // A fixed pseudo-random prompt (ids spread over the vocabulary).
  std::vector<int32_t> prompt(static_cast<size_t>(o.prompt_tokens));
  uint64_t x = 12345;
  for (auto& t : prompt) {
    x = x * 6364136223846793005ull + 1442695040888963407ull;
    t = static_cast<int32_t>((x >> 33) % static_cast<uint64_t>(c.vocab_size));
  }
  std::vector<double> prefill, decode;
  for (int r = 0; r < o.repeats; ++r) {
    KVCache cache = model.new_cache();
    ForwardOutput out;
    SequenceInput in{&cache, prompt, Logits::Last};
    auto t0 = Clock::now();
    DSV3_TRY(model.forward({&in, 1}, &out));
    double secs = std::chrono::duration<double>(Clock::now() - t0).count();
    prefill.push_back(static_cast<double>(o.prompt_tokens) / secs);
    if (o.decode_tokens == 0) continue;
    auto t1 = Clock::now();
    for (int64_t i = 0; i < o.decode_tokens; ++i) {
      int32_t next[1] = {argmax(out.logits.data(), c.vocab_size)};
      SequenceInput one{&cache, next, Logits::Last};
      DSV3_TRY(model.forward({&one, 1}, &out));
    }
    decode.push_back(static_cast<double>(o.decode_tokens) / std::chrono::duration<double>(Clock::now() - t1).count());
  }
  rep.prefill_tokens_per_s = spread(prefill);
  rep.decode_tokens_per_s = spread(decode);
  rep.batch = o.batch;
  if (o.batch > 1 && o.decode_tokens > 0) {
    // `batch` sequences, each after its own short prompt (a slice of the one above), decoded
    // together: one forward per step with one new token per sequence.
    const int64_t short_prompt = std::min<int64_t>(o.prompt_tokens, 16);
    std::vector<double> batched;
    for (int r = 0; r < o.repeats; ++r) {
      std::vector<KVCache> caches;
      for (int b = 0; b < o.batch; ++b) caches.push_back(model.new_cache());
      std::vector<SequenceInput> in(static_cast<size_t>(o.batch));
      std::vector<std::vector<int32_t>> tokens(static_cast<size_t>(o.batch));
      for (int b = 0; b < o.batch; ++b) {
        for (int64_t i = 0; i < short_prompt; ++i) tokens[b].push_back(prompt[(b * 7 + i) % prompt.size()]);
        in[b] = SequenceInput{&caches[b], tokens[b], Logits::Last};
      }
      ForwardOutput out;
      DSV3_TRY(model.forward(in, &out));
      auto t0 = Clock::now();
      for (int64_t i = 0; i < o.decode_tokens; ++i) {
        for (int b = 0; b < o.batch; ++b) {
          tokens[b] = {argmax(out.logits.data() + out.first_row[b] * c.vocab_size, c.vocab_size)};
          in[b] = SequenceInput{&caches[b], tokens[b], Logits::Last};
        }
        DSV3_TRY(model.forward(in, &out));
      }
      batched.push_back(static_cast<double>(o.decode_tokens * o.batch) /
                        std::chrono::duration<double>(Clock::now() - t0).count());
    }
    rep.batch_decode_tokens_per_s = spread(batched);
  }
  rep.decode_bytes_per_s = rep.decode_tokens_per_s.median * static_cast<double>(rep.decode_bytes_per_token);
  rep.prefill_flops_per_token = forward_flops(c, 0, o.prompt_tokens) / static_cast<double>(o.prompt_tokens);
  rep.prefill_flops_per_s = rep.prefill_tokens_per_s.median * rep.prefill_flops_per_token;
  if (o.probes) {
    rep.read_bandwidth_bytes_per_s = kernels::measure_read_bandwidth(model.pool(), o.probe_bytes).best_bytes_per_s;
    rep.peak_flops_per_s = kernels::measure_peak_flops(model.pool(), kernels::active_isa()).best_flops_per_s;
  }
  return rep;
}

Json BenchReport::to_json() const {
  return Json{{"model", model},
              {"cpu", cpu},
              {"kernels", isa},
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
              {"prefill_flops_per_token", prefill_flops_per_token},
              {"prefill_flops_per_s", prefill_flops_per_s},
              {"peak_flops_per_s", peak_flops_per_s},
              {"prefill_peak_ratio", flops_ratio()},
              {"resident_bytes_after_load", resident_bytes_after_load},
              {"checkpoint_file_bytes", file_bytes}};
}

std::string BenchReport::to_text() const {
  std::string s;
  s += str_f("model:    %s (%.2f GB of files, %.0f MB resident after load)\n", model.c_str(), file_bytes / 1e9,
             resident_bytes_after_load / 1e6);
  s += str_f("machine:  %s, kernels %s, %d threads\n", cpu.c_str(), isa.c_str(), threads);
  s += str_f("prefill:  %lld tokens: %.1f tok/s median (min %.1f, max %.1f) over %d runs\n",
             static_cast<long long>(prompt_tokens), prefill_tokens_per_s.median, prefill_tokens_per_s.min,
             prefill_tokens_per_s.max, repeats);
  s += str_f("          %.2f GFLOP/token -> %.1f GFLOP/s; kernel peak %.1f GFLOP/s: %.0f%% of peak\n",
             prefill_flops_per_token / 1e9, prefill_flops_per_s / 1e9, peak_flops_per_s / 1e9, 100 * flops_ratio());
  if (decode_tokens > 0) {
    s += str_f("decode:   %lld tokens: %.2f tok/s median (min %.2f, max %.2f)\n", static_cast<long long>(decode_tokens),
               decode_tokens_per_s.median, decode_tokens_per_s.min, decode_tokens_per_s.max);
    s += str_f("          %.1f MB of weights read per token -> %.2f GB/s; read bandwidth %.2f GB/s: %.0f%% of bandwidth\n",
               decode_bytes_per_token / 1e6, decode_bytes_per_s / 1e9, read_bandwidth_bytes_per_s / 1e9,
               100 * bandwidth_ratio());
  }
  if (batch > 1 && decode_tokens > 0)
    s += str_f("batched:  %d sequences decoded together: %.2f tok/s aggregate median (min %.2f, max %.2f), %.2fx one sequence\n",
               batch, batch_decode_tokens_per_s.median, batch_decode_tokens_per_s.min, batch_decode_tokens_per_s.max,
               decode_tokens_per_s.median > 0 ? batch_decode_tokens_per_s.median / decode_tokens_per_s.median : 0.0);
  return s;
}

}  // namespace dsv3
