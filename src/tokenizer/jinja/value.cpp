#include "tokenizer/jinja/value.h"

#include <algorithm>
#include <charconv>
#include <cmath>
#include <cstdio>

#include "tokenizer/jinja/error.h"
#include "tokenizer/unicode.h"

namespace dsv3::jinja {

const Value* ValueDict::find(std::string_view key) const {
  for (const auto& [k, v] : items)
    if (k == key) return &v;
  return nullptr;
}

Value* ValueDict::find(std::string_view key) {
  for (auto& [k, v] : items)
    if (k == key) return &v;
  return nullptr;
}

void ValueDict::set(const std::string& key, Value v) {
  if (Value* slot = find(key)) *slot = std::move(v);
  else items.emplace_back(key, std::move(v));
}

Value::Value(std::string s) : kind_(Kind::kString) {
  charge_built(s.size());
  str_ = std::make_shared<const std::string>(std::move(s));
}

Value::Value(ValueList list) : kind_(Kind::kList) {
  charge_built(list.size() * sizeof(Value));
  list_ = std::make_shared<const ValueList>(std::move(list));
}

Value Value::string_with_data(std::string s, DataSpans spans) {
  Value v(std::move(s));
  if (!spans.empty()) v.spans_ = std::make_shared<const DataSpans>(std::move(spans));
  return v;
}

Value Value::data_string(std::string s) {
  const size_t n = s.size();
  return string_with_data(std::move(s), n ? DataSpans{{0, n}} : DataSpans{});
}

Value Value::as_data() const {
  Value v = *this;
  if (!str_->empty()) v.spans_ = std::make_shared<const DataSpans>(DataSpans{{0, str_->size()}});
  return v;
}

Value key_value(const ValueDict& d, const std::string& key) {
  return d.data_keys ? Value::data_string(key) : Value(key);
}

namespace {

template <typename J>
Value from_json_impl(const J& j, bool data, int depth = 0) {
  if (depth > 256) fail("template variables nested deeper than 256 levels");
  switch (j.type()) {
    case nlohmann::json::value_t::null: return Value::none();
    case nlohmann::json::value_t::boolean: return Value(j.template get<bool>());
    case nlohmann::json::value_t::number_integer: return Value(j.template get<int64_t>());
    case nlohmann::json::value_t::number_unsigned: {
      auto u = j.template get<uint64_t>();
      if (u > static_cast<uint64_t>(INT64_MAX)) return Value(static_cast<double>(u));
      return Value(static_cast<int64_t>(u));
    }
    case nlohmann::json::value_t::number_float: return Value(j.template get<double>());
    case nlohmann::json::value_t::string:
      return data ? Value::data_string(j.template get<std::string>()) : Value(j.template get<std::string>());
    case nlohmann::json::value_t::array: {
      ValueList list;
      list.reserve(j.size());
      for (const auto& e : j) list.push_back(from_json_impl(e, data, depth + 1));
      return Value(std::move(list));
    }
    case nlohmann::json::value_t::object: {
      ValueDict dict;
      dict.data_keys = data;
      dict.items.reserve(j.size());
      for (auto it = j.begin(); it != j.end(); ++it)
        dict.items.emplace_back(it.key(), from_json_impl(it.value(), data, depth + 1));
      return Value(std::move(dict));
    }
    default: return Value::none();
  }
}

void append_json_string(std::string& out, const std::string& s, bool ensure_ascii) {
  out += '"';
  for (size_t pos = 0; pos < s.size(); ++pos) {
    auto c = static_cast<unsigned char>(s[pos]);
    if (ensure_ascii && c >= 0x80) {
      auto d = unicode::decode_utf8(s, pos);
      uint32_t cp = d.cp == unicode::kInvalid ? 0xFFFD : d.cp;
      if (cp >= 0x10000) {
        cp -= 0x10000;
        out += str_f("\\u%04x\\u%04x", 0xD800 + (cp >> 10), 0xDC00 + (cp & 0x3FF));
      } else {
        out += str_f("\\u%04x", cp);
      }
      pos += d.len - 1;
      continue;
    }
    switch (c) {
      case '"': out += "\\\""; break;
      case '\\': out += "\\\\"; break;
      case '\n': out += "\\n"; break;
      case '\r': out += "\\r"; break;
      case '\t': out += "\\t"; break;
      case '\b': out += "\\b"; break;
      case '\f': out += "\\f"; break;
      default:
        if (c < 0x20 || c == 0x7F) {
          // Python escapes only < 0x20 with ensure_ascii=False; 0x7F is kept as is.
          if (c == 0x7F) out += static_cast<char>(c);
          else out += str_f("\\u%04x", c);
        } else {
          out += static_cast<char>(c);
        }
    }
  }
  out += '"';
}

void to_json_impl(const Value& v, std::string& out, const Value::JsonFormat& f, int depth) {
  if (depth > 512) fail("tojson: value nested too deeply");
  int indent = f.indent;
  bool sort_keys = f.sort_keys;
  const std::string item_sep = f.item_separator ? *f.item_separator : indent < 0 ? ", " : ",";
  auto newline = [&](int d) {
    if (indent < 0) return;
    out += '\n';
    out.append(static_cast<size_t>(indent * d), ' ');
  };
  switch (v.kind()) {
    case Value::Kind::kUndefined: fail("tojson: cannot serialise an undefined value");
    case Value::Kind::kNone: out += "null"; return;
    case Value::Kind::kBool: out += v.as_bool() ? "true" : "false"; return;
    case Value::Kind::kInt: out += std::to_string(v.as_int()); return;
    case Value::Kind::kFloat: {
      double d = v.as_double();
      if (std::isnan(d)) out += "NaN";
      else if (std::isinf(d)) out += d > 0 ? "Infinity" : "-Infinity";
      else out += python_float_repr(d);
      return;
    }
    case Value::Kind::kString: append_json_string(out, v.as_string(), f.ensure_ascii); return;
    case Value::Kind::kList: {
      const auto& list = v.as_list();
      if (list.empty()) {
        out += "[]";
        return;
      }
      out += '[';
      for (size_t i = 0; i < list.size(); ++i) {
        if (i) out += item_sep;
        newline(depth + 1);
        to_json_impl(list[i], out, f, depth + 1);
      }
      newline(depth);
      out += ']';
      return;
    }
    case Value::Kind::kDict:
    case Value::Kind::kNamespace: {
      std::vector<const std::pair<std::string, Value>*> items;
      for (const auto& kv : v.as_dict().items) items.push_back(&kv);
      if (sort_keys) std::stable_sort(items.begin(), items.end(), [](auto* a, auto* b) { return a->first < b->first; });
      if (items.empty()) {
        out += "{}";
        return;
      }
      out += '{';
      for (size_t i = 0; i < items.size(); ++i) {
        if (i) out += item_sep;
        newline(depth + 1);
        append_json_string(out, items[i]->first, f.ensure_ascii);
        out += f.key_separator;
        to_json_impl(items[i]->second, out, f, depth + 1);
      }
      newline(depth);
      out += '}';
      return;
    }
    case Value::Kind::kFunction: fail("tojson: cannot serialise a function");
  }
}

std::string repr_string(const std::string& s) {
  bool has_single = s.find('\'') != std::string::npos, has_double = s.find('"') != std::string::npos;
  char q = has_single && !has_double ? '"' : '\'';
  std::string out(1, q);
  size_t pos = 0;
  while (pos < s.size()) {
    auto d = unicode::decode_utf8(s, pos);
    uint32_t c = d.cp;
    if (c == static_cast<uint32_t>(q) || c == '\\') {
      out += '\\';
      out += static_cast<char>(c);
    } else if (c == '\n') out += "\\n";
    else if (c == '\r') out += "\\r";
    else if (c == '\t') out += "\\t";
    else if (c == unicode::kInvalid) out += str_f("\\x%02x", static_cast<unsigned char>(s[pos]));
    else if (c < 0x20 || c == 0x7F) out += str_f("\\x%02x", c);
    else out.append(s, pos, d.len);
    pos += d.len;
  }
  out += q;
  return out;
}

}  // namespace

Value Value::from_json(const Json& j, bool data) { return from_json_impl(j, data); }
Value Value::from_json(const OrderedJson& j, bool data) { return from_json_impl(j, data); }

bool Value::truthy() const {
  switch (kind_) {
    case Kind::kUndefined:
    case Kind::kNone: return false;
    case Kind::kBool:
    case Kind::kInt: return int_ != 0;
    case Kind::kFloat: return float_ != 0.0;
    case Kind::kString: return !str_->empty();
    case Kind::kList: return !list_->empty();
    case Kind::kDict: return !dict_->items.empty();
    case Kind::kNamespace:
    case Kind::kFunction: return true;
  }
  return false;
}

std::string python_float_repr(double d) {
  if (std::isnan(d)) return "nan";
  if (std::isinf(d)) return d > 0 ? "inf" : "-inf";
  if (d == 0) return std::signbit(d) ? "-0.0" : "0.0";
  // Shortest round-trip digits, then Python's layout: scientific when exp < -4 or >= 16.
  char buf[64];
  auto res = std::to_chars(buf, buf + sizeof buf, d, std::chars_format::scientific);
  std::string sci(buf, res.ptr);
  size_t e = sci.find('e');
  std::string mant = sci.substr(0, e);
  int exp = std::stoi(sci.substr(e + 1));
  bool neg = mant[0] == '-';
  if (neg) mant.erase(0, 1);
  std::string digits;
  for (char c : mant)
    if (c != '.') digits += c;
  std::string out = neg ? "-" : "";
  if (exp < -4 || exp >= 16) {
    out += digits.substr(0, 1);
    if (digits.size() > 1) out += "." + digits.substr(1);
    out += str_f("e%c%02d", exp < 0 ? '-' : '+', std::abs(exp));
  } else if (exp < 0) {
    out += "0." + std::string(static_cast<size_t>(-exp - 1), '0') + digits;
  } else {
    auto int_len = static_cast<size_t>(exp + 1);
    if (digits.size() <= int_len) out += digits + std::string(int_len - digits.size(), '0') + ".0";
    else out += digits.substr(0, int_len) + "." + digits.substr(int_len);
  }
  return out;
}

bool python_isspace(uint32_t cp) {
  return (cp >= 0x09 && cp <= 0x0D) || (cp >= 0x1C && cp <= 0x20) || cp == 0x85 || cp == 0xA0 || cp == 0x1680 ||
         (cp >= 0x2000 && cp <= 0x200A) || cp == 0x2028 || cp == 0x2029 || cp == 0x202F || cp == 0x205F || cp == 0x3000;
}

std::string Value::str() const {
  switch (kind_) {
    case Kind::kUndefined: return "";
    case Kind::kNone: return "None";
    case Kind::kBool: return int_ ? "True" : "False";
    case Kind::kInt: return std::to_string(int_);
    case Kind::kFloat: return python_float_repr(float_);
    case Kind::kString: return *str_;
    case Kind::kList:
    case Kind::kDict: return repr();
    case Kind::kNamespace: return "<Namespace " + repr() + ">";
    case Kind::kFunction: return "<function " + *str_ + ">";
  }
  return "";
}

std::string Value::repr() const {
  switch (kind_) {
    case Kind::kString: return repr_string(*str_);
    case Kind::kList: {
      std::string out = tuple_ ? "(" : "[";
      for (size_t i = 0; i < list_->size(); ++i) out += (i ? ", " : "") + (*list_)[i].repr();
      if (tuple_ && list_->size() == 1) out += ",";
      return out + (tuple_ ? ")" : "]");
    }
    case Kind::kDict:
    case Kind::kNamespace: {
      std::string out = "{";
      for (size_t i = 0; i < dict_->items.size(); ++i)
        out += (i ? ", " : "") + repr_string(dict_->items[i].first) + ": " + dict_->items[i].second.repr();
      return out + "}";
    }
    default: return str();
  }
}

std::string Value::to_json(const JsonFormat& format) const {
  std::string out;
  to_json_impl(*this, out, format, 0);
  return out;
}

bool Value::equals(const Value& o) const {
  if (is_number() && o.is_number()) {
    if (kind_ == Kind::kFloat || o.kind_ == Kind::kFloat) return as_double() == o.as_double();
    return int_ == o.int_;
  }
  if (kind_ != o.kind_) return false;
  switch (kind_) {
    case Kind::kUndefined:
    case Kind::kNone: return true;
    case Kind::kString: return *str_ == *o.str_;
    case Kind::kList: {
      if (tuple_ != o.tuple_ || list_->size() != o.list_->size()) return false;
      for (size_t i = 0; i < list_->size(); ++i)
        if (!(*list_)[i].equals((*o.list_)[i])) return false;
      return true;
    }
    case Kind::kDict: {
      if (dict_->items.size() != o.dict_->items.size()) return false;
      for (const auto& [k, v] : dict_->items) {
        const Value* other = o.dict_->find(k);
        if (!other || !v.equals(*other)) return false;
      }
      return true;
    }
    case Kind::kNamespace: return dict_ == o.dict_;
    case Kind::kFunction: return fn_ == o.fn_;
    default: return false;
  }
}

bool Value::less(const Value& o) const {
  if (is_number() && o.is_number()) {
    if (kind_ == Kind::kFloat || o.kind_ == Kind::kFloat) return as_double() < o.as_double();
    return int_ < o.int_;
  }
  if (is_string() && o.is_string()) return *str_ < *o.str_;  // UTF-8 byte order is code point order
  if (is_list() && o.is_list()) {
    const auto &a = *list_, &b = *o.list_;
    for (size_t i = 0; i < a.size() && i < b.size(); ++i) {
      if (a[i].less(b[i])) return true;
      if (b[i].less(a[i])) return false;
    }
    return a.size() < b.size();
  }
  fail("'<' not supported between instances of '" + type_name() + "' and '" + o.type_name() + "'");
}

std::string Value::type_name() const {
  switch (kind_) {
    case Kind::kUndefined: return "Undefined";
    case Kind::kNone: return "NoneType";
    case Kind::kBool: return "bool";
    case Kind::kInt: return "int";
    case Kind::kFloat: return "float";
    case Kind::kString: return "str";
    case Kind::kList: return "list";
    case Kind::kDict: return "dict";
    case Kind::kNamespace: return "Namespace";
    case Kind::kFunction: return "function";
  }
  return "?";
}

Value CallArgs::get(size_t index, const char* name, Value fallback) const {
  if (index < positional.size()) return positional[index];
  for (const auto& [k, v] : keyword)
    if (k == name) return v;
  return fallback;
}

bool CallArgs::has(size_t index, const char* name) const {
  if (index < positional.size()) return true;
  for (const auto& [k, v] : keyword)
    if (k == name) return true;
  return false;
}

}  // namespace dsv3::jinja
