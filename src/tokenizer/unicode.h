#pragma once
// Unicode facts the tokenizer needs, taken from ICU (the Unicode Character Database as Debian
// ships it), never from hand-picked ranges: general categories for the pre-tokenizer's \p{L},
// \p{M}, \p{N}, \p{P}, \p{S} and the White_Space property for \s; plus UTF-8 decoding that
// never fails (an invalid byte is reported as one byte with no class) and the GPT-2
// byte <-> character table of byte-level BPE.

#include <cstdint>
#include <string>
#include <string_view>

namespace dsv3::unicode {

// Character class bits (several may be set only for kWhiteSpace together with a category).
enum : uint8_t {
  kLetter = 1 << 0,      // \p{L}
  kMark = 1 << 1,        // \p{M}
  kNumber = 1 << 2,      // \p{N}
  kPunct = 1 << 3,       // \p{P}
  kSymbol = 1 << 4,      // \p{S}
  kWhiteSpace = 1 << 5,  // \s: the Unicode White_Space property (what Oniguruma's \s matches)
};

// Class bits of the Basic Multilingual Plane (65,536 entries), built from ICU on first use.
const uint8_t* bmp_classes();
// Class bits of a code point outside the BMP (asks ICU).
uint8_t classify_supplementary(uint32_t cp);

// Class bits of code point `cp`; 0 for unassigned/other categories and for kInvalid.
inline uint8_t classify(uint32_t cp) {
  static const uint8_t* const bmp = bmp_classes();
  return cp < 0x10000 ? bmp[cp] : classify_supplementary(cp);
}

inline constexpr uint32_t kInvalid = 0xFFFFFFFFu;

struct Decoded {
  uint32_t cp;  // kInvalid for a byte that does not start a valid UTF-8 sequence
  uint32_t len; // bytes consumed (1 for an invalid byte)
};

// Decodes the code point at s[pos] (pos < s.size()). Overlongs, surrogates and values above
// U+10FFFF are invalid: one byte is consumed and kInvalid returned.
inline Decoded decode_utf8(std::string_view s, size_t pos) {
  const auto* p = reinterpret_cast<const unsigned char*>(s.data()) + pos;
  size_t left = s.size() - pos;
  unsigned char c = p[0];
  if (c < 0x80) return {c, 1};
  auto cont = [&](size_t i) { return i < left && (p[i] & 0xC0) == 0x80; };
  if (c >= 0xC2 && c <= 0xDF) {
    if (cont(1)) return {static_cast<uint32_t>(((c & 0x1F) << 6) | (p[1] & 0x3F)), 2};
  } else if (c >= 0xE0 && c <= 0xEF) {
    if (cont(1) && cont(2)) {
      uint32_t cp = ((c & 0x0F) << 12) | ((p[1] & 0x3F) << 6) | (p[2] & 0x3F);
      if (cp >= 0x800 && (cp < 0xD800 || cp > 0xDFFF)) return {cp, 3};
    }
  } else if (c >= 0xF0 && c <= 0xF4) {
    if (cont(1) && cont(2) && cont(3)) {
      uint32_t cp = ((c & 0x07) << 18) | ((p[1] & 0x3F) << 12) | ((p[2] & 0x3F) << 6) | (p[3] & 0x3F);
      if (cp >= 0x10000 && cp <= 0x10FFFF) return {cp, 4};
    }
  }
  return {kInvalid, 1};
}

// Appends the UTF-8 encoding of cp (cp <= 0x10FFFF, not a surrogate).
void append_utf8(std::string& out, uint32_t cp);

// Replaces each maximal invalid UTF-8 subpart with U+FFFD (the WHATWG / Rust
// from_utf8_lossy rule), so the result is always valid UTF-8.
std::string to_valid_utf8(std::string_view bytes);

// Length of the longest prefix of `bytes` that does not end inside an incomplete (but so far
// valid) UTF-8 sequence: what a streaming decoder may emit now.
size_t complete_utf8_prefix(std::string_view bytes);

// GPT-2 byte-level alphabet: byte b is written as the character byte_to_char(b); printable
// Latin-1 bytes map to themselves, the other 68 bytes to U+0100.. in byte order.
uint32_t byte_to_char(uint8_t b);
// Inverse of byte_to_char; -1 when `cp` is not in the alphabet.
int char_to_byte(uint32_t cp);

}  // namespace dsv3::unicode
