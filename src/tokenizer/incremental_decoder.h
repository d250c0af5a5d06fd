#pragma once
// Streaming detokenizer: turns ids into text as they are generated, never emitting a broken
// UTF-8 sequence. Bytes of a character split across tokens are held until it is whole; an
// invalid sequence is replaced by U+FFFD as soon as it can no longer become valid, and flush()
// replaces an incomplete tail at the end of the stream. The concatenation of everything
// emitted equals Tokenizer::decode of all the ids.

#include <cstdint>
#include <string>

#include "base/result.h"

namespace dsv3 {

class Tokenizer;

class IncrementalDecoder {
 public:
  IncrementalDecoder(const Tokenizer& tokenizer, bool skip_special_tokens);

  // Text completed by this token (may be empty). Ids without a token yield nothing; callers
  // validate ids first (Tokenizer::has_id) when they come from outside.
  std::string push(int32_t id);
  // End of stream: what is held, with an incomplete tail as U+FFFD.
  std::string flush();
  // Bytes held back, waiting for the rest of a character.
  size_t pending_bytes() const { return pending_.size(); }

 private:
  const Tokenizer& tokenizer_;
  bool skip_special_;
  std::string pending_;
};

}  // namespace dsv3
