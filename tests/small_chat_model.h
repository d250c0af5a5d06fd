#pragma once
// A small random-weight model of the V3 architecture with the real DeepSeek-V3 tokenizer
// (tests/data/small-chat-config.json), made once per test binary in a scratch directory.

#include <gtest/gtest.h>

#include <string>

#include "test_util.h"
#include "tools/make_random.h"

namespace dsv3::test {

inline const std::string& small_chat_model_dir() {
  static TempDir dir;
  static bool made = false;
  if (!made) {
    auto cfg = parse_ordered_json(read_file(std::string(DSV3_SOURCE_DIR) + "/tests/data/small-chat-config.json"), "cfg").value();
    MakeRandomOptions opt;
    opt.out_dir = dir.path();
    opt.seed = 3;
    opt.tokenizer_dir = std::string(DSV3_SOURCE_DIR) + "/assets/deepseek-v3-tokenizer";
    ThreadPool pool(2);
    auto st = make_random_checkpoint(cfg, opt, pool);
    EXPECT_TRUE(st.ok()) << st.error().message();
    made = true;
  }
  return dir.path();
}

}  // namespace dsv3::test
