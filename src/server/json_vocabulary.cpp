#include "server/json_vocabulary.h"

namespace dsv3::server {

std::shared_ptr<const grammar::TokenVocabulary> json_token_vocabulary(const Tokenizer& tokenizer) {
  std::vector<std::string> bytes(static_cast<size_t>(tokenizer.vocab_size()));
  for (int32_t id = 0; id < tokenizer.vocab_size(); ++id)
    if (tokenizer.has_id(id) && !tokenizer.is_special(id)) bytes[static_cast<size_t>(id)] = tokenizer.token_bytes(id);
  return std::make_shared<grammar::TokenVocabulary>(std::move(bytes));
}

}  // namespace dsv3::server
