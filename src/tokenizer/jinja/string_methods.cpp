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

std::string strip(const std::string& s, const Value& chars_arg, bool left, bool right) {
  std::vector<uint32_t> chars;
  const std::vector<uint32_t>* set = nullptr;
  if (chars_arg.is_string()) {
    for (const auto& c : utf8_chars(chars_arg.as_string())) chars.push_back(unicode::decode_utf8(c, 0).cp);
    set = &chars;
  }
  auto cps = utf8_chars(s);
  size_t b = 0, e = cps.size();
  if (left)
    while (b < e && in_chars(unicode::decode_utf8(cps[b], 0).cp, set)) ++b;
  if (right)
    while (e > b && in_chars(unicode::decode_utf8(cps[e - 1], 0).cp, set)) --e;
  std::string out;
  for (size_t i = b; i < e; ++i) out += cps[i];
  return out;
}

ValueList split(const std::string& s, const Value& sep, int64_t maxsplit, bool from_right) {
  ValueList out;
  if (sep.is_none() || sep.is_undefined()) {  // runs of whitespace, no empty strings
    std::vector<std::string> words;
    std::string cur;
    bool in_word = false;
    for (const auto& ch : utf8_chars(s)) {
      if (python_isspace(unicode::decode_utf8(ch, 0).cp)) {
        if (in_word) words.push_back(cur), cur.clear();
        in_word = false;
      } else {
        cur += ch;
        in_word = true;
      }
    }
    if (in_word) words.push_back(cur);
    if (maxsplit >= 0 && static_cast<int64_t>(words.size()) > maxsplit + 1) {
      // Rare: rejoin the tail (approximation of Python, which keeps the original spacing).
      std::vector<std::string> head(words.begin(), words.begin() + maxsplit);
      std::string rest;
      for (size_t i = static_cast<size_t>(maxsplit); i < words.size(); ++i) rest += (rest.empty() ? "" : " ") + words[i];
      head.push_back(rest);
      words = head;
    }
    for (auto& w : words) out.emplace_back(w);
    return out;
  }
  const std::string& sp = need_string(sep, "split");
  if (sp.empty()) fail("split: empty separator");
  std::vector<std::string> parts;
  if (!from_right) {
    size_t pos = 0;
    int64_t n = 0;
    while (true) {
      size_t f = (maxsplit < 0 || n < maxsplit) ? s.find(sp, pos) : std::string::npos;
      if (f == std::string::npos) {
        parts.push_back(s.substr(pos));
        break;
      }
      parts.push_back(s.substr(pos, f - pos));
      pos = f + sp.size();
      ++n;
    }
  } else {
    size_t end = s.size();
    int64_t n = 0;
    while (true) {
      size_t f = (maxsplit < 0 || n < maxsplit) && end >= sp.size() ? s.rfind(sp, end - sp.size()) : std::string::npos;
      if (f == std::string::npos) {
        parts.push_back(s.substr(0, end));
        break;
      }
      parts.push_back(s.substr(f + sp.size(), end - f - sp.size()));
      end = f;
      ++n;
    }
    std::reverse(parts.begin(), parts.end());
  }
  for (auto& p : parts) out.emplace_back(p);
  return out;
}

std::string replace(const std::string& s, const std::string& old, const std::string& repl, int64_t count) {
  std::string out;
  if (old.empty()) {  // Python inserts repl between characters
    auto chars = utf8_chars(s);
    int64_t n = 0;
    for (size_t i = 0; i <= chars.size(); ++i) {
      if (count < 0 || n < count) out += repl, ++n;
      if (i < chars.size()) out += chars[i];
    }
    return out;
  }
  size_t pos = 0;
  int64_t n = 0;
  while (count < 0 || n < count) {
    size_t f = s.find(old, pos);
    if (f == std::string::npos) break;
    out.append(s, pos, f - pos);
    out += repl;
    pos = f + old.size();
    ++n;
  }
  out.append(s, pos, std::string::npos);
  return out;
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
  const std::string s = self.as_string();
  if (name == "upper") return bound(name, [s](CallArgs&) { return Value(map_case(s, true)); });
  if (name == "lower") return bound(name, [s](CallArgs&) { return Value(map_case(s, false)); });
  if (name == "strip" || name == "lstrip" || name == "rstrip")
    return bound(name, [s, name](CallArgs& a) {
      return Value(strip(s, a.get(0, "chars"), name != "rstrip", name != "lstrip"));
    });
  if (name == "split" || name == "rsplit")
    return bound(name, [s, name](CallArgs& a) {
      Value max = a.get(1, "maxsplit", Value(int64_t{-1}));
      return Value(split(s, a.get(0, "sep", Value::none()), need_int(max, "split"), name == "rsplit"));
    });
  if (name == "splitlines")
    return bound(name, [s](CallArgs&) {
      ValueList out;
      size_t pos = 0;
      while (pos < s.size()) {
        size_t nl = s.find_first_of("\r\n", pos);
        if (nl == std::string::npos) {
          out.emplace_back(s.substr(pos));
          break;
        }
        out.emplace_back(s.substr(pos, nl - pos));
        pos = nl + ((s[nl] == '\r' && nl + 1 < s.size() && s[nl + 1] == '\n') ? 2 : 1);
      }
      return Value(std::move(out));
    });
  if (name == "startswith" || name == "endswith")
    return bound(name, [s, name](CallArgs& a) { return Value(affix_match(s, a.get(0, "prefix"), name == "startswith")); });
  if (name == "replace")
    return bound(name, [s](CallArgs& a) {
      return Value(replace(s, need_string(a.get(0, "old"), "replace"), need_string(a.get(1, "new"), "replace"),
                           need_int(a.get(2, "count", Value(int64_t{-1})), "replace")));
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
    return bound(name, [s, name](CallArgs& a) {
      const std::string& affix = need_string(a.get(0, "affix"), name.c_str());
      if (affix.empty() || affix.size() > s.size()) return Value(s);
      if (name == "removeprefix") return Value(s.compare(0, affix.size(), affix) == 0 ? s.substr(affix.size()) : s);
      return Value(s.compare(s.size() - affix.size(), affix.size(), affix) == 0 ? s.substr(0, s.size() - affix.size()) : s);
    });
  if (name == "zfill" || name == "ljust" || name == "rjust" || name == "center")
    return bound(name, [s, name](CallArgs& a) {
      int64_t width = need_int(a.get(0, "width"), name.c_str());
      std::string fill = name == "zfill" ? "0" : a.get(1, "fillchar", Value(" ")).str();
      if (utf8_chars(fill).size() != 1) fail(name + ": the fill character must be one character");
      auto n = static_cast<int64_t>(utf8_chars(s).size());
      if (width > (1 << 20)) fail(name + ": width too large");
      if (width <= n) return Value(s);
      int64_t pad = width - n, left = 0;
      if (name == "rjust" || name == "zfill") left = pad;
      else if (name == "center") left = pad / 2 + (pad & width & 1);  // Python's centering rule
      auto repeat = [&](int64_t k) {
        std::string r;
        for (int64_t i = 0; i < k; ++i) r += fill;
        return r;
      };
      if (name == "zfill" && !s.empty() && (s[0] == '-' || s[0] == '+')) return Value(s.substr(0, 1) + repeat(pad) + s.substr(1));
      return Value(repeat(left) + s + repeat(pad - left));
    });
  if (name == "partition" || name == "rpartition")
    return bound(name, [s, name](CallArgs& a) {
      const std::string& sep = need_string(a.get(0, "sep"), name.c_str());
      if (sep.empty()) fail(name + ": empty separator");
      size_t f = name == "partition" ? s.find(sep) : s.rfind(sep);
      if (f == std::string::npos)
        return name == "partition" ? Value::tuple({Value(s), Value(""), Value("")}) : Value::tuple({Value(""), Value(""), Value(s)});
      return Value::tuple({Value(s.substr(0, f)), Value(sep), Value(s.substr(f + sep.size()))});
    });
  if (name == "swapcase")
    return bound(name, [s](CallArgs&) {
      std::string out;
      for (const auto& ch : utf8_chars(s)) {
        auto cp = static_cast<UChar32>(unicode::decode_utf8(ch, 0).cp);
        out += u_isUUppercase(cp) ? map_case(ch, false) : u_isULowercase(cp) ? map_case(ch, true) : ch;
      }
      return Value(std::move(out));
    });
  if (name == "title") return bound(name, [s](CallArgs&) { return Value(title(s)); });
  if (name == "capitalize") return bound(name, [s](CallArgs&) { return Value(capitalize(s)); });
  if (name == "join")
    return bound(name, [s](CallArgs& a) {
      std::string out;
      ValueList items = iterate(a.get(0, "iterable"));
      for (size_t i = 0; i < items.size(); ++i) out += (i ? s : "") + need_string(items[i], "join");
      return Value(std::move(out));
    });
  if (name == "format") return bound(name, [s](CallArgs& a) { return Value(str_format(s, a)); });
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
