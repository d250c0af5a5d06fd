// model.py's split of a model over ranks (model/partition.h) as a pure function: the ranges
// cover every head, expert and vocabulary row exactly once, uneven splits give the first ranks
// one more, and the splits dsv3 cannot do correctly are refused naming the field and W.

#include <gtest/gtest.h>

#include "format/model_config.h"
#include "model/partition.h"
#include "test_util.h"

using namespace dsv3;

namespace {

ModelConfig config_of(const std::string& file, const Json& overrides = Json::object()) {
  Json j = parse_json(test::read_file(file), file).value();
  j.update(overrides);
  auto c = parse_model_config(j, file);
  EXPECT_TRUE(c.ok()) << (c.ok() ? "" : c.error().message());
  return c.value();
}

std::string v3_config() { return std::string(DSV3_SOURCE_DIR) + "/tests/fixtures/configs/deepseek-v3.json"; }

}  // namespace

TEST(Partition, RangesCoverEverythingOnceAndUnevenSplitsFavourTheFirstRanks) {
  for (int64_t n : {1, 7, 10, 128, 1003, 129280})
    for (int parts : {1, 2, 3, 4, 7})
      for (int64_t unit : {1, 128}) {
        int64_t next = 0, largest = 0, smallest = INT64_MAX;
        for (int r = 0; r < parts; ++r) {
          const Range got = split_range(n, parts, r, unit);
          EXPECT_EQ(got.begin, next) << n << " over " << parts << ", rank " << r;
          EXPECT_LE(got.begin, got.end);
          if (got.begin != n) EXPECT_EQ(got.begin % unit, 0);
          next = got.end;
          largest = std::max(largest, got.size());
          smallest = std::min(smallest, got.size());
        }
        EXPECT_EQ(next, n) << n << " over " << parts;
        if (unit == 1) EXPECT_LE(largest - smallest, 1) << n << " over " << parts;
      }
}

TEST(Partition, DeepSeekV3OverFourRanks) {
  const ModelConfig c = config_of(v3_config());
  for (int r = 0; r < 4; ++r) {
    auto p = make_partition(c, r, 4);
    ASSERT_TRUE(p.ok()) << p.error().message();
    EXPECT_EQ(p.value().heads.size(), 32);     // 128 heads
    EXPECT_EQ(p.value().experts.size(), 64);   // 256 experts: model.py's n_local_experts
    EXPECT_EQ(p.value().vocab.size(), 32320);  // 129280 rows
    EXPECT_EQ(p.value().dense_inter.size(), 18432 / 4);
  }
}

TEST(Partition, SplitsThatCannotBeDoneCorrectlyAreRefused) {
  struct Case {
    Json overrides;
    int world;
    std::string says;
  };
  const std::vector<Case> cases = {
      {{{"num_attention_heads", 4}}, 5, "num_attention_heads is 4, which cannot be split over 5 ranks"},
      {{{"n_routed_experts", 2}, {"num_experts_per_tok", 2}, {"n_group", 1}, {"topk_group", 1}}, 3, "n_routed_experts is 2"},
      {{{"model_type", "deepseek_v32"}, {"index_n_heads", 64}, {"index_head_dim", 128}, {"index_topk", 2048}}, 2, "DeepSeek-V3.2 sparse attention"},
      {{{"quantization_config", {{"quant_method", "dsv3_int"}, {"fmt", "e4m3"}, {"group_size", 64}}}}, 2, "dsv3_int"},
  };
  for (const Case& k : cases) {
    Json j = parse_json(test::read_file(v3_config()), "v3").value();
    j.update(k.overrides);
    auto c = parse_model_config(j, "config.json");
    if (!c.ok()) {  // a config the parser refuses never reaches the split
      ADD_FAILURE() << k.says << ": " << c.error().message();
      continue;
    }
    auto p = make_partition(c.value(), 0, k.world);
    ASSERT_FALSE(p.ok()) << k.says;
    EXPECT_NE(p.error().message().find(k.says), std::string::npos) << p.error().message();
    EXPECT_TRUE(make_partition(c.value(), 0, 1).ok()) << "one process always runs it: " << k.says;
  }
}
