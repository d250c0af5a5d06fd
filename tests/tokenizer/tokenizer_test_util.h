#pragma once
// Shared by the tokenizer test suites: the DeepSeek-V3 tokenizer (assets/deepseek-v3-tokenizer),
// loaded once per test binary (loading is const-safe to share), its cases (tests/fixtures/tokenizer),
// and JSONL reading.

#include <gtest/gtest.h>

#include <memory>
#include <string>
#include <vector>

#include "base/json.h"
#include "test_util.h"
#include "tokenizer/tokenizer.h"

namespace dsv3::test {

// A model directory holding DeepSeek-V3's tokenizer.json and tokenizer_config.json.
inline std::string tokenizer_dir() { return v3_tokenizer_dir(); }

// cases.jsonl and r1-style/ (its tokenizer_config.json and cases) for that tokenizer.
inline std::string tokenizer_cases_dir() { return fixtures() + "/tokenizer"; }

inline const Tokenizer& v3_tokenizer() {
  static std::unique_ptr<Tokenizer> tok = [] {
    auto r = Tokenizer::load(tokenizer_dir());
    if (!r.ok()) {
      ADD_FAILURE() << r.error().message();
      std::abort();
    }
    return std::move(*r);
  }();
  return *tok;
}

inline std::vector<OrderedJson> read_jsonl(const std::string& path) {
  std::vector<OrderedJson> out;
  std::string text = read_file(path);
  size_t pos = 0;
  while (pos < text.size()) {
    size_t nl = text.find('\n', pos);
    std::string line = text.substr(pos, nl == std::string::npos ? std::string::npos : nl - pos);
    pos = nl == std::string::npos ? text.size() : nl + 1;
    if (line.empty()) continue;
    out.push_back(OrderedJson::parse(line));
  }
  return out;
}

inline std::vector<int32_t> ids_of(const OrderedJson& j) { return j.get<std::vector<int32_t>>(); }

}  // namespace dsv3::test
