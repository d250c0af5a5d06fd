#pragma once
// The tokenizer's vocabulary as constrained decoding needs it (grammar::TokenVocabulary): every
// token's bytes, special tokens left out (JSON output never contains them).

#include <memory>

#include "grammar/token_mask.h"
#include "tokenizer/tokenizer.h"

namespace dsv3::server {

std::shared_ptr<const grammar::TokenVocabulary> json_token_vocabulary(const Tokenizer& tokenizer);

}  // namespace dsv3::server
