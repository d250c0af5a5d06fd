// The drafting policy as a table: given measured step costs and acceptance, when it drafts,
// probes the plain cost, or switches drafting off.

#include <gtest/gtest.h>

#include <vector>

#include "runtime/draft_policy.h"

using namespace dsv3;

namespace {

// Steps of one batch size: the decisions the policy makes while each mode costs what it costs.
std::vector<DraftMode> run(DraftPolicy& p, int batch, int steps, double draft_s, double plain_s, double acceptance,
                           int k) {
  std::vector<DraftMode> modes;
  for (int i = 0; i < steps; ++i) {
    const DraftMode m = p.decide(batch);
    modes.push_back(m);
    if (m == DraftMode::Draft) {
      // Half the draft step is the MTP; k drafts per sequence, the kept ones at `acceptance`.
      const int64_t verified = 100, accepted = static_cast<int64_t>(acceptance * 100);
      p.record(batch, m, draft_s / 2, draft_s / 2, verified, accepted);
    } else {
      p.record(batch, m, plain_s, m == DraftMode::Probe ? 0.3 * plain_s : 0.0, 0, 0);
    }
  }
  (void)k;
  return modes;
}

int count(const std::vector<DraftMode>& v, DraftMode m) { return static_cast<int>(std::count(v.begin(), v.end(), m)); }

}  // namespace

TEST(DraftPolicy, DraftsWhereItPaysAndSwitchesOffWhereItDoesNot) {
  struct Case {
    const char* name;
    int k;
    double draft_seconds, plain_seconds, acceptance;
    bool pays;
  };
  const Case cases[] = {
      // k = 1: 1 + a tokens per draft step.
      {"cheap verify, good acceptance", 1, 1.3, 1.0, 0.8, true},   // 1.8 / 1.3 > 1
      {"costly verify, good acceptance", 1, 1.9, 1.0, 0.8, false},  // 1.8 / 1.9 < 1
      {"cheap verify, poor acceptance", 1, 1.3, 1.0, 0.2, false},   // 1.2 / 1.3 < 1
      // k = 3: 1 + a + a^2 + a^3 = 2.952 at a = 0.8
      {"three drafts pay where one would not", 3, 1.9, 1.0, 0.8, true},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.name);
    DraftPolicy p(c.k);
    const auto modes = run(p, 1, 400, c.draft_seconds, c.plain_seconds, c.acceptance, c.k);
    // First it measures both: drafting, then the plain step.
    ASSERT_GE(modes.size(), 4u);
    EXPECT_EQ(modes[0], DraftMode::Draft);
    EXPECT_EQ(modes[1], DraftMode::Draft);
    EXPECT_EQ(modes[2], DraftMode::Probe);
    EXPECT_EQ(modes[3], DraftMode::Probe);
    EXPECT_NEAR(p.acceptance(), c.acceptance, 1e-9);
    const std::vector<DraftMode> after(modes.begin() + 4, modes.end());
    if (c.pays) {
      EXPECT_EQ(count(after, DraftMode::Off), 0);
      // Mostly drafting, with a plain probe every kReprobeEvery steps to follow drift.
      EXPECT_EQ(count(after, DraftMode::Probe), static_cast<int>(after.size()) / DraftPolicy::kReprobeEvery);
    } else {
      EXPECT_EQ(count(after, DraftMode::Draft), 0);
      EXPECT_EQ(count(after, DraftMode::Off), static_cast<int>(after.size()));
    }
  }
}

TEST(DraftPolicy, EachBatchSizeHasItsOwnCosts) {
  DraftPolicy p(1);
  run(p, 1, 10, 1.3, 1.0, 0.8, 1);   // pays at batch 1
  run(p, 8, 10, 10.0, 4.0, 0.8, 1);  // at batch 8 the verify step costs 2.5x: it does not
  EXPECT_EQ(p.decide(1), DraftMode::Draft);
  EXPECT_EQ(p.decide(8), DraftMode::Off);
  EXPECT_EQ(p.decide(16), DraftMode::Draft) << "an unmeasured batch size is measured first";
  EXPECT_EQ(p.decide(0), DraftMode::Draft) << "prompts only: counted as the batch of one they become";
  DraftPolicy none(0);
  EXPECT_EQ(none.decide(1), DraftMode::Off);
}

TEST(DraftPolicy, OffIsMeasuredAgainNowAndThen) {
  DraftPolicy p(1);
  auto modes = run(p, 2, 4 + DraftPolicy::kReexploreEvery + 2, 3.0, 1.0, 0.5, 1);
  EXPECT_EQ(modes[4], DraftMode::Off);
  EXPECT_EQ(modes[4 + DraftPolicy::kReexploreEvery], DraftMode::Draft) << "drafting measured again";
}

TEST(DraftPolicy, StepsWithoutDraftsToVerifyDoNotCountAsDrafting) {
  DraftPolicy p(2);
  p.record(1, DraftMode::Draft, 0.5, 0.1, /*verified=*/0, 0);  // its sequences had no drafts yet
  p.record(1, DraftMode::Draft, 0.5, 0.1, 0, 0);
  EXPECT_EQ(p.decide(1), DraftMode::Draft) << "still measuring drafting";
  // Acceptance counts kept drafts over compared ones.
  p.record(1, DraftMode::Draft, 1.0, 0.2, 4, 3);
  EXPECT_DOUBLE_EQ(p.acceptance(), 0.75);
  EXPECT_DOUBLE_EQ(p.tokens_per_step(2), 1 + 0.75 + 0.75 * 0.75);
}

// The bytes model: fixed weights once per pass, each expert once if any token chose it.
TEST(DraftPolicy, BytesModelOfAStep) {
  StepBytesModel b;
  b.main_fixed = 100;
  b.mtp_fixed = 30;
  b.expert = 10;
  b.main_moe_layers = 2;
  b.mtp_moe_layers = 1;
  b.experts = 4;
  b.experts_per_token = 2;
  // One token reads 2 of 4 experts per layer; two tokens 4 (1 - (1/2)^2) = 3.
  // Plain: 100 + 10 * 2 * 2 = 140. One draft: 100 + 10 * 2 * 3 + (30 + 10 * 1 * 2) = 210.
  EXPECT_DOUBLE_EQ(b.ratio(1, 1), 210.0 / 140.0);
  // Dense (no experts): only the MTP pass adds.
  StepBytesModel dense;
  dense.main_fixed = 100;
  dense.mtp_fixed = 50;
  EXPECT_DOUBLE_EQ(dense.ratio(4, 2), 200.0 / 100.0);
}

// Where even 90% acceptance would gain under 10% by the bytes model, drafting is not tried:
// no MTP upkeep, no slow steps; it is looked at again after kReexploreEvery decisions.
TEST(DraftPolicy, NotTriedWhereTheBytesSayItCannotPay) {
  StepBytesModel heavy;  // an MTP pass reads as much as the main model: r = 2 at k = 1
  heavy.main_fixed = 100;
  heavy.mtp_fixed = 100;
  DraftPolicy p(1, heavy);
  for (int i = 0; i + 1 < DraftPolicy::kReexploreEvery; ++i) ASSERT_EQ(p.decide(1), DraftMode::Off) << i;
  EXPECT_EQ(p.decide(1), DraftMode::Off);
  EXPECT_EQ(p.decide(1), DraftMode::Draft) << "tried after a while, in case the measured costs differ";
  StepBytesModel light = heavy;
  light.mtp_fixed = 10;  // r = 1.1: 1.9 / 1.1 > 1.1
  DraftPolicy q(1, light);
  EXPECT_EQ(q.decide(1), DraftMode::Draft);
}
