#include "tokenizer/jinja/builtins.h"

#include <unicode/uchar.h>

#include <algorithm>
#include <charconv>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <ctime>
#include <optional>

#include "tokenizer/jinja/error.h"
#include "tokenizer/jinja/string_methods.h"
#include "tokenizer/unicode.h"

namespace dsv3::jinja {

namespace {

[[noreturn]] void undefined_error(const Value& v) {
  std::string name = v.undefined_name();
  fail(name.empty() ? "undefined value used" : "'" + name + "' is undefined");
}

int64_t need_int(const Value& v, const char* what) {
  if (!v.is_int()) fail(std::string(what) + ": expected an integer, got " + v.type_name());
  return v.as_int();
}

Value bound(const std::string& name, Function f) { return Value::function(name, std::move(f)); }

Value dict_method(const Value& self, const std::string& name) {
  if (name == "items")
    return bound(name, [self](CallArgs&) {
      ValueList out;
      for (const auto& [k, v] : self.as_dict().items) out.push_back(Value::tuple({key_value(self.as_dict(), k), v}));
      return Value(std::move(out));
    });
  if (name == "keys")
    return bound(name, [self](CallArgs&) {
      ValueList out;
      for (const auto& kv : self.as_dict().items) out.push_back(key_value(self.as_dict(), kv.first));
      return Value(std::move(out));
    });
  if (name == "values")
    return bound(name, [self](CallArgs&) {
      ValueList out;
      for (const auto& kv : self.as_dict().items) out.push_back(kv.second);
      return Value(std::move(out));
    });
  if (name == "get")
    return bound(name, [self](CallArgs& a) {
      Value key = a.get(0, "key");
      const Value* v = key.is_string() ? self.as_dict().find(key.as_string()) : nullptr;
      return v ? *v : a.get(1, "default", Value::none());
    });
  return Value::undefined(name);
}

}  // namespace

std::optional<int64_t> decimal_int64(const std::string& digits) {
  int64_t v = 0;
  const auto [end, ec] = std::from_chars(digits.data(), digits.data() + digits.size(), v, 10);
  if (ec != std::errc() || end != digits.data() + digits.size()) return std::nullopt;
  return v;
}

std::vector<std::string> utf8_chars(const std::string& s) {
  std::vector<std::string> out;
  size_t pos = 0;
  while (pos < s.size()) {
    auto d = unicode::decode_utf8(s, pos);
    out.push_back(s.substr(pos, d.len));
    pos += d.len;
  }
  return out;
}

std::vector<std::pair<size_t, size_t>> utf8_char_ranges(const std::string& s) {
  std::vector<std::pair<size_t, size_t>> out;
  size_t pos = 0;
  while (pos < s.size()) {
    auto d = unicode::decode_utf8(s, pos);
    out.emplace_back(pos, pos + d.len);
    pos += d.len;
  }
  return out;
}

Value piece(const Value& s, size_t begin, size_t end) {
  std::string bytes = s.as_string().substr(begin, end - begin);
  if (const DataSpans* spans = s.data_spans()) return Value::string_with_data(std::move(bytes), slice_spans(*spans, begin, end));
  return Value(std::move(bytes));
}

Value get_attribute(const Value& obj, const std::string& name) {
  if (obj.is_undefined()) undefined_error(obj);
  if (obj.is_namespace()) {
    const Value* v = obj.as_dict().find(name);
    return v ? *v : Value::undefined(name);
  }
  if (obj.is_dict()) {
    Value m = dict_method(obj, name);
    if (!m.is_undefined()) return m;
    const Value* v = obj.as_dict().find(name);
    return v ? *v : Value::undefined(name);
  }
  if (obj.is_string()) return string_method(obj, name);
  if (obj.is_list()) {
    if (name == "append" || name == "pop" || name == "extend" || name == "insert" || name == "remove" ||
        name == "clear" || name == "sort" || name == "reverse")
      fail("lists are immutable in chat templates (list." + name + ")");
    if (name == "index" || name == "count") {
      Value self = obj;
      return bound(name, [self, name](CallArgs& a) -> Value {
        Value x = a.get(0, "value");
        int64_t n = 0;
        const auto& list = self.as_list();
        for (size_t i = 0; i < list.size(); ++i) {
          if (!list[i].equals(x)) continue;
          if (name == "index") return Value(static_cast<int64_t>(i));
          ++n;
        }
        if (name == "index") fail("value is not in list");
        return Value(n);
      });
    }
  }
  return Value::undefined(name);
}

Value get_item(const Value& obj, const Value& key) {
  if (obj.is_undefined()) undefined_error(obj);
  if (obj.is_dict()) {
    if (key.is_string()) {
      if (const Value* v = obj.as_dict().find(key.as_string())) return *v;
      if (!obj.is_namespace()) return get_attribute(obj, key.as_string());
    }
    return Value::undefined(key.is_string() ? key.as_string() : key.str());
  }
  if ((obj.is_list() || obj.is_string()) && key.is_int()) {
    int64_t i = key.as_int();
    if (obj.is_list()) {
      auto n = static_cast<int64_t>(obj.as_list().size());
      if (i < 0) i += n;
      if (i < 0 || i >= n) return Value::undefined(std::string("[").append(key.str()).append("]"));
      return obj.as_list()[static_cast<size_t>(i)];
    }
    auto chars = utf8_char_ranges(obj.as_string());
    auto n = static_cast<int64_t>(chars.size());
    if (i < 0) i += n;
    if (i < 0 || i >= n) return Value::undefined(std::string("[").append(key.str()).append("]"));
    return piece(obj, chars[static_cast<size_t>(i)].first, chars[static_cast<size_t>(i)].second);
  }
  if (key.is_string()) return get_attribute(obj, key.as_string());
  return Value::undefined(key.str());
}

Value get_slice(const Value& obj, const Value& start, const Value& stop, const Value& step) {
  auto opt = [](const Value& v, const char* what) -> std::optional<int64_t> {
    if (v.is_undefined() || v.is_none()) return std::nullopt;
    return need_int(v, what);
  };
  std::optional<int64_t> b = opt(start, "slice start"), e = opt(stop, "slice stop"), st = opt(step, "slice step");
  int64_t s = st.value_or(1);
  if (s == 0) fail("slice step cannot be zero");
  const bool is_str = obj.is_string();
  std::vector<std::pair<size_t, size_t>> chars;  // a string's code points
  if (is_str) chars = utf8_char_ranges(obj.as_string());
  else if (!obj.is_list()) fail("'" + obj.type_name() + "' object is not subscriptable");
  auto n = static_cast<int64_t>(is_str ? chars.size() : obj.as_list().size());
  auto clamp = [&](std::optional<int64_t> v, int64_t def_pos, int64_t def_neg) {
    if (!v) return s > 0 ? def_pos : def_neg;
    int64_t x = *v;
    if (x < 0) x += n;
    if (s > 0) return std::clamp<int64_t>(x, 0, n);
    return std::clamp<int64_t>(x, -1, n - 1);
  };
  int64_t lo = clamp(b, 0, n - 1), hi = clamp(e, n, -1);
  std::vector<size_t> picked;
  if (s > 0)
    for (int64_t i = lo; i < hi; i += s) picked.push_back(static_cast<size_t>(i));
  else
    for (int64_t i = lo; i > hi; i += s) picked.push_back(static_cast<size_t>(i));
  if (!is_str) {
    ValueList out;
    for (size_t i : picked) out.push_back(obj.as_list()[i]);
    return Value(std::move(out));
  }
  TextBuilder str;
  for (size_t i : picked) str.append_piece(obj, chars[i].first, chars[i].second);
  return str.take();
}

bool contains(const Value& container, const Value& item) {
  if (container.is_undefined()) return false;
  if (container.is_string()) {
    if (!item.is_string()) fail("'in <string>' requires a string as left operand, not " + item.type_name());
    return container.as_string().find(item.as_string()) != std::string::npos;
  }
  if (container.is_list()) {
    for (const Value& v : container.as_list())
      if (v.equals(item)) return true;
    return false;
  }
  if (container.is_dict()) return item.is_string() && container.as_dict().find(item.as_string()) != nullptr;
  fail("argument of type '" + container.type_name() + "' is not iterable");
}

ValueList iterate(const Value& v) {
  if (v.is_undefined()) return {};
  if (v.is_list()) return v.as_list();
  if (v.is_dict()) {
    ValueList keys;
    for (const auto& kv : v.as_dict().items) keys.push_back(key_value(v.as_dict(), kv.first));
    return keys;
  }
  if (v.is_string()) {
    ValueList out;
    for (const auto& [b, e] : utf8_char_ranges(v.as_string())) out.push_back(piece(v, b, e));
    return out;
  }
  fail("'" + v.type_name() + "' object is not iterable");
}

int64_t length_of(const Value& v) {
  if (v.is_undefined()) return 0;
  if (v.is_string()) return static_cast<int64_t>(utf8_chars(v.as_string()).size());
  if (v.is_list()) return static_cast<int64_t>(v.as_list().size());
  if (v.is_dict()) return static_cast<int64_t>(v.as_dict().items.size());
  fail("object of type '" + v.type_name() + "' has no len()");
}

std::string percent_format(const std::string& fmt, const Value& args) {
  // printf-style conversions as Python's str % does them: flags -+ 0#, width, precision,
  // and s r d i f F e E g G x X o c.
  ValueList list = args.is_tuple() ? args.as_list() : ValueList{args};
  size_t next = 0;
  std::string out;
  for (size_t i = 0; i < fmt.size(); ++i) {
    if (fmt[i] != '%') {
      out += fmt[i];
      continue;
    }
    size_t spec_start = i;
    if (++i >= fmt.size()) fail("incomplete format");
    if (fmt[i] == '%') {
      out += '%';
      continue;
    }
    while (i < fmt.size() && std::string_view("-+ 0#").find(fmt[i]) != std::string_view::npos) ++i;
    while (i < fmt.size() && fmt[i] >= '0' && fmt[i] <= '9') ++i;
    if (i < fmt.size() && fmt[i] == '.') {
      ++i;
      while (i < fmt.size() && fmt[i] >= '0' && fmt[i] <= '9') ++i;
    }
    if (i >= fmt.size()) fail("incomplete format");
    char conv = fmt[i];
    std::string spec = fmt.substr(spec_start, i - spec_start);  // "%-5.2" without the conversion
    if (next >= list.size()) fail("not enough arguments for format string");
    const Value& v = list[next++];
    char buf[512];
    if (conv == 's' || conv == 'r') {
      std::string text = conv == 's' ? v.str() : v.repr();
      std::snprintf(buf, sizeof buf, (spec + "s").c_str(), "");  // width of an empty field
      size_t width = std::strlen(buf);
      bool left = spec.find('-') != std::string::npos;
      size_t n = utf8_chars(text).size();
      std::string pad = n < width ? std::string(width - n, ' ') : "";
      out += left ? text + pad : pad + text;
    } else if (std::string_view("diouxXc").find(conv) != std::string_view::npos) {
      if (!v.is_number()) fail(std::string("%") + conv + " format: a number is required, not " + v.type_name());
      long long x = v.is_float() ? static_cast<long long>(v.as_double()) : v.as_int();
      if (conv == 'c') {
        unicode::append_utf8(out, static_cast<uint32_t>(x));
        continue;
      }
      char c = conv == 'i' || conv == 'u' ? 'd' : conv;
      std::snprintf(buf, sizeof buf, (spec + "ll" + c).c_str(), x);
      out += buf;
    } else if (std::string_view("fFeEgG").find(conv) != std::string_view::npos) {
      if (!v.is_number()) fail(std::string("%") + conv + " format: a number is required, not " + v.type_name());
      std::snprintf(buf, sizeof buf, (spec + conv).c_str(), v.as_double());
      out += buf;
    } else {
      fail(std::string("unsupported format character '") + conv + "'");
    }
  }
  if (next < list.size() && args.is_tuple()) fail("not all arguments converted during string formatting");
  return out;
}

}  // namespace dsv3::jinja
