#include "tokenizer/jinja/string_methods.h"

#include <unicode/uchar.h>

#include <algorithm>

#include "tokenizer/jinja/builtins.h"
#include "tokenizer/jinja/error.h"
#include "tokenizer/unicode.h"

namespace dsv3::jinja {

std::string map_case(const std::string& s, bool upper) {
  std::string out;
  size_t pos = 0;
  while (pos < s.size()) {
    auto d = unicode::decode_utf8(s, pos);
    if (d.cp == unicode::kInvalid) out += s[pos];
    else unicode::append_utf8(out, static_cast<uint32_t>(upper ? u_toupper(static_cast<UChar32>(d.cp))
                                                                : u_tolower(static_cast<UChar32>(d.cp))));
    pos += d.len;
  }
  return out;
}

namespace {

const std::string& need_string(const Value& v, const char* what) {
  if (!v.is_string()) fail(std::string(what) + ": expected a string, got " + v.type_name());
  return v.as_string();
}

int64_t need_int(const Value& v, const char* what) {
  if (!v.is_int()) fail(std::string(what) + ": expected an integer, got " + v.type_name());
  return v.as_int();
}

bool is_cased_letter(uint32_t cp) { return u_isUAlphabetic(static_cast<UChar32>(cp)) != 0; }

// Python str.capitalize / str.title.
std::string capitalize(const std::string& s) {
  auto chars = utf8_chars(s);
  std::string out;
  for (size_t i = 0; i < chars.size(); ++i) out += map_case(chars[i], i == 0);
  return out;
}
std::string title(const std::string& s) {
  std::string out;
  bool prev_letter = false;
  for (const auto& ch : utf8_chars(s)) {
    uint32_t cp = unicode::decode_utf8(ch, 0).cp;
    bool letter = cp != unicode::kInvalid && is_cased_letter(cp);
    out += map_case(ch, letter && !prev_letter);
    prev_letter = letter;
  }
  return out;
}

bool in_chars(uint32_t cp, const std::vector<uint32_t>* chars) {
  if (!chars) return python_isspace(cp);
  return std::find(chars->begin(), chars->end(), cp) != chars->end();
}

uint32_t code_point_at(const std::string& s, size_t pos) { return unicode::decode_utf8(s, pos).cp; }

// Python str.strip / lstrip / rstrip: the piece of `self` that remains.
Value strip(const Value& self, const Value& chars_arg, bool left, bool right) {
  std::vector<uint32_t> chars;
  const std::vector<uint32_t>* set = nullptr;
  if (chars_arg.is_string()) {
    for (const auto& c : utf8_chars(chars_arg.as_string())) chars.push_back(unicode::decode_utf8(c, 0).cp);
    set = &chars;
  }
  const std::string& s = self.as_string();
  auto cps = utf8_char_ranges(s);
  size_t b = 0, e = cps.size();
  if (left)
    while (b < e && in_chars(code_point_at(s, cps[b].first), set)) ++b;
  if (right)
    while (e > b && in_chars(code_point_at(s, cps[e - 1].first), set)) --e;
  return b == e ? Value("") : piece(self, cps[b].first, cps[e - 1].second);
}

// Python str.split / rsplit: pieces of `self`.
ValueList split(const Value& self, const Value& sep, int64_t maxsplit, bool from_right) {
  const std::string& s = self.as_string();
  ValueList out;
  if (sep.is_none() || sep.is_undefined()) {  // runs of whitespace, no empty strings
    std::vector<std::pair<size_t, size_t>> words;
    size_t word_start = 0;
    bool in_word = false;
    for (const auto& [b, e] : utf8_char_ranges(s)) {
      const bool space = python_isspace(code_point_at(s, b));
      if (space && in_word) words.emplace_back(word_start, b);
      if (!space && !in_word) word_start = b;
      in_word = !space;
    }
    if (in_word) words.emplace_back(word_start, s.size());
    if (maxsplit >= 0 && static_cast<int64_t>(words.size()) > maxsplit + 1) {
      // The rest is kept as it is, spacing included, from the first word not split off.
      const auto k = static_cast<size_t>(maxsplit);
      if (!from_right) {
        words[k].second = s.size();
        words.resize(k + 1);
      } else {
        const size_t first = words.size() - k - 1;
        std::vector<std::pair<size_t, size_t>> kept = {{0, words[first].second}};
        kept.insert(kept.end(), words.begin() + static_cast<ptrdiff_t>(first) + 1, words.end());
        words = std::move(kept);
      }
    }
    for (const auto& [b, e] : words) out.push_back(piece(self, b, e));
    return out;
  }
  const std::string& sp = need_string(sep, "split");
  if (sp.empty()) fail("split: empty separator");
  std::vector<std::pair<size_t, size_t>> parts;
  if (!from_right) {
    size_t pos = 0;
    int64_t n = 0;
    while (true) {
      size_t f = (maxsplit < 0 || n < maxsplit) ? s.find(sp, pos) : std::string::npos;
      if (f == std::string::npos) {
        parts.emplace_back(pos, s.size());
        break;
      }
      parts.emplace_back(pos, f);
      pos = f + sp.size();
      ++n;
    }
  } else {
    size_t end = s.size();
    int64_t n = 0;
    while (true) {
      size_t f = (maxsplit < 0 || n < maxsplit) && end >= sp.size() ? s.rfind(sp, end - sp.size()) : std::string::npos;
      if (f == std::string::npos) {
        parts.emplace_back(0, end);
        break;
      }
      parts.emplace_back(f + sp.size(), end);
      end = f;
      ++n;
    }
    std::reverse(parts.begin(), parts.end());
  }
  for (const auto& [b, e] : parts) out.push_back(piece(self, b, e));
  return out;
}

// Python str.replace: the pieces of `self` around each match, and `repl` (its own ranges) in
// place of it.
Value replace(const Value& self, const std::string& old, const Value& repl, int64_t count) {
  const std::string& s = self.as_string();
  TextBuilder out;
  if (old.empty()) {  // Python inserts repl between characters
    auto chars = utf8_char_ranges(s);
    int64_t n = 0;
    for (size_t i = 0; i <= chars.size(); ++i) {
      if (count < 0 || n < count) out.append(repl), ++n;
      if (i < chars.size()) out.append_piece(self, chars[i].first, chars[i].second);
    }
    return out.take();
  }
  size_t pos = 0;
  int64_t n = 0;
  while (count < 0 || n < count) {
    size_t f = s.find(old, pos);
    if (f == std::string::npos) break;
    out.append_piece(self, pos, f);
    out.append(repl);
    pos = f + old.size();
    ++n;
  }
  out.append_piece(self, pos, s.size());
  return out.take();
}

bool affix_match(const std::string& s, const Value& affix, bool prefix) {
  auto one = [&](const std::string& a) {
    if (a.size() > s.size()) return false;
    return prefix ? s.compare(0, a.size(), a) == 0 : s.compare(s.size() - a.size(), a.size(), a) == 0;
  };
  if (affix.is_list()) {
    for (const Value& a : affix.as_list())
      if (one(need_string(a, prefix ? "startswith" : "endswith"))) return true;
    return false;
  }
  return one(need_string(affix, prefix ? "startswith" : "endswith"));
}

// str.format with {} / {0} / {name} fields (no format specs beyond that).
std::string str_format(const std::string& fmt, CallArgs& args) {
  std::string out;
  size_t auto_index = 0;
  for (size_t i = 0; i < fmt.size(); ++i) {
    char c = fmt[i];
    if (c == '{' && i + 1 < fmt.size() && fmt[i + 1] == '{') {
      out += '{';
      ++i;
    } else if (c == '}' && i + 1 < fmt.size() && fmt[i + 1] == '}') {
      out += '}';
      ++i;
    } else if (c == '{') {
      size_t close = fmt.find('}', i);
      if (close == std::string::npos) fail("format: unmatched '{'");
      std::string field = fmt.substr(i + 1, close - i - 1);
      Value v;
      if (field.empty()) v = args.get(auto_index++, "");
      else if (std::all_of(field.begin(), field.end(), [](char ch) { return ch >= '0' && ch <= '9'; }))
        v = args.get(std::stoul(field), "");
      else v = args.get(SIZE_MAX, field.c_str());
      out += v.str();
      i = close;
    } else {
      out += c;
    }
  }
  return out;
}

Value bound(const std::string& name, Function f) { return Value::function(name, std::move(f)); }

}  // namespace

Value string_method(const Value& self, const std::string& name) {
  // `s` is the text, `self` the value with its data ranges: methods that return pieces of the
  // string keep the ranges (piece, TextBuilder), the others mark their result as data when
  // `self` (or an argument) holds data.
  const std::string s = self.as_string();
  auto case_mapped = [self](std::string text) { return mark_data_from(Value(std::move(text)), {&self}); };
  if (name == "upper") return bound(name, [s, case_mapped](CallArgs&) { return case_mapped(map_case(s, true)); });
  if (name == "lower") return bound(name, [s, case_mapped](CallArgs&) { return case_mapped(map_case(s, false)); });
  if (name == "strip" || name == "lstrip" || name == "rstrip")
    return bound(name, [self, name](CallArgs& a) { return strip(self, a.get(0, "chars"), name != "rstrip", name != "lstrip"); });
  if (name == "split" || name == "rsplit")
    return bound(name, [self, name](CallArgs& a) {
      Value max = a.get(1, "maxsplit", Value(int64_t{-1}));
      return Value(split(self, a.get(0, "sep", Value::none()), need_int(max, "split"), name == "rsplit"));
    });
  if (name == "splitlines")
    return bound(name, [self, s](CallArgs&) {
      ValueList out;
      size_t pos = 0;
      while (pos < s.size()) {
        size_t nl = s.find_first_of("\r\n", pos);
        if (nl == std::string::npos) {
          out.push_back(piece(self, pos, s.size()));
          break;
        }
        out.push_back(piece(self, pos, nl));
        pos = nl + ((s[nl] == '\r' && nl + 1 < s.size() && s[nl + 1] == '\n') ? 2 : 1);
      }
      return Value(std::move(out));
    });
  if (name == "startswith" || name == "endswith")
    return bound(name, [s, name](CallArgs& a) { return Value(affix_match(s, a.get(0, "prefix"), name == "startswith")); });
  if (name == "replace")
    return bound(name, [self](CallArgs& a) {
      const Value repl = a.get(1, "new");
      need_string(repl, "replace");
      return replace(self, need_string(a.get(0, "old"), "replace"), repl,
                     need_int(a.get(2, "count", Value(int64_t{-1})), "replace"));
    });
  if (name == "find" || name == "rfind" || name == "index" || name == "count")
    return bound(name, [s, name](CallArgs& a) -> Value {
      const std::string& sub = need_string(a.get(0, "sub"), name.c_str());
      if (name == "count") {
        if (sub.empty()) return Value(static_cast<int64_t>(utf8_chars(s).size() + 1));
        int64_t n = 0;
        for (size_t p = s.find(sub); p != std::string::npos; p = s.find(sub, p + sub.size())) ++n;
        return Value(n);
      }
      size_t f = name == "rfind" ? s.rfind(sub) : s.find(sub);
      if (f == std::string::npos) {
        if (name == "index") fail("substring not found");
        return Value(int64_t{-1});
      }
      return Value(static_cast<int64_t>(utf8_chars(s.substr(0, f)).size()));
    });
  if (name == "removeprefix" || name == "removesuffix")
    return bound(name, [self, s, name](CallArgs& a) {
      const std::string& affix = need_string(a.get(0, "affix"), name.c_str());
      if (affix.empty() || affix.size() > s.size()) return self;
      if (name == "removeprefix") return s.compare(0, affix.size(), affix) == 0 ? piece(self, affix.size(), s.size()) : self;
      return s.compare(s.size() - affix.size(), affix.size(), affix) == 0 ? piece(self, 0, s.size() - affix.size()) : self;
    });
  if (name == "zfill" || name == "ljust" || name == "rjust" || name == "center")
    return bound(name, [self, s, name](CallArgs& a) {
      int64_t width = need_int(a.get(0, "width"), name.c_str());
      const Value fill = name == "zfill" ? Value("0") : text_of(a.get(1, "fillchar", Value(" ")));
      if (utf8_chars(fill.as_string()).size() != 1) fail(name + ": the fill character must be one character");
      auto n = static_cast<int64_t>(utf8_chars(s).size());
      if (width > (1 << 20)) fail(name + ": width too large");
      if (width <= n) return self;
      int64_t pad = width - n, left = 0;
      if (name == "rjust" || name == "zfill") left = pad;
      else if (name == "center") left = pad / 2 + (pad & width & 1);  // Python's centering rule
      TextBuilder out;
      auto repeat = [&](int64_t k) {
        for (int64_t i = 0; i < k; ++i) out.append(fill);
      };
      if (name == "zfill" && !s.empty() && (s[0] == '-' || s[0] == '+')) {
        out.append_piece(self, 0, 1);
        repeat(pad);
        out.append_piece(self, 1, s.size());
        return out.take();
      }
      repeat(left);
      out.append(self);
      repeat(pad - left);
      return out.take();
    });
  if (name == "partition" || name == "rpartition")
    return bound(name, [self, s, name](CallArgs& a) {
      const Value sep_value = a.get(0, "sep");
      const std::string& sep = need_string(sep_value, name.c_str());
      if (sep.empty()) fail(name + ": empty separator");
      size_t f = name == "partition" ? s.find(sep) : s.rfind(sep);
      if (f == std::string::npos)
        return name == "partition" ? Value::tuple({self, Value(""), Value("")}) : Value::tuple({Value(""), Value(""), self});
      return Value::tuple({piece(self, 0, f), piece(self, f, f + sep.size()), piece(self, f + sep.size(), s.size())});
    });
  if (name == "swapcase")
    return bound(name, [s, case_mapped](CallArgs&) {
      std::string out;
      for (const auto& ch : utf8_chars(s)) {
        auto cp = static_cast<UChar32>(unicode::decode_utf8(ch, 0).cp);
        out += u_isUUppercase(cp) ? map_case(ch, false) : u_isULowercase(cp) ? map_case(ch, true) : ch;
      }
      return case_mapped(std::move(out));
    });
  if (name == "title") return bound(name, [s, case_mapped](CallArgs&) { return case_mapped(title(s)); });
  if (name == "capitalize") return bound(name, [s, case_mapped](CallArgs&) { return case_mapped(capitalize(s)); });
  if (name == "join")
    return bound(name, [self](CallArgs& a) {
      TextBuilder out;
      ValueList items = iterate(a.get(0, "iterable"));
      for (size_t i = 0; i < items.size(); ++i) {
        need_string(items[i], "join");
        if (i) out.append(self);
        out.append(items[i]);
      }
      return out.take();
    });
  if (name == "format")
    return bound(name, [self, s](CallArgs& a) {
      Value out(str_format(s, a));
      if (has_data(self)) return out.as_data();
      for (const Value& v : a.positional)
        if (has_data(v)) return out.as_data();
      for (const auto& kv : a.keyword)
        if (has_data(kv.second)) return out.as_data();
      return out;
    });
  if (name == "isdigit" || name == "isalpha" || name == "isalnum" || name == "isspace" || name == "islower" ||
      name == "isupper")
    return bound(name, [s, name](CallArgs&) {
      if (s.empty()) return Value(false);
      bool any_cased = false;
      for (const auto& ch : utf8_chars(s)) {
        auto cp = static_cast<UChar32>(unicode::decode_utf8(ch, 0).cp);
        bool ok = true;
        if (name == "isdigit") ok = u_isdigit(cp);
        else if (name == "isalpha") ok = u_isUAlphabetic(cp);
        else if (name == "isalnum") ok = u_isUAlphabetic(cp) || u_isdigit(cp);
        else if (name == "isspace") ok = python_isspace(static_cast<uint32_t>(cp));
        else if (name == "islower") {
          if (u_isUUppercase(cp)) return Value(false);
          any_cased |= u_isULowercase(cp) != 0;
        } else {
          if (u_isULowercase(cp)) return Value(false);
          any_cased |= u_isUUppercase(cp) != 0;
        }
        if (!ok) return Value(false);
      }
      return Value(name == "islower" || name == "isupper" ? any_cased : true);
    });
  return Value::undefined(name);
}

}  // namespace dsv3::jinja
