// Filters, tests and global functions of the Jinja engine (the part of Jinja2's library that
// chat templates use, plus HF's tojson / raise_exception / strftime_now).

#include <unicode/uchar.h>

#include <algorithm>
#include <cmath>
#include <ctime>
#include <functional>
#include <unordered_map>

#include "tokenizer/jinja/builtins.h"
#include "tokenizer/jinja/error.h"
#include "tokenizer/jinja/string_methods.h"
#include "tokenizer/unicode.h"

namespace dsv3::jinja {

namespace {

using FilterFn = std::function<Value(const Value&, CallArgs&)>;
using TestFn = std::function<bool(const Value&, CallArgs&)>;

const std::string& need_string(const Value& v, const char* what) {
  if (!v.is_string()) fail(std::string(what) + ": expected a string, got " + v.type_name());
  return v.as_string();
}

// Jinja filters that take strings accept any value through str() (undefined gives "").
std::string as_text(const Value& v) { return v.str(); }

Value attribute_path(const Value& v, const std::string& path) {
  Value cur = v;
  size_t pos = 0;
  while (pos <= path.size()) {
    size_t dot = path.find('.', pos);
    std::string part = path.substr(pos, dot == std::string::npos ? std::string::npos : dot - pos);
    bool numeric = !part.empty() && std::all_of(part.begin(), part.end(), [](char c) { return c >= '0' && c <= '9'; });
    if (cur.is_undefined()) return cur;
    // A numeric part is an index; one past int64 indexes nothing.
    const std::optional<int64_t> index = numeric ? decimal_int64(part) : std::nullopt;
    if (numeric && !index) return Value::undefined(part);
    cur = numeric ? get_item(cur, Value(*index)) : get_item(cur, Value(part));
    if (dot == std::string::npos) break;
    pos = dot + 1;
  }
  return cur;
}

// Args after the first `skip` positional ones, for select('test', arg...) style calls.
CallArgs tail_args(const CallArgs& a, size_t skip) {
  CallArgs out;
  for (size_t i = skip; i < a.positional.size(); ++i) out.positional.push_back(a.positional[i]);
  out.keyword = a.keyword;
  return out;
}

Value select_items(const Value& input, CallArgs& a, bool by_attr, bool keep_matching) {
  ValueList out;
  std::string attr = by_attr ? need_string(a.get(0, "attribute"), "selectattr") : "";
  size_t test_pos = by_attr ? 1 : 0;
  bool has_test = a.positional.size() > test_pos;
  std::string test = has_test ? need_string(a.positional[test_pos], "select") : "";
  CallArgs targs = tail_args(a, test_pos + 1);
  targs.keyword.clear();
  for (const Value& item : iterate(input)) {
    Value subject = by_attr ? attribute_path(item, attr) : item;
    bool r = has_test ? apply_test(test, subject, targs) : subject.truthy();
    if (r == keep_matching) out.push_back(item);
  }
  return Value(std::move(out));
}

bool sort_less(const Value& a, const Value& b, bool case_sensitive) {
  if (!case_sensitive && a.is_string() && b.is_string())
    return map_case(a.as_string(), false) < map_case(b.as_string(), false);
  return a.less(b);
}

// The arguments of dict() and namespace(): the items of each positional mapping, then the
// keywords; a later key replaces an earlier one.
ValueDict merged_mapping_args(const CallArgs& a, const char* fn) {
  ValueDict d;
  for (const Value& p : a.positional) {
    if (!p.is_dict()) fail(std::string(fn) + ": positional arguments must be mappings");
    d.data_keys = d.data_keys || p.as_dict().data_keys;
    for (const auto& [k, v] : p.as_dict().items) d.set(k, v);
  }
  for (const auto& [k, v] : a.keyword) d.set(k, v);
  charge_built(d.items.size() * sizeof(d.items[0]));  // dict(d, ...) in a loop copies d each time
  return d;
}

std::string html_escape(const std::string& s) {
  std::string out;
  for (char c : s) {
    switch (c) {
      case '&': out += "&amp;"; break;
      case '<': out += "&lt;"; break;
      case '>': out += "&gt;"; break;
      case '"': out += "&#34;"; break;
      case '\'': out += "&#39;"; break;
      default: out += c;
    }
  }
  return out;
}

const std::unordered_map<std::string, FilterFn>& filters() {
  static const std::unordered_map<std::string, FilterFn> table = [] {
    std::unordered_map<std::string, FilterFn> f;
    // HF's tojson: json.dumps(x, ensure_ascii=False, indent=None, separators=None, sort_keys=False).
    f["tojson"] = [](const Value& v, CallArgs& a) {
      Value::JsonFormat fmt;
      Value indent = a.get(SIZE_MAX, "indent", a.get(0, "indent", Value::none()));
      if (indent.is_int()) fmt.indent = static_cast<int>(std::clamp<int64_t>(indent.as_int(), 0, 64));
      fmt.ensure_ascii = a.get(SIZE_MAX, "ensure_ascii", Value(false)).truthy();
      fmt.sort_keys = a.get(SIZE_MAX, "sort_keys", Value(false)).truthy();
      Value seps = a.get(SIZE_MAX, "separators", Value::none());
      if (seps.is_list()) {
        if (seps.as_list().size() != 2) fail("tojson: separators must be a pair of strings");
        fmt.item_separator = need_string(seps.as_list()[0], "tojson separators");
        fmt.key_separator = need_string(seps.as_list()[1], "tojson separators");
      }
      return mark_data_from(Value(v.to_json(fmt)), {&v});
    };
    f["length"] = f["count"] = [](const Value& v, CallArgs&) { return Value(length_of(v)); };
    f["string"] = [](const Value& v, CallArgs&) { return text_of(v); };
    f["trim"] = [](const Value& v, CallArgs& a) {
      Value m = get_attribute(text_of(v), "strip");
      CallArgs sa;
      if (a.has(0, "chars")) sa.positional.push_back(a.get(0, "chars"));
      return m.as_function()(sa);
    };
    f["upper"] = [](const Value& v, CallArgs&) { return mark_data_from(Value(map_case(as_text(v), true)), {&v}); };
    f["lower"] = [](const Value& v, CallArgs&) { return mark_data_from(Value(map_case(as_text(v), false)), {&v}); };
    f["capitalize"] = [](const Value& v, CallArgs&) {
      CallArgs none;
      return get_attribute(text_of(v), "capitalize").as_function()(none);
    };
    f["title"] = [](const Value& v, CallArgs&) {
      CallArgs none;
      return get_attribute(text_of(v), "title").as_function()(none);
    };
    f["replace"] = [](const Value& v, CallArgs& a) {
      Value m = get_attribute(text_of(v), "replace");
      return m.as_function()(a);
    };
    f["default"] = f["d"] = [](const Value& v, CallArgs& a) {
      bool boolean = a.get(1, "boolean", Value(false)).truthy();
      if (v.is_undefined() || (boolean && !v.truthy())) return a.get(0, "default_value", Value(""));
      return v;
    };
    f["join"] = [](const Value& v, CallArgs& a) {
      const Value sep = a.has(0, "d") ? text_of(a.get(0, "d")) : Value("");
      Value attr = a.get(1, "attribute", Value::none());
      TextBuilder out;
      ValueList items = iterate(v);
      for (size_t i = 0; i < items.size(); ++i) {
        if (i) out.append(sep);
        out.append(attr.is_string() ? attribute_path(items[i], attr.as_string()) : items[i]);
      }
      return out.take();
    };
    f["first"] = [](const Value& v, CallArgs&) {
      ValueList items = iterate(v);
      return items.empty() ? Value::undefined("first") : items.front();
    };
    f["last"] = [](const Value& v, CallArgs&) {
      ValueList items = iterate(v);
      return items.empty() ? Value::undefined("last") : items.back();
    };
    f["list"] = [](const Value& v, CallArgs&) { return Value(iterate(v)); };
    f["reverse"] = [](const Value& v, CallArgs&) {
      if (v.is_string()) return get_slice(v, Value(), Value(), Value(int64_t{-1}));
      ValueList items = iterate(v);
      std::reverse(items.begin(), items.end());
      return Value(std::move(items));
    };
    f["unique"] = [](const Value& v, CallArgs&) {
      ValueList out;
      for (const Value& item : iterate(v))
        if (std::none_of(out.begin(), out.end(), [&](const Value& o) { return o.equals(item); })) out.push_back(item);
      return Value(std::move(out));
    };
    f["sort"] = [](const Value& v, CallArgs& a) {
      bool reverse = a.get(0, "reverse", Value(false)).truthy();
      bool case_sensitive = a.get(1, "case_sensitive", Value(false)).truthy();
      Value attr = a.get(2, "attribute", Value::none());
      ValueList items = iterate(v);
      std::stable_sort(items.begin(), items.end(), [&](const Value& x, const Value& y) {
        Value kx = attr.is_string() ? attribute_path(x, attr.as_string()) : x;
        Value ky = attr.is_string() ? attribute_path(y, attr.as_string()) : y;
        return reverse ? sort_less(ky, kx, case_sensitive) : sort_less(kx, ky, case_sensitive);
      });
      return Value(std::move(items));
    };
    f["dictsort"] = [](const Value& v, CallArgs& a) {
      if (!v.is_dict()) fail("dictsort: expected a mapping");
      bool case_sensitive = a.get(0, "case_sensitive", Value(false)).truthy();
      bool by_value = a.get(1, "by", Value("key")).str() == "value";
      bool reverse = a.get(2, "reverse", Value(false)).truthy();
      ValueList items;
      for (const auto& [k, val] : v.as_dict().items) items.push_back(Value::tuple({key_value(v.as_dict(), k), val}));
      std::stable_sort(items.begin(), items.end(), [&](const Value& x, const Value& y) {
        const Value& kx = x.as_list()[by_value ? 1 : 0];
        const Value& ky = y.as_list()[by_value ? 1 : 0];
        return reverse ? sort_less(ky, kx, case_sensitive) : sort_less(kx, ky, case_sensitive);
      });
      return Value(std::move(items));
    };
    f["items"] = [](const Value& v, CallArgs&) {
      ValueList out;
      if (v.is_undefined()) return Value(std::move(out));
      if (!v.is_dict()) fail("items: expected a mapping");
      for (const auto& [k, val] : v.as_dict().items) out.push_back(Value::tuple({key_value(v.as_dict(), k), val}));
      return Value(std::move(out));
    };
    f["map"] = [](const Value& v, CallArgs& a) {
      ValueList out;
      Value attr = a.get(SIZE_MAX, "attribute");
      if (attr.is_string()) {
        Value def = a.get(SIZE_MAX, "default");
        for (const Value& item : iterate(v)) {
          Value x = attribute_path(item, attr.as_string());
          out.push_back(x.is_undefined() && !def.is_undefined() ? def : x);
        }
        return Value(std::move(out));
      }
      if (a.positional.empty()) fail("map: needs a filter name or attribute=");
      std::string filter = need_string(a.positional[0], "map");
      CallArgs rest = tail_args(a, 1);
      for (const Value& item : iterate(v)) out.push_back(apply_filter(filter, item, rest));
      return Value(std::move(out));
    };
    f["select"] = [](const Value& v, CallArgs& a) { return select_items(v, a, false, true); };
    f["reject"] = [](const Value& v, CallArgs& a) { return select_items(v, a, false, false); };
    f["selectattr"] = [](const Value& v, CallArgs& a) { return select_items(v, a, true, true); };
    f["rejectattr"] = [](const Value& v, CallArgs& a) { return select_items(v, a, true, false); };
    f["attr"] = [](const Value& v, CallArgs& a) { return get_attribute(v, need_string(a.get(0, "name"), "attr")); };
    f["int"] = [](const Value& v, CallArgs& a) -> Value {
      Value def = a.get(0, "default", Value(int64_t{0}));
      if (v.is_int()) return Value(v.as_int());
      if (v.is_float()) return std::isfinite(v.as_double()) ? Value(static_cast<int64_t>(v.as_double())) : def;
      if (v.is_string()) {
        try {
          size_t used = 0;
          std::string s = v.as_string();
          long long x = std::stoll(s, &used, 10);
          if (used == s.size()) return Value(static_cast<int64_t>(x));
          double d = std::stod(s, &used);
          if (used == s.size() && std::isfinite(d)) return Value(static_cast<int64_t>(d));
        } catch (const std::exception&) {
        }
      }
      return def;
    };
    f["float"] = [](const Value& v, CallArgs& a) -> Value {
      Value def = a.get(0, "default", Value(0.0));
      if (v.is_number()) return Value(v.as_double());
      if (v.is_string()) {
        try {
          size_t used = 0;
          double d = std::stod(v.as_string(), &used);
          if (used == v.as_string().size()) return Value(d);
        } catch (const std::exception&) {
        }
      }
      return def;
    };
    f["abs"] = [](const Value& v, CallArgs&) -> Value {
      if (v.is_float()) return Value(std::fabs(v.as_double()));
      if (v.is_int()) return Value(v.as_int() < 0 ? -v.as_int() : v.as_int());
      fail("abs: expected a number");
    };
    f["round"] = [](const Value& v, CallArgs& a) -> Value {
      if (!v.is_number()) fail("round: expected a number");
      int64_t precision = a.get(0, "precision", Value(int64_t{0})).as_int();
      std::string method = a.get(1, "method", Value("common")).str();
      double scale = std::pow(10.0, static_cast<double>(precision));
      double x = v.as_double() * scale;
      // Python's round() (Jinja's "common") rounds halves to even, as nearbyint does.
      x = method == "ceil" ? std::ceil(x) : method == "floor" ? std::floor(x) : std::nearbyint(x);
      return Value(x / scale);
    };
    f["sum"] = [](const Value& v, CallArgs& a) -> Value {
      Value attr = a.get(SIZE_MAX, "attribute");
      Value total = a.get(1, "start", Value(int64_t{0}));
      for (const Value& item : iterate(v)) {
        Value x = attr.is_string() ? attribute_path(item, attr.as_string()) : item;
        if (!x.is_number() || !total.is_number()) fail("sum: expected numbers");
        total = total.is_float() || x.is_float() ? Value(total.as_double() + x.as_double()) : Value(total.as_int() + x.as_int());
      }
      return total;
    };
    auto minmax = [](bool want_max) {
      return [want_max](const Value& v, CallArgs& a) -> Value {
        ValueList items = iterate(v);
        if (items.empty()) return Value::undefined(want_max ? "max" : "min");
        bool case_sensitive = a.get(0, "case_sensitive", Value(false)).truthy();
        Value best = items[0];
        for (const Value& x : items)
          if (want_max ? sort_less(best, x, case_sensitive) : sort_less(x, best, case_sensitive)) best = x;
        return best;
      };
    };
    f["max"] = minmax(true);
    f["min"] = minmax(false);
    f["indent"] = [](const Value& v, CallArgs& a) {
      Value width = a.get(0, "width", Value(int64_t{4}));
      bool first = a.get(1, "first", Value(false)).truthy();
      bool blank = a.get(2, "blank", Value(false)).truthy();
      std::string pad = width.is_string() ? width.as_string() : std::string(static_cast<size_t>(std::max<int64_t>(0, width.as_int())), ' ');
      std::string s = as_text(v), out;
      size_t pos = 0;
      bool first_line = true;
      while (true) {
        size_t nl = s.find('\n', pos);
        std::string line = s.substr(pos, nl == std::string::npos ? std::string::npos : nl - pos);
        bool indent_it = first_line ? first : (blank || !line.empty());
        out += (indent_it ? pad : "") + line;
        if (nl == std::string::npos) break;
        out += '\n';
        pos = nl + 1;
        first_line = false;
      }
      return mark_data_from(Value(std::move(out)), {&v, &width});
    };
    f["escape"] = f["e"] = [](const Value& v, CallArgs&) { return mark_data_from(Value(html_escape(as_text(v))), {&v}); };
    f["safe"] = [](const Value& v, CallArgs&) { return v; };
    f["format"] = [](const Value& v, CallArgs& a) {
      const Value args = Value::tuple(a.positional);
      return mark_data_from(Value(percent_format(as_text(v), args)), {&v, &args});
    };
    f["wordcount"] = [](const Value& v, CallArgs&) {
      CallArgs none;
      return Value(length_of(get_attribute(Value(as_text(v)), "split").as_function()(none)));
    };
    return f;
  }();
  return table;
}

bool is_sequence(const Value& v) { return v.is_list() || v.is_string() || v.is_dict(); }

const std::unordered_map<std::string, TestFn>& tests() {
  static const std::unordered_map<std::string, TestFn> table = [] {
    std::unordered_map<std::string, TestFn> t;
    t["defined"] = [](const Value& v, CallArgs&) { return !v.is_undefined(); };
    t["undefined"] = [](const Value& v, CallArgs&) { return v.is_undefined(); };
    t["none"] = [](const Value& v, CallArgs&) { return v.is_none(); };
    t["boolean"] = [](const Value& v, CallArgs&) { return v.is_bool(); };
    t["true"] = [](const Value& v, CallArgs&) { return v.is_bool() && v.as_bool(); };
    t["false"] = [](const Value& v, CallArgs&) { return v.is_bool() && !v.as_bool(); };
    t["integer"] = [](const Value& v, CallArgs&) { return v.is_int() && !v.is_bool(); };
    t["float"] = [](const Value& v, CallArgs&) { return v.is_float(); };
    t["number"] = [](const Value& v, CallArgs&) { return v.is_number(); };
    t["string"] = [](const Value& v, CallArgs&) { return v.is_string(); };
    t["mapping"] = [](const Value& v, CallArgs&) { return v.is_dict(); };
    t["sequence"] = [](const Value& v, CallArgs&) { return is_sequence(v); };
    t["iterable"] = [](const Value& v, CallArgs&) { return is_sequence(v); };
    t["callable"] = [](const Value& v, CallArgs&) { return v.is_function(); };
    t["sameas"] = [](const Value& v, CallArgs& a) {
      Value o = a.get(0, "other");
      if (v.kind() != o.kind()) return false;
      if (v.is_none() || v.is_undefined()) return true;
      if (v.is_bool()) return v.as_bool() == o.as_bool();
      return v.equals(o);
    };
    t["eq"] = t["equalto"] = t["=="] = [](const Value& v, CallArgs& a) { return v.equals(a.get(0, "other")); };
    t["ne"] = t["!="] = [](const Value& v, CallArgs& a) { return !v.equals(a.get(0, "other")); };
    t["lt"] = t["lessthan"] = t["<"] = [](const Value& v, CallArgs& a) { return v.less(a.get(0, "other")); };
    t["gt"] = t["greaterthan"] = t[">"] = [](const Value& v, CallArgs& a) { return a.get(0, "other").less(v); };
    t["le"] = t["<="] = [](const Value& v, CallArgs& a) { return !a.get(0, "other").less(v); };
    t["ge"] = t[">="] = [](const Value& v, CallArgs& a) { return !v.less(a.get(0, "other")); };
    t["in"] = [](const Value& v, CallArgs& a) { return contains(a.get(0, "seq"), v); };
    t["even"] = [](const Value& v, CallArgs&) {
      if (!v.is_int()) fail("even: expected an integer");
      return v.as_int() % 2 == 0;
    };
    t["odd"] = [](const Value& v, CallArgs&) {
      if (!v.is_int()) fail("odd: expected an integer");
      return v.as_int() % 2 != 0;
    };
    t["divisibleby"] = [](const Value& v, CallArgs& a) {
      Value n = a.get(0, "num");
      if (!v.is_int() || !n.is_int() || n.as_int() == 0) fail("divisibleby: expected non-zero integers");
      return v.as_int() % n.as_int() == 0;
    };
    t["lower"] = [](const Value& v, CallArgs&) { return v.is_string() && map_case(v.as_string(), false) == v.as_string(); };
    t["upper"] = [](const Value& v, CallArgs&) { return v.is_string() && map_case(v.as_string(), true) == v.as_string(); };
    t["escaped"] = [](const Value&, CallArgs&) { return false; };
    t["filter"] = [](const Value& v, CallArgs&) { return v.is_string() && has_filter(v.as_string()); };
    t["test"] = [](const Value& v, CallArgs&) { return v.is_string() && has_test(v.as_string()); };
    return t;
  }();
  return table;
}

}  // namespace

bool has_filter(const std::string& name) { return filters().count(name) > 0; }
bool has_test(const std::string& name) { return tests().count(name) > 0; }

Value apply_filter(const std::string& name, const Value& input, CallArgs& args) {
  auto it = filters().find(name);
  if (it == filters().end()) fail("no filter named '" + name + "'");
  return it->second(input, args);
}

bool apply_test(const std::string& name, const Value& input, CallArgs& args) {
  auto it = tests().find(name);
  if (it == tests().end()) fail("no test named '" + name + "'");
  return it->second(input, args);
}

ValueDict builtin_globals() {
  ValueDict g;
  g.set("range", Value::function("range", [](CallArgs& a) {
    if (a.positional.empty() || a.positional.size() > 3) fail("range expects 1 to 3 integer arguments");
    for (const Value& v : a.positional)
      if (!v.is_int()) fail("range: arguments must be integers");
    int64_t start = 0, stop, step = 1;
    if (a.positional.size() == 1) stop = a.positional[0].as_int();
    else start = a.positional[0].as_int(), stop = a.positional[1].as_int();
    if (a.positional.size() == 3) step = a.positional[2].as_int();
    if (step == 0) fail("range: step must not be zero");
    ValueList out;
    for (int64_t i = start; step > 0 ? i < stop : i > stop; i += step) {
      if (out.size() >= 1'000'000 || (out.size() + 1) * sizeof(Value) > max_value_bytes()) fail("range: too many items");
      out.emplace_back(i);
    }
    return Value(std::move(out));
  }));
  g.set("namespace", Value::function("namespace", [](CallArgs& a) {
    return Value::make_namespace(merged_mapping_args(a, "namespace"));
  }));
  g.set("dict", Value::function("dict", [](CallArgs& a) { return Value(merged_mapping_args(a, "dict")); }));
  g.set("raise_exception", Value::function("raise_exception", [](CallArgs& a) -> Value {
    fail("template raised an exception: " + a.get(0, "message", Value("")).str());
  }));
  g.set("strftime_now", Value::function("strftime_now", [](CallArgs& a) {
    std::string fmt = need_string(a.get(0, "format"), "strftime_now");
    std::time_t now = std::time(nullptr);
    std::tm tm{};
    localtime_r(&now, &tm);
    char buf[256];
    size_t n = std::strftime(buf, sizeof buf, fmt.c_str(), &tm);
    return Value(std::string(buf, n));
  }));
  return g;
}

}  // namespace dsv3::jinja
