#pragma once
// Python str methods a template can call ("a,b".split(","), s.strip(), s.startswith(...)),
// with Python's semantics on code points. Part of builtins; separate for size.

#include <string>

#include "tokenizer/jinja/value.h"

namespace dsv3::jinja {

// The bound method `name` of string `self`, or an undefined value when str has no such method.
Value string_method(const Value& self, const std::string& name);

}  // namespace dsv3::jinja
