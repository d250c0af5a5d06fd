#pragma once
// JSON parsing with the limits untrusted files and requests need: a nesting-depth limit
// checked before the parser recurses (no stack overflow on 100k '['), optional rejection of
// duplicate keys, and errors that say where (line:column from the parser).

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include <nlohmann/json.hpp>

#include "base/result.h"

namespace dsv3 {

using Json = nlohmann::json;
// Objects keep their keys in file order (used where order matters, e.g. writing configs back).
using OrderedJson = nlohmann::ordered_json;

struct JsonLimits {
  int max_depth = 128;
  bool reject_duplicate_keys = true;
};

// Parses `text`; `what` names the source (a file path, "request body") in errors.
Result<Json> parse_json(std::string_view text, const std::string& what, JsonLimits limits = {});
Result<OrderedJson> parse_ordered_json(std::string_view text, const std::string& what, JsonLimits limits = {});

// Deepest nesting of arrays/objects in `text`, scanning no further than depth `stop_at`.
int json_nesting_depth(std::string_view text, int stop_at);

// Byte offset of the first invalid UTF-8 sequence in `s`, or nullopt when `s` is valid UTF-8
// (no overlongs, no surrogates, nothing above U+10FFFF).
std::optional<size_t> find_invalid_utf8(std::string_view s);

// Typed field access with errors that name the field, e.g. "field 'hidden_size': expected an
// integer, got string". `where` prefixes the message (e.g. the file).
Result<int64_t> json_int(const Json& obj, const std::string& key);
Result<double> json_number(const Json& obj, const std::string& key);
Result<std::string> json_string(const Json& obj, const std::string& key);
Result<bool> json_bool(const Json& obj, const std::string& key);
// Value of an integer-typed JSON node (exact integral floats like 4.0 are refused too).
Result<int64_t> json_as_int(const Json& v, const std::string& name);

// A short, valid-UTF-8 rendering of a user value for error messages (never unbounded).
std::string json_snippet(const Json& v, size_t max_len = 60);

}  // namespace dsv3
