#pragma once
// The library a template sees: filters ({{ x | tojson }}), tests ({% if x is none %}),
// attribute and item lookup with Jinja2's rules (including Python string/dict methods such
// as s.split(), d.items()), and the global functions (range, namespace, dict,
// raise_exception, strftime_now). Failures throw TemplateError.

#include <cstdint>
#include <optional>
#include <string>

#include "tokenizer/jinja/value.h"

namespace dsv3::jinja {

// Jinja2 obj.name: attribute (methods of str/dict/list) first, then item; a miss is undefined.
Value get_attribute(const Value& obj, const std::string& name);
// Jinja2 obj[key]: item first, then attribute; a miss is undefined. Negative indexes count
// from the end; strings index by code point.
Value get_item(const Value& obj, const Value& key);
// obj[start:stop:step] for lists and strings (null parts are Undefined values).
Value get_slice(const Value& obj, const Value& start, const Value& stop, const Value& step);

Value apply_filter(const std::string& name, const Value& input, CallArgs& args);
bool apply_test(const std::string& name, const Value& input, CallArgs& args);
bool has_filter(const std::string& name);
bool has_test(const std::string& name);

// The global functions, as values to put in the outermost scope.
ValueDict builtin_globals();

// Python's "x in container".
bool contains(const Value& container, const Value& item);
// The items a for loop visits (dict: keys; string: characters; undefined: nothing).
ValueList iterate(const Value& v);
// Python len(); throws for values without a length.
int64_t length_of(const Value& v);
// Python str % args (printf-style %s %d %i %f %r %%).
std::string percent_format(const std::string& fmt, const Value& args);
// Code points of a UTF-8 string, each as its own string.
std::vector<std::string> utf8_chars(const std::string& s);
// The int64 a string of decimal digits spells; nullopt when it has more than an int64 holds.
std::optional<int64_t> decimal_int64(const std::string& digits);
// Byte ranges [begin, end) of the code points of a UTF-8 string.
std::vector<std::pair<size_t, size_t>> utf8_char_ranges(const std::string& s);
// Bytes [begin, end) of string `s` as a value, its data ranges kept.
Value piece(const Value& s, size_t begin, size_t end);

}  // namespace dsv3::jinja
