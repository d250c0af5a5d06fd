#include "grammar/json_matcher.h"

#include <algorithm>

namespace dsv3::grammar {
namespace {

// Object phases.
enum : uint8_t { kObjOpen, kObjKeyDone, kObjValueDone, kObjComma };
// Array phases.
enum : uint8_t { kArrOpen, kArrValueDone, kArrComma };
// String / Key phases.
enum : uint8_t { kStrBody, kStrEscape, kStrHex };
// Number phases: after '-', after a leading 0, in the integer digits, after '.', in the
// fraction, after 'e', after the exponent's sign, in the exponent.
enum : uint8_t { kNumStart, kNumMinus, kNumZero, kNumInt, kNumDot, kNumFrac, kNumExp, kNumExpSign, kNumExpDigits };

constexpr uint32_t kMaxIntDigits = 15, kMaxFracDigits = 15, kMaxExpDigits = 3;
constexpr int kMaxAnyOfDepth = 16;

bool is_ws(uint8_t c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r'; }
bool is_digit(uint8_t c) { return c >= '0' && c <= '9'; }
int hex_value(uint8_t c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}
uint64_t low_bits(size_t n) { return n >= 64 ? ~uint64_t{0} : (uint64_t{1} << n) - 1; }

bool number_accepting(const Frame& f) {
  return f.phase == kNumZero || f.phase == kNumInt || f.phase == kNumFrac || f.phase == kNumExpDigits;
}

// Advances single stacks; every surviving stack is appended to `out`.
class Stepper {
 public:
  Stepper(const Schema& schema, MatchState& out) : schema_(schema), out_(out) {}

  void feed(std::vector<Frame>& st, uint8_t c) {
    for (;;) {
      if (st.empty()) return;  // nothing follows a complete value
      Frame& f = st.back();
      switch (f.kind) {
        case FrameKind::Value: {
          if (is_ws(c)) {
            if (++f.ws <= kMaxWhitespace) emit(st);
            return;
          }
          const int node = f.node;
          st.pop_back();
          start_value(st, node, c, 0);
          return;
        }
        case FrameKind::Object: return feed_object(st, c);
        case FrameKind::Array: return feed_array(st, c);
        case FrameKind::String:
        case FrameKind::Key: return feed_string(st, c);
        case FrameKind::Literal: return feed_literal(st, c);
        case FrameKind::Number:
          if (feed_number(f, c)) return emit(st);
          if (!number_accepting(f)) return;
          st.pop_back();  // the number ended before c: c belongs to the parent
          continue;
      }
    }
  }

  void start_value(std::vector<Frame>& st, int node_id, uint8_t c, int depth) {
    const SchemaNode& n = node(node_id);
    if (!n.any_of.empty()) {
      if (depth >= kMaxAnyOfDepth) return;
      for (int alt : n.any_of) {
        std::vector<Frame> copy = st;
        start_value(copy, alt, c, depth + 1);
      }
      return;
    }
    if (st.size() >= kMaxFrames) return;
    Frame f;
    f.node = node_id;
    if (n.literal_set >= 0) return push_literal(st, f, n.literal_set, c);
    switch (c) {
      case '{':
        if (!(n.types & kObject)) return;
        f.kind = FrameKind::Object;
        f.phase = kObjOpen;
        st.push_back(f);
        return emit(st);
      case '[':
        if (!(n.types & kArray)) return;
        f.kind = FrameKind::Array;
        f.phase = kArrOpen;
        st.push_back(f);
        return emit(st);
      case '"':
        if (!(n.types & kString)) return;
        f.kind = FrameKind::String;
        f.phase = kStrBody;
        st.push_back(f);
        return emit(st);
      case 't':
      case 'f':
        if (!(n.types & kBoolean)) return;
        return push_literal(st, f, kBooleanLiterals, c);
      case 'n':
        if (!(n.types & kNull)) return;
        return push_literal(st, f, kNullLiterals, c);
      default:
        if (!(c == '-' || is_digit(c)) || !(n.types & (kNumber | kInteger))) return;
        f.kind = FrameKind::Number;
        f.phase = kNumStart;
        st.push_back(f);
        return feed(st, c);
    }
  }

 private:
  const SchemaNode& node(int i) const { return schema_.nodes[static_cast<size_t>(i)]; }

  void emit(const std::vector<Frame>& st) {
    if (out_.ends.size() >= kMaxThreads) return;  // fewer alternatives: still only valid text
    out_.frames.insert(out_.frames.end(), st.begin(), st.end());
    out_.ends.push_back(static_cast<uint32_t>(out_.frames.size()));
  }

  void push_literal(std::vector<Frame>& st, Frame f, int set, uint8_t c) {
    f.kind = FrameKind::Literal;
    f.aux = set;
    f.bits = low_bits(schema_.literal_sets[static_cast<size_t>(set)].size());
    st.push_back(f);
    feed(st, c);
  }

  bool whitespace(Frame& f, uint8_t c) {
    if (!is_ws(c)) return false;
    if (++f.ws <= kMaxWhitespace) return true;
    f.ws = 255;  // marks the run as too long
    return true;
  }

  // May another key follow in this object?
  bool key_possible(const Frame& f) const {
    const SchemaNode& n = node(f.node);
    return n.additional != kNoNode || (f.bits & low_bits(n.properties.size())) != low_bits(n.properties.size());
  }

  void feed_object(std::vector<Frame>& st, uint8_t c) {
    Frame& f = st.back();
    const SchemaNode& n = node(f.node);
    if (whitespace(f, c)) {
      if (f.ws <= kMaxWhitespace) emit(st);
      return;
    }
    f.ws = 0;
    switch (f.phase) {
      case kObjOpen:
      case kObjComma:
        if (c == '"' && key_possible(f)) {
          Frame key;
          key.node = f.node;
          key.kind = FrameKind::Key;
          key.phase = kStrBody;
          key.aux = n.additional != kNoNode ? 1 : 0;
          // Candidates: the listed properties (all of them when any key is allowed, so that a
          // repeated key is recognised and refused when it closes).
          key.bits = key.aux ? low_bits(n.properties.size()) : low_bits(n.properties.size()) & ~f.bits;
          st.push_back(key);
          return emit(st);
        }
        if (c == '}' && f.phase == kObjOpen && (f.bits & n.required_mask) == n.required_mask) {
          st.pop_back();
          return emit(st);
        }
        return;
      case kObjKeyDone:
        if (c != ':') return;
        if (st.size() >= kMaxFrames) return;
        f.phase = kObjValueDone;
        {
          Frame v;
          v.node = f.aux;
          v.kind = FrameKind::Value;
          st.push_back(v);
        }
        return emit(st);
      case kObjValueDone:
        if (c == ',' && key_possible(f)) {
          f.phase = kObjComma;
          return emit(st);
        }
        if (c == '}' && (f.bits & n.required_mask) == n.required_mask) {
          st.pop_back();
          return emit(st);
        }
        return;
    }
  }

  void feed_array(std::vector<Frame>& st, uint8_t c) {
    Frame& f = st.back();
    const SchemaNode& n = node(f.node);
    if (whitespace(f, c)) {
      if (f.ws <= kMaxWhitespace) emit(st);
      return;
    }
    f.ws = 0;
    const bool may_close = static_cast<int64_t>(f.count) >= n.min_items;
    const bool may_add = n.max_items < 0 || static_cast<int64_t>(f.count) < n.max_items;
    if (f.phase == kArrValueDone) {
      if (c == ',' && may_add) {
        f.phase = kArrComma;
        return emit(st);
      }
      if (c == ']' && may_close) {
        st.pop_back();
        return emit(st);
      }
      return;
    }
    if (c == ']' && f.phase == kArrOpen && may_close) {
      st.pop_back();
      return emit(st);
    }
    if (!may_add) return;
    ++f.count;
    f.phase = kArrValueDone;
    start_value(st, n.items, c, 0);
  }

  void feed_string(std::vector<Frame>& st, uint8_t c) {
    Frame& f = st.back();
    const bool key = f.kind == FrameKind::Key;
    const SchemaNode& n = node(f.node);
    if (key && !(f.phase == kStrBody && f.utf8_left == 0 && c == '"')) {
      // Candidates follow the key's bytes as written (escapes included).
      const auto& props = n.properties;
      uint64_t alive = 0;
      for (uint64_t b = f.bits; b; b &= b - 1) {
        const int i = __builtin_ctzll(b);
        const std::string& k = props[static_cast<size_t>(i)].key;
        if (f.count < k.size() && static_cast<uint8_t>(k[f.count]) == c) alive |= uint64_t{1} << i;
      }
      f.bits = alive;
      ++f.count;
      if (!alive && !f.aux) return;
    }
    // Code points so far, for maxLength (keys are not counted).
    auto count_char = [&]() {
      if (key) return true;
      if (n.max_length >= 0 && static_cast<int64_t>(f.count) >= n.max_length) return false;
      ++f.count;
      return true;
    };
    if (f.utf8_left > 0 && f.phase == kStrBody) {  // inside a multi-byte character
      if (c < f.utf8_lo || c > f.utf8_hi) return;
      --f.utf8_left;
      f.utf8_lo = 0x80;
      f.utf8_hi = 0xBF;
      return emit(st);
    }
    if (f.phase == kStrEscape) {
      switch (c) {
        case '"': case '\\': case '/': case 'b': case 'f': case 'n': case 'r': case 't':
          f.phase = kStrBody;
          return emit(st);
        case 'u':
          f.phase = kStrHex;
          f.utf8_left = 4;
          return emit(st);
        default:
          return;
      }
    }
    if (f.phase == kStrHex) {
      const int h = hex_value(c);
      if (h < 0) return;
      // No surrogates: the first two digits of U+D800..U+DFFF are "d8".."df" (utf8_lo keeps
      // the first digit meanwhile).
      if (f.utf8_left == 4) f.utf8_lo = static_cast<uint8_t>(h);
      if (f.utf8_left == 3 && f.utf8_lo == 0xD && h >= 8) return;
      if (--f.utf8_left == 0) {
        f.phase = kStrBody;
        f.utf8_lo = 0x80;
      }
      return emit(st);
    }
    // kStrBody at a character boundary.
    if (c == '"') {
      if (key) return close_key(st);
      if (static_cast<int64_t>(f.count) < n.min_length) return;
      st.pop_back();
      return emit(st);
    }
    if (c == '\\') {
      if (!count_char()) return;
      f.phase = kStrEscape;
      return emit(st);
    }
    if (c < 0x20) return;
    if (c < 0x80) {
      if (!count_char()) return;
      return emit(st);
    }
    // A lead byte: how many continuation bytes, and the range of the first (no overlongs,
    // no surrogates, nothing above U+10FFFF).
    uint8_t left = 0, lo = 0x80, hi = 0xBF;
    if (c >= 0xC2 && c <= 0xDF) left = 1;
    else if (c == 0xE0) left = 2, lo = 0xA0;
    else if ((c >= 0xE1 && c <= 0xEC) || c == 0xEE || c == 0xEF) left = 2;
    else if (c == 0xED) left = 2, hi = 0x9F;
    else if (c == 0xF0) left = 3, lo = 0x90;
    else if (c >= 0xF1 && c <= 0xF3) left = 3;
    else if (c == 0xF4) left = 3, hi = 0x8F;
    else return;
    if (!count_char()) return;
    f.utf8_left = left;
    f.utf8_lo = lo;
    f.utf8_hi = hi;
    emit(st);
  }

  // The closing quote of a key: which property it names decides the value's schema.
  void close_key(std::vector<Frame>& st) {
    const Frame key = st.back();
    st.pop_back();
    Frame& obj = st.back();
    const SchemaNode& n = node(obj.node);
    int matched = -1;
    for (uint64_t b = key.bits; b; b &= b - 1) {
      const int i = __builtin_ctzll(b);
      if (n.properties[static_cast<size_t>(i)].key.size() == key.count) matched = i;
    }
    if (matched >= 0) {
      if (obj.bits & (uint64_t{1} << matched)) return;  // a key given twice
      obj.bits |= uint64_t{1} << matched;
      obj.aux = n.properties[static_cast<size_t>(matched)].node;
    } else {
      if (n.additional == kNoNode) return;
      obj.aux = n.additional;
    }
    obj.phase = kObjKeyDone;
    emit(st);
  }

  void feed_literal(std::vector<Frame>& st, uint8_t c) {
    Frame& f = st.back();
    const auto& texts = schema_.literal_sets[static_cast<size_t>(f.aux)];
    uint64_t alive = 0, done = 0;
    for (uint64_t b = f.bits; b; b &= b - 1) {
      const int i = __builtin_ctzll(b);
      const std::string& t = texts[static_cast<size_t>(i)];
      if (f.count < t.size() && static_cast<uint8_t>(t[f.count]) == c) {
        alive |= uint64_t{1} << i;
        if (t.size() == f.count + 1) done |= uint64_t{1} << i;
      }
    }
    ++f.count;
    f.bits = alive & ~done;
    if (f.bits) {
      if (done) {  // one value ends here and a longer one goes on (enum [1, 12]): both
        std::vector<Frame> ended(st.begin(), st.end() - 1);
        emit(ended);
      }
      return emit(st);
    }
    if (done) {
      st.pop_back();
      emit(st);
    }
  }

  // True when c continues the number (f updated).
  bool feed_number(Frame& f, uint8_t c) {
    const bool integer_only = !(node(f.node).types & kNumber);
    switch (f.phase) {
      case kNumStart:
        if (c == '-') return f.phase = kNumMinus, true;
        [[fallthrough]];
      case kNumMinus:
        if (c == '0') return f.phase = kNumZero, f.count = 1, true;
        if (is_digit(c)) return f.phase = kNumInt, f.count = 1, true;
        return false;
      case kNumInt:
        if (is_digit(c)) return f.count < kMaxIntDigits && (++f.count, true);
        [[fallthrough]];
      case kNumZero:
        if (integer_only) return false;
        if (c == '.') return f.phase = kNumDot, f.count = 0, true;
        if (c == 'e' || c == 'E') return f.phase = kNumExp, f.count = 0, true;
        return false;
      case kNumDot:
        if (is_digit(c)) return f.phase = kNumFrac, f.count = 1, true;
        return false;
      case kNumFrac:
        if (is_digit(c)) return f.count < kMaxFracDigits && (++f.count, true);
        if (c == 'e' || c == 'E') return f.phase = kNumExp, f.count = 0, true;
        return false;
      case kNumExp:
        if (c == '+' || c == '-') return f.phase = kNumExpSign, true;
        [[fallthrough]];
      case kNumExpSign:
        if (is_digit(c)) return f.phase = kNumExpDigits, f.count = 1, true;
        return false;
      case kNumExpDigits:
        if (is_digit(c)) return f.count < kMaxExpDigits && (++f.count, true);
        return false;
    }
    return false;
  }

  const Schema& schema_;
  MatchState& out_;
};

}  // namespace

MatchState initial_state(const Schema& schema) {
  (void)schema;
  MatchState s;
  Frame root;
  root.node = schema.root;
  root.kind = FrameKind::Value;
  s.frames.push_back(root);
  s.ends.push_back(1);
  return s;
}

bool advance_state(const Schema& schema, const MatchState& in, uint8_t byte, MatchState& out) {
  out.clear();
  Stepper stepper(schema, out);
  thread_local std::vector<Frame> work;
  uint32_t begin = 0;
  for (uint32_t end : in.ends) {
    work.assign(in.frames.begin() + begin, in.frames.begin() + end);
    stepper.feed(work, byte);
    begin = end;
  }
  return out.alive();
}

ByteSet possible_next_bytes(const MatchState& state) {
  auto set_of = [](std::string_view bytes) {
    ByteSet b;
    for (char c : bytes) b.set(static_cast<uint8_t>(c));
    return b;
  };
  static const ByteSet kWs = set_of(" \t\n\r");
  // Every JSON value's text starts with one of these (an enum's or const's literal too).
  static const ByteSet kValueStart = kWs | set_of("\"{[-0123456789tfn");
  static const ByteSet kObject = kWs | set_of("\"},:");
  static const ByteSet kArray = kValueStart | set_of("],");
  // A number's own bytes, and what its parent takes once it ends.
  static const ByteSet kNumber = kWs | set_of("0123456789.eE+-,}]");
  ByteSet out;
  uint32_t begin = 0;
  for (uint32_t end : state.ends) {
    if (end > begin) {
      switch (state.frames[end - 1].kind) {
        case FrameKind::Value: out |= kValueStart; break;
        case FrameKind::Object: out |= kObject; break;
        case FrameKind::Array: out |= kArray; break;
        case FrameKind::Number: out |= kNumber; break;
        case FrameKind::String:
        case FrameKind::Key:
        case FrameKind::Literal: return ByteSet::all();
      }
    }
    begin = end;
  }
  return out;
}

bool is_complete(const MatchState& state) {
  uint32_t begin = 0;
  for (uint32_t end : state.ends) {
    if (end == begin) return true;  // the root value closed
    if (end == begin + 1 && state.frames[begin].kind == FrameKind::Number && number_accepting(state.frames[begin]))
      return true;  // a number at the root, which could also go on
    begin = end;
  }
  return false;
}

namespace {

uint64_t min_value(const Schema& s, int node) { return s.min_value_bytes[static_cast<size_t>(node)]; }

// Bytes that close object frame `f` (its phase and the properties given so far).
uint64_t object_completion(const Schema& s, const Frame& f) {
  const SchemaNode& n = s.nodes[static_cast<size_t>(f.node)];
  uint64_t bytes = 1;  // '}'
  uint64_t missing = 0;
  for (size_t i = 0; i < n.properties.size(); ++i)
    if ((n.required_mask >> i & 1) && !(f.bits >> i & 1)) {
      bytes += n.properties[i].key.size() + 3 + min_value(s, n.properties[i].node);
      ++missing;
    }
  switch (f.phase) {
    case kObjOpen:
      return bytes + (missing ? missing - 1 : 0);
    case kObjValueDone:
      return bytes + missing;  // a comma before each
    case kObjKeyDone:
      return bytes + missing + 1 + min_value(s, f.aux);  // ':' and the value
    case kObjComma: {
      if (missing) return bytes + missing - 1;
      // A key must follow: the cheapest one allowed.
      uint64_t key = kUnbounded;
      if (n.additional != kNoNode) key = 3 + min_value(s, n.additional);  // "":v
      for (size_t i = 0; i < n.properties.size(); ++i)
        if (!(f.bits >> i & 1)) key = std::min<uint64_t>(key, n.properties[i].key.size() + 3 + min_value(s, n.properties[i].node));
      return bytes + key;
    }
  }
  return kUnbounded;
}

// Bytes that finish a string or key body's partial character or escape.
uint64_t partial_character(const Frame& f) {
  if (f.phase == kStrEscape) return 1;
  return f.utf8_left;  // continuation bytes or hex digits
}

// The shortest completion of a key being written and of the object around it: for each
// property the key may still become (and for "any other key" when the object allows one), the
// rest of the key, ':', that property's shortest value, and the object's rest with it given.
uint64_t key_and_object_completion(const Schema& s, const Frame& key, const Frame& obj) {
  const SchemaNode& n = s.nodes[static_cast<size_t>(obj.node)];
  Frame after = obj;
  after.phase = kObjValueDone;
  uint64_t best = kUnbounded;
  if (key.aux) best = partial_character(key) + 2 + min_value(s, n.additional) + object_completion(s, after);
  for (uint64_t b = key.bits; b; b &= b - 1) {
    const int i = __builtin_ctzll(b);
    const SchemaProperty& prop = n.properties[static_cast<size_t>(i)];
    if (obj.bits >> i & 1) continue;  // given already: closing on it is refused
    Frame given = after;
    given.bits |= uint64_t{1} << i;
    best = std::min<uint64_t>(best, prop.key.size() - key.count + 2 + min_value(s, prop.node) + object_completion(s, given));
  }
  return best;
}

uint64_t thread_completion(const Schema& s, const Frame* begin, const Frame* end) {
  uint64_t bytes = 0;
  // Innermost first. A key is settled together with its object (the next frame down).
  const Frame* open_key = nullptr;
  for (const Frame* p = end; p != begin;) {
    const Frame& f = *--p;
    const SchemaNode& n = s.nodes[static_cast<size_t>(f.node)];
    switch (f.kind) {
      case FrameKind::Value:
        bytes += min_value(s, f.node);
        break;
      case FrameKind::String:
        bytes += partial_character(f) + static_cast<uint64_t>(std::max<int64_t>(0, n.min_length - f.count)) + 1;
        break;
      case FrameKind::Key:
        open_key = &f;
        break;
      case FrameKind::Object:
        bytes += open_key ? key_and_object_completion(s, *open_key, f) : object_completion(s, f);
        open_key = nullptr;
        break;
      case FrameKind::Array: {
        const uint64_t have = f.count, need = static_cast<uint64_t>(n.min_items);
        const uint64_t item = min_value(s, n.items);
        uint64_t more = need > have ? need - have : 0;
        if (f.phase == kArrComma) more = std::max<uint64_t>(more, 1);
        bytes += 1 + more * item + (f.phase == kArrOpen ? (more ? more - 1 : 0) : f.phase == kArrComma ? more - 1 : more);
        break;
      }
      case FrameKind::Number:
        bytes += number_accepting(f) ? 0 : 1;
        break;
      case FrameKind::Literal: {
        uint64_t best = kUnbounded;
        for (uint64_t b = f.bits; b; b &= b - 1) {
          const std::string& t = s.literal_sets[static_cast<size_t>(f.aux)][static_cast<size_t>(__builtin_ctzll(b))];
          best = std::min<uint64_t>(best, t.size() - f.count);
        }
        bytes += best;
        break;
      }
    }
    if (bytes >= kUnbounded) return kUnbounded;
  }
  return bytes;
}

}  // namespace

uint32_t completion_bytes(const Schema& schema, const MatchState& state) {
  uint64_t best = kUnbounded;
  uint32_t begin = 0;
  for (uint32_t end : state.ends) {
    best = std::min(best, thread_completion(schema, state.frames.data() + begin, state.frames.data() + end));
    begin = end;
  }
  return static_cast<uint32_t>(best);
}

bool JsonMatcher::advance(std::string_view bytes) {
  MatchState trial = state_;
  for (char c : bytes) {
    if (!advance_state(*schema_, trial, static_cast<uint8_t>(c), next_)) return false;
    std::swap(trial, next_);
  }
  state_ = std::move(trial);
  return true;
}

}  // namespace dsv3::grammar
