// A session reuses its cached prefix across calls and produces exactly what a fresh
// generation over the same tokens produces.

#include <gtest/gtest.h>

#include "runtime/session.h"
#include "test_util.h"

using namespace dsv3;

TEST(Session, PrefixReuseMatchesFreshGeneration) {
  ModelOptions opt;
  opt.threads = 2;
  auto model = Model::load(dsv3::test::fixtures() + "/tiny-v3", opt).value();
  GenerateOptions g;
  g.max_new_tokens = 6;
  Session session(*model);
  std::vector<int32_t> turn1 = {0, 17, 923, 5};
  auto r1 = session.generate(turn1, g).value();
  EXPECT_EQ(session.reused_tokens(), 0);
  // Next turn: the conversation so far plus new tokens.
  std::vector<int32_t> turn2 = turn1;
  turn2.insert(turn2.end(), r1.tokens.begin(), r1.tokens.end());
  turn2.insert(turn2.end(), {40, 41, 42});
  auto r2 = session.generate(turn2, g).value();
  EXPECT_EQ(session.reused_tokens(), static_cast<int64_t>(turn1.size() + r1.tokens.size() - 1));
  EXPECT_EQ(r2.tokens, generate(*model, turn2, g).value().tokens);
  // A prompt that diverges early reuses only the shared part.
  std::vector<int32_t> other = {0, 17, 99, 98};
  auto r3 = session.generate(other, g).value();
  EXPECT_EQ(session.reused_tokens(), 2);
  EXPECT_EQ(r3.tokens, generate(*model, other, g).value().tokens);
  // The same prompt twice: everything but the last token is reused.
  auto r4 = session.generate(other, g).value();
  EXPECT_EQ(session.reused_tokens(), 3);
  EXPECT_EQ(r4.tokens, r3.tokens);
}
