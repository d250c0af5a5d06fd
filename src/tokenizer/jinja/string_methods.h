#pragma once
// Python str methods a template can call ("a,b".split(","), s.strip(), s.startswith(...)),
// with Python's semantics on code points. Part of builtins; separate for size.

#include <string>

#include "tokenizer/jinja/value.h"

namespace dsv3::jinja {

// Python's str.upper() / str.lower() on code points (ICU case mapping); bytes that are not
// UTF-8 pass through. Shared by the methods and the upper/lower filters and tests.
std::string map_case(const std::string& s, bool upper);

// The bound method `name` of string `self`, or an undefined value when str has no such method.
Value string_method(const Value& self, const std::string& name);

}  // namespace dsv3::jinja
