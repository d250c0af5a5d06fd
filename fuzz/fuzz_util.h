#pragma once
// Shared by the libFuzzer harnesses: the bytes as a string, and the repository's files
// (the tokenizer under assets/) found from the source directory the build names.

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <string>
#include <string_view>

#include "tokenizer/tokenizer.h"

namespace dsv3::fuzz {

inline std::string_view as_text(const uint8_t* data, size_t size) {
  return {reinterpret_cast<const char*>(data), size};
}

// The DeepSeek-V3 tokenizer shipped in assets/, loaded once per process. A harness cannot
// run without it, so a load failure ends the process with the reason.
inline const Tokenizer& shipped_tokenizer() {
  static const std::unique_ptr<Tokenizer> tokenizer = [] {
    auto loaded = Tokenizer::load(std::string(DSV3_SOURCE_DIR) + "/assets/deepseek-v3-tokenizer");
    if (!loaded.ok()) {
      std::fprintf(stderr, "fuzz: cannot load the shipped tokenizer: %s\n", loaded.error().message().c_str());
      std::abort();
    }
    return std::move(loaded).value();
  }();
  return *tokenizer;
}

}  // namespace dsv3::fuzz
