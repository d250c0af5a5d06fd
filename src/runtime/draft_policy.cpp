#include "runtime/draft_policy.h"

#include <algorithm>
#include <cmath>

namespace dsv3 {

namespace {

// A running mean that follows drift: the plain mean over the first steps, then an
// exponential average (the machine's load and the batch's contexts change).
void update(double& mean, int& count, double value) {
  ++count;
  const double weight = count < 8 ? 1.0 / count : 1.0 / 8;
  mean += weight * (value - mean);
}

}  // namespace

double StepBytesModel::ratio(int batch, int k) const {
  if (experts <= 0 && main_fixed <= 0) return 1.0;
  auto experts_read = [&](double tokens) {
    if (experts <= 0) return 0.0;
    const double e = static_cast<double>(experts), chosen = static_cast<double>(experts_per_token);
    return e * (1.0 - std::pow(1.0 - chosen / e, tokens));
  };
  const double plain = main_fixed + expert * static_cast<double>(main_moe_layers) * experts_read(batch);
  const double drafted = main_fixed + expert * static_cast<double>(main_moe_layers) * experts_read(batch * (1.0 + k)) +
                         k * (mtp_fixed + expert * static_cast<double>(mtp_moe_layers) * experts_read(batch));
  return plain > 0 ? drafted / plain : 1.0;
}

int DraftPolicy::bucket(int decoding) {
  // Exact up to 8 sequences, then powers of two: a step's cost grows smoothly with the batch.
  if (decoding <= 8) return decoding;
  int b = 8;
  while (b < decoding) b *= 2;
  return b;
}

double DraftPolicy::tokens_per_step(int k) const {
  double tokens = 1.0, p = 1.0;
  for (int i = 0; i < k; ++i) tokens += p *= acceptance_;
  return tokens;
}

DraftMode DraftPolicy::decide(int decoding) {
  if (k_ <= 0) return DraftMode::Off;
  decoding = std::max(decoding, 1);
  Costs& c = costs_[bucket(decoding)];
  if (!c.judged) {
    c.judged = true;
    double tokens = 1.0, p = 1.0;
    for (int i = 0; i < k_; ++i) tokens += p *= kTryAcceptance;
    c.worth_trying = tokens / bytes_.ratio(decoding, k_) >= kTryGain;
  }
  if (!c.worth_trying && c.draft_steps == 0) {
    if (++c.since_probe >= kReexploreEvery) c.since_probe = 0, c.worth_trying = true;
    return DraftMode::Off;
  }
  if (c.draft_steps < kExplore) return DraftMode::Draft;
  if (c.plain_steps < kExplore) return DraftMode::Probe;
  // Tokens per second of the batch: with drafts, each sequence yields tokens_per_step(k) per
  // step of draft_seconds; without, one per plain_seconds.
  const double with_drafts = tokens_per_step(k_) / c.draft_seconds, without = 1.0 / c.plain_seconds;
  if (with_drafts < without) {
    // Now and then, measure drafting again (for the sequences that start drafting after this):
    // the acceptance and the machine's speed drift.
    if (++c.since_probe >= kReexploreEvery) c.since_probe = 0, c.draft_steps = 0;
    return DraftMode::Off;
  }
  if (++c.since_probe >= kReprobeEvery) {
    c.since_probe = 0;
    return DraftMode::Probe;
  }
  return DraftMode::Draft;
}

void DraftPolicy::record(int decoding, DraftMode mode, double step_seconds, double mtp_seconds, int64_t verified,
                         int64_t accepted) {
  if (decoding <= 0) return;
  Costs& c = costs_[bucket(decoding)];
  switch (mode) {
    case DraftMode::Draft:  // a step whose sequences had no drafts to verify says nothing about drafting
      if (verified > 0) update(c.draft_seconds, c.draft_steps, step_seconds + mtp_seconds);
      break;
    case DraftMode::Probe:  // the MTP's upkeep is left out: without drafts it would not run
    case DraftMode::Off: update(c.plain_seconds, c.plain_steps, step_seconds); break;
  }
  if (verified > 0) {
    // The chance that a draft is kept given that the ones before it were: kept drafts over
    // drafts compared (each kept one and the first rejected one of each sequence).
    const double rate = static_cast<double>(accepted) / static_cast<double>(verified);
    if (!measured_acceptance_) acceptance_ = rate, measured_acceptance_ = true;
    else acceptance_ += 0.05 * (rate - acceptance_);
  }
}

}  // namespace dsv3
