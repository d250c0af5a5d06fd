#pragma once
// An incremental matcher of JSON text against a compiled schema, byte by byte: after each byte
// it knows whether the text so far can still become a value the schema admits, and whether it
// already is one. Bytes, not characters: a token of a byte-level vocabulary may end inside a
// UTF-8 sequence or a \u escape, and the matcher carries the partial character over.
//
// The state is a pushdown automaton's: a stack of frames (the value being parsed, inside the
// object or array that holds it, ...). anyOf makes it nondeterministic, so a state is a small
// set of stacks ("threads"), each advanced by every byte; a thread that cannot take a byte dies.
//
// What it generates is a subset of what the schema admits, so that generation always ends:
// - whitespace runs between tokens at most kMaxWhitespace bytes; nothing after the value;
// - numbers at most 15 digits before and after the point, exponents at most 3 digits;
//   integers (type "integer") without fraction or exponent;
// - \u escapes that are not surrogates (characters beyond U+FFFF are written as UTF-8);
// - nesting at most kMaxFrames deep.
// The matcher never enters a state from which no continuation is valid (no dead ends): a ','
// is allowed only where another key or item may follow.

#include <cstdint>
#include <string_view>
#include <vector>

#include "grammar/json_schema.h"

namespace dsv3::grammar {

enum class FrameKind : uint8_t { Value, Object, Array, String, Key, Number, Literal };

// One level of the parse. Fields unused by a kind stay 0.
struct Frame {
  int32_t node = 0;  // schema node (Key: the object's node)
  FrameKind kind = FrameKind::Value;
  uint8_t phase = 0;          // kind-specific position (json_matcher.cpp)
  uint8_t ws = 0;             // whitespace bytes in the current run
  uint8_t utf8_left = 0;      // String/Key: continuation bytes (or hex digits) still due
  uint8_t utf8_lo = 0x80, utf8_hi = 0xBF;  // String/Key: range of the next continuation byte
  uint32_t count = 0;  // Array: items; String: code points; Key, Literal: bytes; Number: digits of the part
  int32_t aux = 0;     // Object: node of the value after ':'; Key: 1 when any key is allowed;
                       // Literal: the literal set
  uint64_t bits = 0;   // Object: properties seen; Key, Literal: candidates still matching
};

// Threads laid out one after another: thread i is frames[ends[i-1], ends[i]).
struct MatchState {
  std::vector<Frame> frames;
  std::vector<uint32_t> ends;
  bool alive() const { return !ends.empty(); }
  size_t threads() const { return ends.size(); }
  void clear() {
    frames.clear();
    ends.clear();
  }
};

constexpr int kMaxWhitespace = 16;
constexpr size_t kMaxFrames = 32;
constexpr size_t kMaxThreads = 16;

// The state before the first byte: a value of the schema's root.
MatchState initial_state(const Schema& schema);
// `in` advanced by `byte` into `out` (cleared first); false when no thread survives.
bool advance_state(const Schema& schema, const MatchState& in, uint8_t byte, MatchState& out);
// A set of byte values.
struct ByteSet {
  uint64_t words[4] = {0, 0, 0, 0};
  void set(uint8_t b) { words[b >> 6] |= uint64_t{1} << (b & 63); }
  bool test(uint8_t b) const { return words[b >> 6] >> (b & 63) & 1; }
  ByteSet& operator|=(const ByteSet& o) {
    for (int i = 0; i < 4; ++i) words[i] |= o.words[i];
    return *this;
  }
  friend ByteSet operator|(ByteSet a, const ByteSet& b) { return a |= b; }
  static ByteSet all() {
    ByteSet b;
    for (auto& w : b.words) w = ~uint64_t{0};
    return b;
  }
};

// A superset of the bytes `state` can take next, from each thread's innermost frame alone (no
// advancing): outside strings and literals, a few structural bytes. A trie walk skips the
// children of a node whose byte is not in it without trying them (most tokens after a
// whitespace prefix are words, which no structural position takes).
ByteSet possible_next_bytes(const MatchState& state);

// The text so far is a whole value of the schema (generation may end here).
bool is_complete(const MatchState& state);
// Bytes of the shortest text that makes the text so far a whole value (0 when it is one), so
// that generation can be steered to finish within a token budget: every byte of such a
// completion is one token of a byte-level vocabulary. kUnbounded when there is none.
uint32_t completion_bytes(const Schema& schema, const MatchState& state);

// A sequence's matcher: the state, advanced by whole strings.
class JsonMatcher {
 public:
  explicit JsonMatcher(const Schema& schema) : schema_(&schema), state_(initial_state(schema)) {}
  // Advances over `bytes`; false (and the state unchanged) when they make the text invalid.
  bool advance(std::string_view bytes);
  bool complete() const { return is_complete(state_); }
  const MatchState& state() const { return state_; }
  const Schema& schema() const { return *schema_; }

 private:
  const Schema* schema_;
  MatchState state_, next_;
};

}  // namespace dsv3::grammar
