#pragma once
// Reads tokenizer.json. The file is 7.8 MB, most of it model.vocab (128k entries) and
// model.merges (128k entries); building a nlohmann DOM of it costs ~250 ms, so a SAX pass
// streams those two straight into flat vectors and builds a DOM only for the rest (a few
// KB). The same limits as base/json.h apply: nesting depth, duplicate keys rejected, errors
// with line and column.

#include <cstdint>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "base/json.h"
#include "base/result.h"

namespace dsv3 {

struct TokenizerFile {
  Json root;  // everything except model.vocab and model.merges
  std::vector<std::pair<std::string, int64_t>> vocab;  // in file order
  std::vector<std::pair<std::string, std::string>> merges;  // "a b" strings or ["a","b"] pairs
  bool has_vocab = false, has_merges = false;
};

// Parses the text of a tokenizer.json; `what` names the file in errors.
Result<TokenizerFile> parse_tokenizer_file(std::string_view text, const std::string& what);

}  // namespace dsv3
