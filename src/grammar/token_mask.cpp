#include "grammar/token_mask.h"

#include <algorithm>
#include <numeric>

namespace dsv3::grammar {
namespace {

// Characters in `s` when it is plain string content (whole UTF-8 characters, no '"', '\\' or
// control byte), else -1.
int64_t plain_string_chars(const std::string& s) {
  int64_t chars = 0;
  for (size_t i = 0; i < s.size();) {
    const uint8_t c = static_cast<uint8_t>(s[i]);
    if (c < 0x20 || c == '"' || c == '\\') return -1;
    size_t len = c < 0x80 ? 1 : c >= 0xC2 && c <= 0xDF ? 2 : c >= 0xE0 && c <= 0xEF ? 3 : c >= 0xF0 && c <= 0xF4 ? 4 : 0;
    if (len == 0 || i + len > s.size()) return -1;
    for (size_t k = 1; k < len; ++k)
      if ((static_cast<uint8_t>(s[i + k]) & 0xC0) != 0x80) return -1;
    // Overlongs, surrogates and code points above U+10FFFF, as the matcher refuses them.
    const uint8_t c1 = len > 1 ? static_cast<uint8_t>(s[i + 1]) : 0;
    if ((c == 0xE0 && c1 < 0xA0) || (c == 0xED && c1 > 0x9F) || (c == 0xF0 && c1 < 0x90) || (c == 0xF4 && c1 > 0x8F))
      return -1;
    i += len;
    ++chars;
  }
  return chars;
}

}  // namespace

int64_t TokenMask::count() const {
  int64_t n = 0;
  for (uint64_t w : words) n += __builtin_popcountll(w);
  return n;
}

TokenVocabulary::TokenVocabulary(std::vector<std::string> token_bytes) : bytes_(std::move(token_bytes)) {
  std::vector<std::pair<int32_t, std::string>> all, non_plain;
  std::vector<std::pair<uint32_t, int32_t>> plain;
  for (size_t i = 0; i < bytes_.size(); ++i) {
    if (bytes_[i].empty()) continue;
    const int32_t id = static_cast<int32_t>(i);
    all.push_back({id, bytes_[i]});
    const int64_t chars = plain_string_chars(bytes_[i]);
    if (chars > 0) plain.push_back({static_cast<uint32_t>(chars), id});
    else non_plain.push_back({id, bytes_[i]});
  }
  std::sort(plain.begin(), plain.end());
  for (const auto& [chars, id] : plain) {
    plain_.push_back(id);
    plain_chars_.push_back(chars);
  }
  plain_masks_.resize(plain_chars_.empty() ? 1 : plain_chars_.back() + 1);
  size_t k = 0;
  for (size_t c = 0; c < plain_masks_.size(); ++c) {
    plain_masks_[c] = c == 0 ? TokenMask{} : plain_masks_[c - 1];
    if (c == 0) plain_masks_[c].reset(size());
    for (; k < plain_.size() && plain_chars_[k] <= c; ++k) plain_masks_[c].set(plain_[k]);
  }
  all_ = TokenTrie(std::move(all));
  non_plain_ = TokenTrie(std::move(non_plain));
}

void MaskComputer::walk(const Schema& schema, const TokenTrie& trie, const MatchState& state, TokenMask& mask,
                        int64_t completion_limit) {
  const auto& nodes = trie.nodes();
  if (levels_.size() < trie.max_depth() + 1) {
    levels_.resize(trie.max_depth() + 1);
    level_bytes_.resize(trie.max_depth() + 1);
  }
  levels_[0] = state;
  level_bytes_[0] = possible_next_bytes(state);
  // Preorder: node i + 1 is i's first child when it has one, else the next node whose parent
  // is at a depth already holding the right state (a walk never needs to go back up).
  for (size_t i = 1; i < nodes.size();) {
    const TokenTrie::Node& n = nodes[i];
    if (!level_bytes_[n.depth - 1].test(n.byte) ||
        !advance_state(schema, levels_[n.depth - 1], n.byte, levels_[n.depth])) {
      i = n.subtree_end;
      continue;
    }
    if (n.subtree_end > i + 1) level_bytes_[n.depth] = possible_next_bytes(levels_[n.depth]);
    if (n.ids_begin < n.ids_end &&
        (completion_limit < 0 || completion_bytes(schema, levels_[n.depth]) <= completion_limit))
      for (uint32_t k = n.ids_begin; k < n.ids_end; ++k) mask.set(trie.ids()[k]);
    ++i;
  }
}

void MaskComputer::compute(const Schema& schema, const TokenVocabulary& vocab, const MatchState& state,
                           TokenMask& mask, int64_t completion_limit) {
  mask.reset(vocab.size());
  // One thread at a character boundary of a string whose characters are free. A plain token
  // leaves the string open at a character boundary, so the shortest completion after it is no
  // longer than now (the same, once a minLength is met): when the current state fits the
  // limit, every plain token does; when it does not and no minLength is pending, none does.
  // (A finished value is one thread of no frames: nothing but the end may follow.)
  if (state.threads() == 1 && !state.frames.empty()) {
    const Frame& top = state.frames.back();
    // (A key that may still become a listed property is not free: leaving that property's name
    // can lengthen the shortest completion.)
    const bool free_string =
        top.kind == FrameKind::String || (top.kind == FrameKind::Key && top.aux == 1 && top.bits == 0);
    if (free_string && top.phase == 0 && top.utf8_left == 0) {
      const SchemaNode& n = schema.nodes[static_cast<size_t>(top.node)];
      const bool fits = completion_limit < 0 || completion_bytes(schema, state) <= completion_limit;
      const bool min_met = top.kind == FrameKind::Key || static_cast<int64_t>(top.count) >= n.min_length;
      if (fits || min_met) {
        if (fits) {
          uint64_t room = ~uint64_t{0};
          if (top.kind == FrameKind::String && n.max_length >= 0) room = static_cast<uint64_t>(n.max_length) - top.count;
          mask = vocab.plain_tokens_up_to(room);
        }
        walk(schema, vocab.non_plain_tokens(), state, mask, completion_limit);
        // Plain tokens longer than the room left are refused by the length limit alone, and a
        // walk over them is not needed: they are not in the non-plain trie and stay unset.
        return;
      }
    }
  }
  walk(schema, vocab.all_tokens(), state, mask, completion_limit);
}

}  // namespace dsv3::grammar
