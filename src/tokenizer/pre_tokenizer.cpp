#include "tokenizer/pre_tokenizer.h"

#include "tokenizer/unicode.h"

namespace dsv3 {

namespace {

using unicode::classify;
using unicode::decode_utf8;

constexpr std::string_view kDigitGroupsPattern = R"(\p{N}{1,3})";
constexpr std::string_view kCjkRunsPattern =
    "[\xe4\xb8\x80-\xe9\xbe\xa5\xe3\x81\x80-\xe3\x82\x9f\xe3\x82\xa0-\xe3\x83\xbf]+";  // literal characters
constexpr std::string_view kWordsPattern =
    "[!\"#$%&'()*+,\\-./:;<=>?@\\[\\\\\\]^_`{|}~][A-Za-z]+|[^\r\n\\p{L}\\p{P}\\p{S}]?[\\p{L}\\p{M}]+|"
    " ?[\\p{P}\\p{S}]+[\r\n]*|\\s*[\r\n]+|\\s+(?!\\S)|\\s+";

// One decoded character of the text being split.
struct Char {
  uint32_t cp;
  uint32_t len;
  uint8_t cls;
};

inline Char char_at(std::string_view s, size_t pos) {
  auto c = static_cast<unsigned char>(s[pos]);
  if (c < 0x80) {
    // ASCII fast path; the table is the same ICU data.
    return {c, 1, classify(c)};
  }
  auto d = decode_utf8(s, pos);
  return {d.cp, d.len, d.cp == unicode::kInvalid ? uint8_t{0} : classify(d.cp)};
}

bool is_cjk(uint32_t cp) {
  return (cp >= 0x4E00 && cp <= 0x9FA5) || (cp >= 0x3040 && cp <= 0x309F) || (cp >= 0x30A0 && cp <= 0x30FF);
}

bool is_ascii_alpha(uint32_t cp) { return (cp | 0x20) >= 'a' && (cp | 0x20) <= 'z'; }

bool is_ascii_punct(uint32_t cp) {
  // [!"#$%&'()*+,\-./:;<=>?@\[\\\]^_`{|}~]: every printable ASCII non-alphanumeric but space.
  return cp < 0x80 && cp > 0x20 && cp != 0x7F && !is_ascii_alpha(cp) && !(cp >= '0' && cp <= '9');
}

bool is_crlf(uint32_t cp) { return cp == '\r' || cp == '\n'; }

// Emits the Isolated split of text[begin, end) by a matcher: match(pos) returns the end of
// the regex match starting at pos, or pos when none starts there (no rule matches empty).
template <typename Match, typename Emit>
void isolated_split(std::string_view text, size_t begin, size_t end, Match&& match, Emit&& emit) {
  size_t gap = begin, pos = begin;
  while (pos < end) {
    size_t m = match(pos);
    if (m > pos) {
      if (gap < pos) emit(gap, pos);
      emit(pos, m);
      pos = gap = m;
    } else {
      pos += char_at(text, pos).len;
    }
  }
  if (gap < end) emit(gap, end);
}

// \p{N}{1,3}
size_t match_digit_group(std::string_view text, size_t pos, size_t end) {
  size_t p = pos;
  for (int n = 0; n < 3 && p < end; ++n) {
    Char c = char_at(text, p);
    if (!(c.cls & unicode::kNumber)) break;
    p += c.len;
  }
  return p;
}

// [\u4e00-\u9fa5\u3040-\u309f\u30a0-\u30ff]+
size_t match_cjk_run(std::string_view text, size_t pos, size_t end) {
  size_t p = pos;
  while (p < end) {
    Char c = char_at(text, p);
    if (!is_cjk(c.cp)) break;
    p += c.len;
  }
  return p;
}

// The DeepSeek-V3 word pattern, alternatives tried in order at `pos` as a backtracking
// engine would; `end` is the end of the subject string (the piece), which the (?!\S)
// lookahead sees as "no character".
size_t match_words(std::string_view text, size_t pos, size_t end) {
  Char c0 = char_at(text, pos);
  size_t after0 = pos + c0.len;
  constexpr uint8_t kLM = unicode::kLetter | unicode::kMark;
  constexpr uint8_t kPS = unicode::kPunct | unicode::kSymbol;

  // 1. [!"#...~][A-Za-z]+
  if (is_ascii_punct(c0.cp) && after0 < end && is_ascii_alpha(static_cast<unsigned char>(text[after0]))) {
    size_t p = after0;
    while (p < end && is_ascii_alpha(static_cast<unsigned char>(text[p]))) ++p;
    return p;
  }
  // 2. [^\r\n\p{L}\p{P}\p{S}]?[\p{L}\p{M}]+ : the optional character is tried first.
  auto letters_from = [&](size_t p) {
    while (p < end) {
      Char c = char_at(text, p);
      if (!(c.cls & kLM)) break;
      p += c.len;
    }
    return p;
  };
  if (!is_crlf(c0.cp) && !(c0.cls & (unicode::kLetter | kPS)) && after0 < end) {
    size_t p = letters_from(after0);
    if (p > after0) return p;
  }
  if (c0.cls & kLM) return letters_from(pos);
  // 3. ' '?[\p{P}\p{S}]+[\r\n]*
  {
    size_t p = c0.cp == ' ' ? after0 : pos;
    size_t q = p;
    while (q < end) {
      Char c = char_at(text, q);
      if (!(c.cls & kPS)) break;
      q += c.len;
    }
    if (q > p) {
      while (q < end && is_crlf(static_cast<unsigned char>(text[q]))) ++q;
      return q;
    }
  }
  if (!(c0.cls & unicode::kWhiteSpace)) return pos;
  // The maximal whitespace run from pos, remembering where its last CR/LF ends and where its
  // last character starts.
  size_t run_end = pos, last_crlf_end = pos, last_start = pos;
  while (run_end < end) {
    Char c = char_at(text, run_end);
    if (!(c.cls & unicode::kWhiteSpace)) break;
    last_start = run_end;
    run_end += c.len;
    if (is_crlf(c.cp)) last_crlf_end = run_end;
  }
  // 4. \s*[\r\n]+ : \s* backs off to the last CR/LF of the run; [\r\n]+ takes it.
  if (last_crlf_end > pos) return last_crlf_end;
  // 5. \s+(?!\S) : the whole run at the end of the piece, else the run less its last char.
  if (run_end == end) return run_end;
  if (last_start > pos) return last_start;
  // 6. \s+
  return run_end;
}

class SplitChain {
 public:
  SplitChain(const std::vector<SplitRule>& rules, std::string_view text, PieceSink& sink)
      : rules_(rules), text_(text), sink_(sink) {}

  void run(size_t level, size_t begin, size_t end) {
    if (level == rules_.size()) {
      sink_.piece(begin, end);
      return;
    }
    auto emit = [&](size_t b, size_t e) { run(level + 1, b, e); };
    switch (rules_[level]) {
      case SplitRule::kDigitGroups:
        isolated_split(text_, begin, end, [&](size_t p) { return match_digit_group(text_, p, end); }, emit);
        break;
      case SplitRule::kCjkRuns:
        isolated_split(text_, begin, end, [&](size_t p) { return match_cjk_run(text_, p, end); }, emit);
        break;
      case SplitRule::kDeepSeekV3Words:
        isolated_split(text_, begin, end, [&](size_t p) { return match_words(text_, p, end); }, emit);
        break;
    }
  }

 private:
  const std::vector<SplitRule>& rules_;
  std::string_view text_;
  PieceSink& sink_;
};

struct VectorSink final : PieceSink {
  std::string_view text;
  std::vector<std::string_view> out;
  void piece(size_t b, size_t e) override { out.push_back(text.substr(b, e - b)); }
};

Result<SplitRule> split_from_json(const Json& node) {
  if (!node.contains("pattern") || !node["pattern"].is_object())
    return Error("Split: missing 'pattern' object");
  const Json& pat = node["pattern"];
  std::string behavior = node.value("behavior", std::string());
  if (behavior != "Isolated")
    return Error("Split: behavior '" + json_snippet(node.value("behavior", Json())) + "' is not supported (only Isolated)");
  if (node.value("invert", false)) return Error("Split: invert=true is not supported");
  std::string source;
  if (pat.contains("Regex") && pat["Regex"].is_string()) source = pat["Regex"].get<std::string>();
  else return Error("Split: unrecognised pattern " + json_snippet(pat) + " (only the DeepSeek-V3 regexes are known)");
  for (SplitRule r : {SplitRule::kDigitGroups, SplitRule::kCjkRuns, SplitRule::kDeepSeekV3Words})
    if (source == split_rule_pattern(r)) return r;
  return Error("unrecognised pre-tokenizer Split regex " + json_snippet(Json(source), 120) +
               " (regexes are never compiled from files; known: the DeepSeek-V3 patterns)");
}

}  // namespace

std::string_view split_rule_pattern(SplitRule rule) {
  switch (rule) {
    case SplitRule::kDigitGroups: return kDigitGroupsPattern;
    case SplitRule::kCjkRuns: return kCjkRunsPattern;
    case SplitRule::kDeepSeekV3Words: return kWordsPattern;
  }
  return {};
}

Result<PreTokenizer> PreTokenizer::from_json(const Json& node) {
  if (!node.is_object() || !node.contains("type") || !node["type"].is_string())
    return Error("pre_tokenizer: expected an object with a 'type'");
  std::vector<Json> steps;
  std::string type = node["type"].get<std::string>();
  if (type == "Sequence") {
    if (!node.contains("pretokenizers") || !node["pretokenizers"].is_array())
      return Error("pre_tokenizer: Sequence without a 'pretokenizers' array");
    for (const auto& s : node["pretokenizers"]) steps.push_back(s);
  } else {
    steps.push_back(node);
  }
  PreTokenizer out;
  bool saw_byte_level = false;
  for (size_t i = 0; i < steps.size(); ++i) {
    const Json& s = steps[i];
    std::string where = "pre_tokenizer step " + std::to_string(i);
    if (!s.is_object() || !s.contains("type") || !s["type"].is_string())
      return Error(where + ": expected an object with a 'type'");
    std::string t = s["type"].get<std::string>();
    if (saw_byte_level) return Error(where + ": '" + t + "' after ByteLevel is not supported");
    if (t == "Split") {
      auto rule = split_from_json(s);
      if (!rule.ok()) return std::move(rule).error().context(where);
      out.rules_.push_back(*rule);
    } else if (t == "ByteLevel") {
      // ByteLevel's own regex (use_regex) and add_prefix_space would change the pieces.
      if (s.value("use_regex", true)) return Error(where + ": ByteLevel with use_regex=true is not supported");
      if (s.value("add_prefix_space", false))
        return Error(where + ": ByteLevel with add_prefix_space=true is not supported");
      saw_byte_level = true;
    } else {
      return Error(where + ": unrecognised pre-tokenizer type '" + json_snippet(Json(t)) + "'");
    }
  }
  if (!saw_byte_level) return Error("pre_tokenizer: no ByteLevel step (only byte-level BPE is supported)");
  return out;
}

PreTokenizer PreTokenizer::deepseek_v3() {
  PreTokenizer p;
  p.rules_ = {SplitRule::kDigitGroups, SplitRule::kCjkRuns, SplitRule::kDeepSeekV3Words};
  return p;
}

void PreTokenizer::split(std::string_view text, PieceSink& sink) const {
  if (text.empty()) return;
  SplitChain chain(rules_, text, sink);
  chain.run(0, 0, text.size());
}

std::vector<std::string_view> PreTokenizer::split_to_vector(std::string_view text) const {
  VectorSink sink;
  sink.text = text;
  split(text, sink);
  return std::move(sink.out);
}

}  // namespace dsv3
