#pragma once
// Whether a decode step should draft, decided from what steps have cost and how many drafts
// were kept. On a CPU a draft is not free: the verify step feeds 1 + K tokens, which route to
// more experts (more weight bytes read), and the MTP layer and its head run every step. It
// pays when the tokens a step yields, 1 + a + a^2 + ... + a^K at acceptance a, outweigh that
// cost; at large batches, low acceptance, or on models whose head dominates, it does not.
//
// Per number of decoding sequences (the batch, in buckets), the policy keeps the measured
// time of a step with drafts (forward, sampling and the MTP) and of one without (forward and
// sampling, the MTP's upkeep excluded: skipping drafts for good skips that too), plus the
// running acceptance, and chooses:
//   Draft  feed the drafts and draft again;
//   Probe  a step without drafts that still keeps the MTP layer current, to measure the
//          plain cost now and then (and at first);
//   Off    no drafts and no MTP upkeep: the step's sequences stop drafting for good (their
//          MTP rows fall behind), the cheapest step when drafting does not pay.
// Plain bookkeeping: no clock of its own (the engine passes the seconds), so tables can test it.

#include <cstdint>
#include <map>

namespace dsv3 {

enum class DraftMode { Draft, Probe, Off };

// What a step reads by the bytes model (bench --mtp checks it against measured steps): the
// fixed weights of the main model (and of the MTP layer per drafting pass) once, and each
// routed expert once if any token of the step chose it, with tokens choosing experts
// independently: a layer's E experts, k per token, n tokens -> E (1 - (1 - k/E)^n) read.
struct StepBytesModel {
  double main_fixed = 0, mtp_fixed = 0, expert = 0;  // bytes
  int64_t main_moe_layers = 0, mtp_moe_layers = 0, experts = 0, experts_per_token = 0;
  // A decode step of `batch` sequences with `k` drafts each, against one without drafts.
  double ratio(int batch, int k) const;
};

class DraftPolicy {
 public:
  explicit DraftPolicy(int draft_tokens, StepBytesModel bytes = {}) : k_(draft_tokens), bytes_(bytes) {}

  // `decoding`: the sequences the step decodes, or will once their prompts are in (at least 1).
  DraftMode decide(int decoding);
  // A decode-only step of `decoding` sequences that ran in `mode`: `step_seconds` its forward
  // and sampling, `mtp_seconds` the MTP's upkeep and drafting; `verified` the drafts compared
  // with the target (the kept ones and each sequence's first rejected one), `accepted` kept.
  void record(int decoding, DraftMode mode, double step_seconds, double mtp_seconds, int64_t verified,
              int64_t accepted);

  // The chance that a draft is kept when the drafts before it were.
  double acceptance() const { return acceptance_; }
  // Tokens a sequence's step yields with k drafts at the running acceptance.
  double tokens_per_step(int k) const;

  static constexpr int kExplore = 2;        // steps of each kind measured before choosing
  // Drafting is not even tried at a batch size where, by the bytes model, it would gain less
  // than this much with this acceptance (DeepSeek reports 0.85-0.9 for V3's MTP): trying
  // costs the MTP's upkeep over the prompts and a few slow steps.
  static constexpr double kTryAcceptance = 0.9, kTryGain = 1.1;
  static constexpr int kReprobeEvery = 64;      // Draft decisions between two Probe steps
  static constexpr int kReexploreEvery = 1024;  // Off decisions before drafting is measured again

 private:
  struct Costs {
    bool judged = false, worth_trying = true;  // by the bytes model, before any measurement
    double draft_seconds = 0, plain_seconds = 0;  // running means of measured steps
    int draft_steps = 0, plain_steps = 0;
    int since_probe = 0;
  };
  static int bucket(int decoding);

  int k_;
  StepBytesModel bytes_;
  double acceptance_ = 0.8;  // until measured: DeepSeek's reported range starts near here
  bool measured_acceptance_ = false;
  std::map<int, Costs> costs_;
};

}  // namespace dsv3
