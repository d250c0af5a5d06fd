#include "tokenizer/unicode.h"

#include <unicode/uchar.h>

#include <array>

namespace dsv3::unicode {

namespace {

uint8_t classify_icu(uint32_t cp) {
  auto c = static_cast<UChar32>(cp);
  uint32_t mask = U_GET_GC_MASK(c);
  uint8_t bits = 0;
  if (mask & U_GC_L_MASK) bits |= kLetter;
  if (mask & U_GC_M_MASK) bits |= kMark;
  if (mask & U_GC_N_MASK) bits |= kNumber;
  if (mask & U_GC_P_MASK) bits |= kPunct;
  if (mask & U_GC_S_MASK) bits |= kSymbol;
  if (u_isUWhiteSpace(c)) bits |= kWhiteSpace;
  return bits;
}

// The Basic Multilingual Plane, where nearly all text lives, is looked up in a table built
// once (64 KiB); the supplementary planes ask ICU directly (its lookups are trie reads).
struct BmpTable {
  std::array<uint8_t, 0x10000> bits{};
  BmpTable() {
    for (uint32_t cp = 0; cp < 0x10000; ++cp) bits[cp] = classify_icu(cp);
  }
};

const BmpTable& bmp_table() {
  static const BmpTable table;  // thread-safe static initialisation
  return table;
}

struct ByteTables {
  std::array<uint32_t, 256> to_char{};
  std::array<int16_t, 324> to_byte{};  // indexed by code point < 324
  ByteTables() {
    to_byte.fill(-1);
    uint32_t next = 256;
    for (int b = 0; b < 256; ++b) {
      bool printable = (b >= 33 && b <= 126) || (b >= 161 && b <= 172) || (b >= 174 && b <= 255);
      to_char[b] = printable ? static_cast<uint32_t>(b) : next++;
      to_byte[to_char[b]] = static_cast<int16_t>(b);
    }
  }
};

const ByteTables& byte_tables() {
  static const ByteTables tables;
  return tables;
}

}  // namespace

const uint8_t* bmp_classes() { return bmp_table().bits.data(); }

uint8_t classify_supplementary(uint32_t cp) { return cp > 0x10FFFF ? 0 : classify_icu(cp); }

void append_utf8(std::string& out, uint32_t cp) {
  if (cp < 0x80) {
    out += static_cast<char>(cp);
  } else if (cp < 0x800) {
    out += static_cast<char>(0xC0 | (cp >> 6));
    out += static_cast<char>(0x80 | (cp & 0x3F));
  } else if (cp < 0x10000) {
    out += static_cast<char>(0xE0 | (cp >> 12));
    out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
    out += static_cast<char>(0x80 | (cp & 0x3F));
  } else {
    out += static_cast<char>(0xF0 | (cp >> 18));
    out += static_cast<char>(0x80 | ((cp >> 12) & 0x3F));
    out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
    out += static_cast<char>(0x80 | (cp & 0x3F));
  }
}

namespace {

// Length of the longest prefix of s[pos..] that is a valid start of a UTF-8 sequence (the
// "maximal subpart" of Unicode 3.9 / from_utf8_lossy), at least 1.
size_t maximal_subpart(std::string_view s, size_t pos) {
  const auto* p = reinterpret_cast<const unsigned char*>(s.data()) + pos;
  size_t left = s.size() - pos;
  unsigned char c = p[0];
  unsigned char lo = 0x80, hi = 0xBF;
  size_t need;
  if (c >= 0xC2 && c <= 0xDF) need = 1;
  else if (c >= 0xE0 && c <= 0xEF) {
    need = 2;
    if (c == 0xE0) lo = 0xA0;
    if (c == 0xED) hi = 0x9F;
  } else if (c >= 0xF0 && c <= 0xF4) {
    need = 3;
    if (c == 0xF0) lo = 0x90;
    if (c == 0xF4) hi = 0x8F;
  } else {
    return 1;
  }
  size_t i = 1;
  if (i < left && p[i] >= lo && p[i] <= hi) ++i;
  else return 1;
  while (i <= need && i < left && (p[i] & 0xC0) == 0x80) ++i;
  return i;
}

}  // namespace

std::string to_valid_utf8(std::string_view bytes) {
  std::string out;
  out.reserve(bytes.size());
  size_t pos = 0;
  while (pos < bytes.size()) {
    Decoded d = decode_utf8(bytes, pos);
    if (d.cp != kInvalid) {
      out.append(bytes.data() + pos, d.len);
      pos += d.len;
    } else {
      out += "\xEF\xBF\xBD";
      pos += maximal_subpart(bytes, pos);
    }
  }
  return out;
}

size_t complete_utf8_prefix(std::string_view bytes) {
  // Look back at most 3 bytes for the start of a sequence that is valid so far but short.
  size_t n = bytes.size();
  for (size_t back = 1; back <= 3 && back <= n; ++back) {
    size_t start = n - back;
    auto c = static_cast<unsigned char>(bytes[start]);
    if ((c & 0xC0) == 0x80) continue;  // continuation byte: keep looking for the lead
    if (c < 0x80) return n;
    size_t sub = maximal_subpart(bytes, start);
    size_t full = c >= 0xF0 ? 4 : c >= 0xE0 ? 3 : 2;
    // Held back only when every byte so far fits a valid sequence that needs more bytes.
    if (sub == back && back < full && c >= 0xC2 && c <= 0xF4) return start;
    return n;
  }
  return n;
}

uint32_t byte_to_char(uint8_t b) { return byte_tables().to_char[b]; }

int char_to_byte(uint32_t cp) {
  if (cp >= byte_tables().to_byte.size()) return -1;
  return byte_tables().to_byte[cp];
}

}  // namespace dsv3::unicode
