#include "tokenizer/added_tokens.h"

#include <algorithm>

#include "tokenizer/unicode.h"

namespace dsv3 {

namespace {

// Rust's char::is_whitespace (White_Space), which HF uses for lstrip/rstrip.
bool is_space_at(std::string_view s, size_t pos, size_t* len) {
  auto d = unicode::decode_utf8(s, pos);
  *len = d.len;
  return d.cp != unicode::kInvalid && (unicode::classify(d.cp) & unicode::kWhiteSpace);
}

bool is_word_char(uint32_t cp) {
  if (cp == '_') return true;
  return cp != unicode::kInvalid && (unicode::classify(cp) & (unicode::kLetter | unicode::kNumber));
}

// The code point ending just before byte `pos` (pos > 0).
uint32_t cp_before(std::string_view s, size_t pos) {
  size_t start = pos - 1;
  while (start > 0 && pos - start < 4 && (static_cast<unsigned char>(s[start]) & 0xC0) == 0x80) --start;
  auto d = unicode::decode_utf8(s, start);
  return start + d.len == pos ? d.cp : unicode::kInvalid;
}

}  // namespace

AddedTokenMatcher::AddedTokenMatcher(const std::vector<AddedToken>& tokens) : tokens_(tokens) {
  for (size_t t = 0; t < tokens_.size(); ++t) {
    const std::string& s = tokens_[t].content;
    if (s.empty()) continue;
    int32_t node = 0;
    for (unsigned char c : s) {
      auto& ch = nodes_[node].children;
      auto it = std::find_if(ch.begin(), ch.end(), [&](const auto& p) { return p.first == c; });
      if (it != ch.end()) {
        node = it->second;
      } else {
        nodes_.push_back(Node{});
        int32_t created = static_cast<int32_t>(nodes_.size() - 1);
        nodes_[node].children.emplace_back(c, created);
        node = created;
      }
    }
    nodes_[node].token = static_cast<int32_t>(t);
    first_byte_[static_cast<unsigned char>(s[0])] = true;
  }
}

std::pair<int32_t, size_t> AddedTokenMatcher::longest_at(std::string_view text, size_t pos, size_t end) const {
  int32_t node = 0, best = -1;
  size_t best_end = pos;
  for (size_t p = pos; p < end; ++p) {
    auto c = static_cast<unsigned char>(text[p]);
    const auto& ch = nodes_[node].children;
    auto it = std::find_if(ch.begin(), ch.end(), [&](const auto& x) { return x.first == c; });
    if (it == ch.end()) break;
    node = it->second;
    if (nodes_[node].token >= 0) best = nodes_[node].token, best_end = p + 1;
  }
  return {best, best_end};
}

void AddedTokenMatcher::split(std::string_view text, size_t begin, size_t end, std::vector<Segment>& out) const {
  size_t text_start = begin;  // start of the pending text segment
  size_t pos = begin;
  while (pos < end) {
    if (!first_byte_[static_cast<unsigned char>(text[pos])]) {
      ++pos;
      continue;
    }
    auto [t, match_end] = longest_at(text, pos, end);
    if (t < 0) {
      ++pos;
      continue;
    }
    const AddedToken& tok = tokens_[t];
    size_t m_begin = pos, m_end = match_end;
    if (tok.single_word) {
      bool left_ok = m_begin == begin || !is_word_char(cp_before(text, m_begin));
      bool right_ok = m_end == end || !is_word_char(unicode::decode_utf8(text, m_end).cp);
      if (!left_ok || !right_ok) {
        ++pos;
        continue;
      }
    }
    if (tok.lstrip) {
      while (m_begin > text_start) {
        size_t back = m_begin - 1;
        while (back > text_start && (static_cast<unsigned char>(text[back]) & 0xC0) == 0x80) --back;
        size_t len;
        if (!is_space_at(text, back, &len) || back + len != m_begin) break;
        m_begin = back;
      }
    }
    if (tok.rstrip) {
      size_t len;
      while (m_end < end && is_space_at(text, m_end, &len)) m_end += len;
    }
    if (text_start < m_begin) out.push_back({text_start, m_begin, -1});
    out.push_back({m_begin, m_end, tok.id});
    pos = text_start = m_end;
  }
  if (text_start < end) out.push_back({text_start, end, -1});
}

AddedVocabulary::AddedVocabulary(const std::vector<AddedToken>& tokens) {
  std::vector<AddedToken> raw, normalized;
  for (const auto& t : tokens) (t.normalized ? normalized : raw).push_back(t);
  raw_ = AddedTokenMatcher(raw);
  normalized_ = AddedTokenMatcher(normalized);
}

std::vector<Segment> AddedVocabulary::split(std::string_view text) const {
  std::vector<Segment> out;
  split(text, 0, text.size(), out);
  return out;
}

void AddedVocabulary::split(std::string_view text, size_t begin, size_t end, std::vector<Segment>& out) const {
  if (normalized_.empty()) return raw_.split(text, begin, end, out);
  std::vector<Segment> first;
  raw_.split(text, begin, end, first);
  for (const Segment& s : first) {
    if (s.added_id >= 0) out.push_back(s);
    else normalized_.split(text, s.begin, s.end, out);
  }
}

}  // namespace dsv3
