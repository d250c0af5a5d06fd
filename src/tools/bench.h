#pragma once
// dsv3 bench: prefill and decode speed of a model on this machine, next to the machine's own
// ceilings measured by the same command: decode reads every active weight once per token, so
// its ceiling is read bandwidth / weight bytes per token; prefill is matrix multiplication,
// bounded by the kernels' FMA peak.

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "base/json.h"
#include "base/result.h"
#include "model/model.h"

namespace dsv3 {

struct BenchOptions {
  int64_t prompt_tokens = 512;  // -p
  int64_t decode_tokens = 64;   // -n
  int repeats = 3;
  int batch = 1;  // > 1: also decode this many sequences together (what a busy server does)
  size_t probe_bytes = size_t(1) << 30;  // bandwidth probe buffer
  bool probes = true;
  int draft_tokens = 0;  // > 0 (--mtp): also time draft + verify steps against plain ones
  bool profile = false;  // --profile: account the last run's decode product by product
  // --sweep: prefill at each of these lengths and batched decode at each of these batches,
  // each next to the machine's ceilings.
  std::vector<int64_t> sweep_prompt_tokens;
  std::vector<int> sweep_batches;
};

struct Spread {
  double min = 0, median = 0, max = 0;
};

// Speculative decoding's step cost: a step that verifies K drafts per sequence (1 + K tokens
// through the main model, the MTP layer's upkeep and K drafting passes) against a plain
// decode step, at the same batch and context, alternated. The bytes model counts what each
// step must read: the fixed weights once, each routed expert any of its tokens chose once,
// the MTP layer (with its head) once per pass.
struct SpeculativeBench {
  int draft_tokens = 0, batch = 1, steps = 0;
  Spread plain_step_seconds, draft_step_seconds;
  double plain_step_bytes = 0, draft_step_bytes = 0;  // means per step
  double step_ratio() const { return plain_step_seconds.median > 0 ? draft_step_seconds.median / plain_step_seconds.median : 0; }
  double bytes_ratio() const { return plain_step_bytes > 0 ? draft_step_bytes / plain_step_bytes : 0; }
  // Tokens per second against plain decoding if each draft is kept with probability
  // `acceptance` (given the ones before it were): (1 + a + ... + a^K) / step_ratio.
  double predicted_speedup(double acceptance) const;
};

// One rank's share of a decoded token's time when the model is split across ranks (measured
// over the last run's single-sequence decode).
struct RankDecodeCost {
  int rank = 0;
  double compute_seconds_per_token = 0;  // wall time outside collectives
  double comm_seconds_per_token = 0;     // inside collectives, waiting for peers included
  double bytes_sent_per_token = 0;       // payload this rank contributed
  double collectives_per_token = 0;
};

// One prefill length of a sweep: tokens per second, the FLOP rate and its share of the peak
// of the matmul math in use.
struct PrefillPoint {
  int64_t tokens = 0;
  Spread tokens_per_s;
  double flops_per_s = 0, peak_ratio = 0;
};

// One batch of a sweep: `batch` sequences decoded together after short prompts. Each step
// must read the fixed weights once and every routed expert any of its tokens chose once
// (bytes_per_step, the mean); at the probe's bandwidth that allows bandwidth_ceiling tokens
// per second, and the step's FLOPs at the math's peak allow flops_ceiling.
struct BatchPoint {
  int batch = 0;
  Spread tokens_per_s;  // aggregate over the sequences
  double bytes_per_step = 0, flops_per_step = 0;
  double bandwidth_ceiling = 0, flops_ceiling = 0;  // tokens per second
};

// One part of the model's weight products over the last run's decode (--profile; kernels/
// product_profile.h): per decoded token, its products' weight bytes and wall time.
struct DecodePart {
  std::string part;
  double regions_per_token = 0;
  double bytes_per_token = 0;
  double seconds_per_token = 0;
  double busy = 0;  // the threads' time in its tasks / (wall time x threads)
  double read_bytes_per_s() const { return seconds_per_token > 0 ? bytes_per_token / seconds_per_token : 0; }
};

struct BenchReport {
  std::string model, cpu, isa, math;
  int threads = 0;
  int64_t prompt_tokens = 0, decode_tokens = 0;
  int repeats = 0;
  Spread prefill_tokens_per_s, decode_tokens_per_s;
  int batch = 1;
  Spread batch_decode_tokens_per_s;  // all sequences together, when batch > 1
  uint64_t decode_bytes_per_token = 0;       // weight bytes read per decoded token
  double decode_bytes_per_s = 0;             // at the median decode speed
  double read_bandwidth_bytes_per_s = 0;     // probe (best pass)
  // The same probe measured again right before and right after each decode run (with probes
  // on; the best pass of both): what the memory gave around that run, and the run's share of
  // it (weight bytes per token x the run's tok/s / that probe), for machines whose bandwidth
  // drifts from minute to minute.
  Spread paired_read_bandwidth_bytes_per_s, paired_bandwidth_ratio;
  // The peak of the matmul math in use measured right before and right after each prefill
  // run (the best pass of both), and the run's share of it: the machine's FLOP rate drifts too
  // where other tenants share the cores.
  Spread paired_peak_flops_per_s, paired_flops_ratio;
  double prefill_flops_per_token = 0;        // matmul + attention FLOPs per prompt token (average)
  double prefill_flops_per_s = 0;            // at the median prefill speed
  double peak_flops_per_s = 0;               // probe of the matmul math in use (f32 FMA or bf16 dot)
  double peak_fma_flops_per_s = 0;           // probe of the active kernel path's f32 FMAs
  double peak_bf16_dot_flops_per_s = 0;      // probe of vdpbf16ps (0 where the CPU lacks it)
  std::vector<PrefillPoint> prefill_sweep;
  std::vector<BatchPoint> batch_sweep;
  uint64_t resident_bytes_after_load = 0, file_bytes = 0;
  // The weight files' pages in memory, and those of them in 2 MB pages (base/memory_stats.h).
  uint64_t weight_resident_bytes = 0, weight_huge_page_bytes = 0;
  std::optional<SpeculativeBench> speculative;
  std::vector<RankDecodeCost> ranks;  // split across ranks: each rank's decode costs
  // --profile: the last run's decode step, part by part, and the step's own time per token.
  std::vector<DecodePart> decode_parts;
  double decode_step_seconds = 0;
  double decode_profile_probe_bytes_per_s = 0;  // that run's probe, the best pass before and after (0: no probes)

  double bandwidth_ratio() const { return read_bandwidth_bytes_per_s > 0 ? decode_bytes_per_s / read_bandwidth_bytes_per_s : 0; }
  double flops_ratio() const { return peak_flops_per_s > 0 ? prefill_flops_per_s / peak_flops_per_s : 0; }
  Json to_json() const;
  Json prefill_sweep_json() const;
  Json batch_sweep_json() const;
  std::string to_text() const;
  std::string decode_profile_text() const;
};

// FLOPs of one forward step over `n` new tokens at positions [start, start + n): 2 per
// multiply-add of every product the engine runs (routed experts at num_experts_per_tok),
// MLA in the given `form`, the head for the last token only.
double forward_flops(const ModelConfig& c, int64_t start, int64_t n, AttentionImpl form = AttentionImpl::Absorbed);

Result<BenchReport> run_bench(const Model& model, const BenchOptions& options);

}  // namespace dsv3
