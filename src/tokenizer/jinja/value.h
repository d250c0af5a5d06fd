#pragma once
// Values of the Jinja engine, with Python's semantics where templates can see them: truthiness,
// str() and repr() spellings (True, None, 1.0, ['a']), == across types, ordering, and
// json.dumps for the tojson filter (as HF's apply_chat_template defines it: ensure_ascii=False,
// keys in insertion order, ", " and ": " separators).
//
// Lists and dicts are shared and immutable once built (HF renders in an immutable sandbox);
// a namespace() is the one mutable object, shared by reference like in Python.
//
// A string knows which of its bytes came from the caller's data rather than the template
// (text.h): from_json(..., data=true) marks every string and key of a request's messages.

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "base/json.h"
#include "tokenizer/jinja/text.h"

namespace dsv3::jinja {

class Value;
struct CallArgs;
using ValueList = std::vector<Value>;

// Ordered string-keyed map (Python dicts keep insertion order; JSON keys are strings).
struct ValueDict {
  std::vector<std::pair<std::string, Value>> items;
  bool data_keys = false;  // the keys came from the caller's data (see text.h)
  const Value* find(std::string_view key) const;
  Value* find(std::string_view key);
  void set(const std::string& key, Value v);
};

using Function = std::function<Value(CallArgs&)>;

class Value {
 public:
  enum class Kind { kUndefined, kNone, kBool, kInt, kFloat, kString, kList, kDict, kNamespace, kFunction };

  Value() = default;  // undefined
  static Value undefined(std::string name = {}) {
    Value v;
    v.str_ = std::make_shared<const std::string>(std::move(name));
    return v;
  }
  static Value none() { return Value(Kind::kNone); }
  Value(bool b) : kind_(Kind::kBool), int_(b) {}  // NOLINT
  Value(int64_t i) : kind_(Kind::kInt), int_(i) {}  // NOLINT
  Value(int i) : kind_(Kind::kInt), int_(i) {}  // NOLINT
  Value(double d) : kind_(Kind::kFloat), float_(d) {}  // NOLINT
  // Strings and lists count against the running render's budget (text.h).
  Value(std::string s);  // NOLINT: the template's own text
  Value(const char* s) : Value(std::string(s)) {}  // NOLINT
  Value(ValueList list);  // NOLINT
  // A string with the byte ranges that came from the caller's data.
  static Value string_with_data(std::string s, DataSpans spans);
  // A string that came whole from the caller's data.
  static Value data_string(std::string s);
  Value(ValueDict dict) : kind_(Kind::kDict), dict_(std::make_shared<ValueDict>(std::move(dict))) {}  // NOLINT
  // A Python tuple: a list that prints as (a, b).
  static Value tuple(ValueList items) {
    Value v(std::move(items));
    v.tuple_ = true;
    return v;
  }
  static Value make_namespace(ValueDict attrs) {
    Value v(std::move(attrs));
    v.kind_ = Kind::kNamespace;
    return v;
  }
  static Value function(std::string name, Function f) {
    Value v(Kind::kFunction);
    v.str_ = std::make_shared<const std::string>(std::move(name));
    v.fn_ = std::make_shared<const Function>(std::move(f));
    return v;
  }
  // `data`: the strings and keys are the caller's data, not template text.
  static Value from_json(const Json& j, bool data = false);
  static Value from_json(const OrderedJson& j, bool data = false);

  Kind kind() const { return kind_; }
  bool is_undefined() const { return kind_ == Kind::kUndefined; }
  bool is_none() const { return kind_ == Kind::kNone; }
  bool is_bool() const { return kind_ == Kind::kBool; }
  bool is_int() const { return kind_ == Kind::kInt || kind_ == Kind::kBool; }  // Python: bool is an int
  bool is_number() const { return is_int() || kind_ == Kind::kFloat; }
  bool is_float() const { return kind_ == Kind::kFloat; }
  bool is_string() const { return kind_ == Kind::kString; }
  bool is_list() const { return kind_ == Kind::kList; }
  bool is_tuple() const { return kind_ == Kind::kList && tuple_; }
  bool is_dict() const { return kind_ == Kind::kDict || kind_ == Kind::kNamespace; }
  bool is_namespace() const { return kind_ == Kind::kNamespace; }
  bool is_function() const { return kind_ == Kind::kFunction; }

  bool as_bool() const { return int_ != 0; }
  int64_t as_int() const { return int_; }
  double as_double() const { return kind_ == Kind::kFloat ? float_ : static_cast<double>(int_); }
  const std::string& as_string() const { return *str_; }
  // The data ranges of a string; null when it is all the template's own text.
  const DataSpans* data_spans() const { return spans_.get(); }
  // This string, all of it data.
  Value as_data() const;
  const ValueList& as_list() const { return *list_; }
  const ValueDict& as_dict() const { return *dict_; }
  ValueDict& namespace_attrs() const { return *dict_; }  // the namespace's shared, mutable attributes
  const Function& as_function() const { return *fn_; }
  const std::string& function_name() const { return *str_; }
  // Name of the variable an undefined value stands for ("" when unknown).
  std::string undefined_name() const { return str_ ? *str_ : std::string(); }

  bool truthy() const;
  // Python str(): what {{ value }} prints (undefined prints nothing).
  std::string str() const;
  // Python repr(), used inside list/dict str().
  std::string repr() const;
  // json.dumps(value, ensure_ascii, indent (<0: none), separators, sort_keys) as HF's tojson
  // calls it (ensure_ascii=False by default; separators default to ", " / ": ", or "," / ": "
  // with an indent).
  struct JsonFormat {
    int indent = -1;
    bool sort_keys = false;
    bool ensure_ascii = false;
    std::optional<std::string> item_separator;  // none: Python's default for the indent
    std::string key_separator = ": ";
  };
  std::string to_json(const JsonFormat& format) const;
  std::string to_json() const { return to_json(JsonFormat{}); }
  // Python ==.
  bool equals(const Value& other) const;
  // Python <, for numbers, strings and lists; throws a template error for other pairs.
  bool less(const Value& other) const;
  std::string type_name() const;

 private:
  explicit Value(Kind k) : kind_(k) {}
  Kind kind_ = Kind::kUndefined;
  bool tuple_ = false;
  int64_t int_ = 0;
  double float_ = 0;
  std::shared_ptr<const std::string> str_;
  std::shared_ptr<const DataSpans> spans_;  // strings only; null: no data
  std::shared_ptr<const ValueList> list_;
  std::shared_ptr<ValueDict> dict_;
  std::shared_ptr<const Function> fn_;
};

// Arguments of a call: positional then keyword, as written.
struct CallArgs {
  std::vector<Value> positional;
  std::vector<std::pair<std::string, Value>> keyword;
  // Argument `index` or keyword `name`, else `fallback`.
  Value get(size_t index, const char* name, Value fallback = Value()) const;
  bool has(size_t index, const char* name) const;
};

// A key of `d` as a value (data when the dict's keys are).
Value key_value(const ValueDict& d, const std::string& key);

// Python float repr (shortest round trip: 1.0, 0.1, 1e-05, 1e+16).
std::string python_float_repr(double d);
// Python's str.isspace() for one code point.
bool python_isspace(uint32_t cp);

}  // namespace dsv3::jinja
