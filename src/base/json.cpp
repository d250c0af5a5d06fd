#include "base/json.h"

#include <set>
#include <vector>

namespace dsv3 {

int json_nesting_depth(std::string_view text, int stop_at) {
  int depth = 0, max_depth = 0;
  bool in_string = false;
  for (size_t i = 0; i < text.size(); ++i) {
    char c = text[i];
    if (in_string) {
      if (c == '\\') ++i;
      else if (c == '"') in_string = false;
      continue;
    }
    if (c == '"') in_string = true;
    else if (c == '[' || c == '{') {
      if (++depth > max_depth) {
        max_depth = depth;
        if (max_depth > stop_at) return max_depth;
      }
    } else if (c == ']' || c == '}') {
      --depth;
    }
  }
  return max_depth;
}

std::optional<size_t> find_invalid_utf8(std::string_view s) {
  const auto* p = reinterpret_cast<const unsigned char*>(s.data());
  size_t n = s.size(), i = 0;
  while (i < n) {
    unsigned char c = p[i];
    if (c < 0x80) { ++i; continue; }
    int len;
    uint32_t cp;
    if ((c & 0xE0) == 0xC0) { len = 2; cp = c & 0x1F; }
    else if ((c & 0xF0) == 0xE0) { len = 3; cp = c & 0x0F; }
    else if ((c & 0xF8) == 0xF0) { len = 4; cp = c & 0x07; }
    else return i;
    if (i + len > n) return i;
    for (int k = 1; k < len; ++k) {
      if ((p[i + k] & 0xC0) != 0x80) return i;
      cp = (cp << 6) | (p[i + k] & 0x3F);
    }
    if ((len == 2 && cp < 0x80) || (len == 3 && cp < 0x800) || (len == 4 && cp < 0x10000)) return i;
    if (cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) return i;
    i += len;
  }
  return std::nullopt;
}

namespace {

template <typename J>
Result<J> parse_impl(std::string_view text, const std::string& what, JsonLimits limits) {
  int depth = json_nesting_depth(text, limits.max_depth);
  if (depth > limits.max_depth)
    return error_f("%s: JSON nested deeper than %d levels", what.c_str(), limits.max_depth);
  // Stack of key sets, one per open object, to find duplicate keys.
  std::vector<std::set<std::string>> open_objects;
  std::string duplicate;
  typename J::parser_callback_t cb = [&](int, typename J::parse_event_t event, J& parsed) -> bool {
    using E = typename J::parse_event_t;
    if (!limits.reject_duplicate_keys) return true;
    if (event == E::object_start) {
      open_objects.emplace_back();
    } else if (event == E::object_end) {
      if (!open_objects.empty()) open_objects.pop_back();
    } else if (event == E::key && !open_objects.empty()) {
      const auto& k = parsed.template get_ref<const std::string&>();
      if (!open_objects.back().insert(k).second && duplicate.empty()) duplicate = k;
    }
    return true;
  };
  J out;
  try {
    out = J::parse(text.begin(), text.end(), cb, /*allow_exceptions=*/true, /*ignore_comments=*/false);
  } catch (const typename J::parse_error& e) {
    // e.what() reads "[json.exception.parse_error.101] parse error at line 3, column 5: ..."
    std::string msg = e.what();
    auto pos = msg.find("parse error");
    return error_f("%s: invalid JSON: %s", what.c_str(), pos == std::string::npos ? msg.c_str() : msg.c_str() + pos);
  } catch (const std::exception& e) {
    return error_f("%s: invalid JSON: %s", what.c_str(), e.what());
  }
  if (!duplicate.empty()) {
    std::string shown = duplicate.size() > 80 ? duplicate.substr(0, 80) + "..." : duplicate;
    if (find_invalid_utf8(shown)) shown = "(non-UTF-8 key)";
    return error_f("%s: duplicate key '%s'", what.c_str(), shown.c_str());
  }
  return out;
}

const char* type_name(const Json& v) {
  if (v.is_null()) return "null";
  if (v.is_boolean()) return "boolean";
  if (v.is_number_integer() || v.is_number_unsigned()) return "integer";
  if (v.is_number()) return "number";
  if (v.is_string()) return "string";
  if (v.is_array()) return "array";
  return "object";
}

}  // namespace

Result<Json> parse_json(std::string_view text, const std::string& what, JsonLimits limits) {
  return parse_impl<Json>(text, what, limits);
}

Result<OrderedJson> parse_ordered_json(std::string_view text, const std::string& what, JsonLimits limits) {
  return parse_impl<OrderedJson>(text, what, limits);
}

Result<int64_t> json_as_int(const Json& v, const std::string& name) {
  if (v.is_number_unsigned()) {
    uint64_t u = v.get<uint64_t>();
    if (u > static_cast<uint64_t>(INT64_MAX)) return error_f("field '%s': integer out of range", name.c_str());
    return static_cast<int64_t>(u);
  }
  if (v.is_number_integer()) return v.get<int64_t>();
  return error_f("field '%s': expected an integer, got %s", name.c_str(), type_name(v));
}

Result<int64_t> json_int(const Json& obj, const std::string& key) {
  auto it = obj.find(key);
  if (it == obj.end()) return error_f("missing field '%s'", key.c_str());
  return json_as_int(*it, key);
}

Result<double> json_number(const Json& obj, const std::string& key) {
  auto it = obj.find(key);
  if (it == obj.end()) return error_f("missing field '%s'", key.c_str());
  if (!it->is_number()) return error_f("field '%s': expected a number, got %s", key.c_str(), type_name(*it));
  return it->get<double>();
}

Result<std::string> json_string(const Json& obj, const std::string& key) {
  auto it = obj.find(key);
  if (it == obj.end()) return error_f("missing field '%s'", key.c_str());
  if (!it->is_string()) return error_f("field '%s': expected a string, got %s", key.c_str(), type_name(*it));
  return it->get<std::string>();
}

Result<bool> json_bool(const Json& obj, const std::string& key) {
  auto it = obj.find(key);
  if (it == obj.end()) return error_f("missing field '%s'", key.c_str());
  if (!it->is_boolean()) return error_f("field '%s': expected true or false, got %s", key.c_str(), type_name(*it));
  return it->get<bool>();
}

std::string json_snippet(const Json& v, size_t max_len) {
  std::string s = v.dump(-1, ' ', /*ensure_ascii=*/true, Json::error_handler_t::replace);
  if (s.size() > max_len) s = s.substr(0, max_len) + "...";
  return s;
}

}  // namespace dsv3
