#include "tokenizer/token_index.h"

namespace dsv3 {

void TokenIndex::reserve(size_t entries) {
  size_t want = 16;
  while (want < entries * 2) want *= 2;
  if (want > slots_.size()) rehash(want);
  ids_.reserve(entries);
  offsets_.reserve(entries + 1);
}

void TokenIndex::rehash(size_t slots) {
  slots_.assign(slots, 0);
  size_t mask = slots - 1;
  for (uint32_t e = 0; e < ids_.size(); ++e) {
    size_t i = hash(text_of(e)) & mask;
    while (slots_[i] != 0) i = (i + 1) & mask;
    slots_[i] = e + 1;
  }
}

bool TokenIndex::insert(std::string_view text, int32_t id) {
  if ((ids_.size() + 1) * 2 > slots_.size()) rehash(slots_.empty() ? 16 : slots_.size() * 2);
  size_t mask = slots_.size() - 1;
  size_t i = hash(text) & mask;
  for (; slots_[i] != 0; i = (i + 1) & mask)
    if (text_of(slots_[i] - 1) == text) return false;
  arena_.append(text);
  offsets_.push_back(static_cast<uint32_t>(arena_.size()));
  ids_.push_back(id);
  slots_[i] = static_cast<uint32_t>(ids_.size());
  return true;
}

std::optional<int32_t> TokenIndex::find(std::string_view text) const {
  if (slots_.empty()) return std::nullopt;
  size_t mask = slots_.size() - 1;
  for (size_t i = hash(text) & mask; slots_[i] != 0; i = (i + 1) & mask) {
    uint32_t e = slots_[i] - 1;
    if (text_of(e) == text) return ids_[e];
  }
  return std::nullopt;
}

}  // namespace dsv3
