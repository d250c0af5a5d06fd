#include "tokenizer/incremental_decoder.h"

#include "tokenizer/tokenizer.h"
#include "tokenizer/unicode.h"

namespace dsv3 {

IncrementalDecoder::IncrementalDecoder(const Tokenizer& tokenizer, bool skip_special_tokens)
    : tokenizer_(tokenizer), skip_special_(skip_special_tokens) {}

std::string IncrementalDecoder::push(int32_t id) {
  if (!tokenizer_.has_id(id) || (skip_special_ && tokenizer_.is_special(id))) return {};
  pending_ += tokenizer_.token_bytes(id);
  size_t ready = unicode::complete_utf8_prefix(pending_);
  if (ready == 0) return {};
  // Splitting here is safe: the prefix ends at a character boundary or inside a sequence that
  // is already invalid, so lossy decoding of the parts equals lossy decoding of the whole.
  std::string out = unicode::to_valid_utf8(std::string_view(pending_).substr(0, ready));
  pending_.erase(0, ready);
  return out;
}

std::string IncrementalDecoder::flush() {
  std::string out = unicode::to_valid_utf8(pending_);
  pending_.clear();
  return out;
}

}  // namespace dsv3
