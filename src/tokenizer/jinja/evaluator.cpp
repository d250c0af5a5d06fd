#include "tokenizer/jinja/evaluator.h"

#include <cmath>
#include <unordered_map>

#include "tokenizer/jinja/builtins.h"
#include "tokenizer/jinja/error.h"

namespace dsv3::jinja {

namespace {

enum class Flow { kNormal, kBreak, kContinue };

[[noreturn]] void undefined_error(const Value& v) {
  std::string name = v.undefined_name();
  fail(name.empty() ? "undefined value used" : "'" + name + "' is undefined");
}

int64_t checked_int(long double v) {
  if (v > static_cast<long double>(INT64_MAX) || v < static_cast<long double>(INT64_MIN)) fail("integer overflow");
  return static_cast<int64_t>(v);
}

Value arithmetic(const std::string& op, const Value& a, const Value& b) {
  if (a.is_undefined()) undefined_error(a);
  if (b.is_undefined()) undefined_error(b);
  if (op == "+") {
    if (a.is_string() && b.is_string()) {
      TextBuilder sum;
      sum.append(a);
      sum.append(b);
      return sum.take();
    }
    if (a.is_list() && b.is_list()) {
      ValueList out = a.as_list();
      out.insert(out.end(), b.as_list().begin(), b.as_list().end());
      return Value(std::move(out));
    }
  }
  if (op == "*") {
    const Value* seq = a.is_string() || a.is_list() ? &a : b.is_string() || b.is_list() ? &b : nullptr;
    const Value* count = seq == &a ? &b : &a;
    if (seq && count->is_int() && !count->is_float()) {
      int64_t n = std::max<int64_t>(0, count->as_int());
      int64_t unit = seq->is_string() ? static_cast<int64_t>(seq->as_string().size()) : static_cast<int64_t>(seq->as_list().size());
      if (unit > 0 && n > static_cast<int64_t>(max_value_bytes() / static_cast<size_t>(unit) / (seq->is_string() ? 1 : sizeof(Value))))
        fail("repetition result too large");
      if (seq->is_string()) {
        TextBuilder out;
        for (int64_t i = 0; i < n; ++i) out.append(*seq);
        return out.take();
      }
      ValueList out;
      for (int64_t i = 0; i < n; ++i) out.insert(out.end(), seq->as_list().begin(), seq->as_list().end());
      return Value(std::move(out));
    }
  }
  if (op == "%" && a.is_string()) return mark_data_from(Value(percent_format(a.as_string(), b)), {&a, &b});
  if (!a.is_number() || !b.is_number())
    fail("unsupported operand type(s) for " + op + ": '" + a.type_name() + "' and '" + b.type_name() + "'");
  bool ints = !a.is_float() && !b.is_float();
  if (op == "/") {
    if (b.as_double() == 0) fail("division by zero");
    return Value(a.as_double() / b.as_double());
  }
  if (ints) {
    int64_t x = a.as_int(), y = b.as_int(), r = 0;
    if (op == "+") {
      if (__builtin_add_overflow(x, y, &r)) fail("integer overflow");
      return Value(r);
    }
    if (op == "-") {
      if (__builtin_sub_overflow(x, y, &r)) fail("integer overflow");
      return Value(r);
    }
    if (op == "*") {
      if (__builtin_mul_overflow(x, y, &r)) fail("integer overflow");
      return Value(r);
    }
    if (op == "//" || op == "%") {
      if (y == 0) fail("integer division or modulo by zero");
      if (x == INT64_MIN && y == -1) fail("integer overflow");
      int64_t q = x / y, m = x % y;
      if (m != 0 && ((m < 0) != (y < 0))) --q, m += y;  // Python floors
      return op == "//" ? Value(q) : Value(m);
    }
    if (op == "**") {
      if (y < 0) return Value(std::pow(static_cast<double>(x), static_cast<double>(y)));
      return Value(checked_int(std::pow(static_cast<long double>(x), static_cast<long double>(y))));
    }
  }
  double x = a.as_double(), y = b.as_double();
  if (op == "+") return Value(x + y);
  if (op == "-") return Value(x - y);
  if (op == "*") return Value(x * y);
  if (op == "//" || op == "%") {
    if (y == 0) fail("float division or modulo by zero");
    double q = std::floor(x / y);
    return op == "//" ? Value(q) : Value(x - q * y);
  }
  if (op == "**") return Value(std::pow(x, y));
  fail("unknown operator " + op);
}

bool compare(const std::string& op, const Value& a, const Value& b) {
  if (op == "==") return a.equals(b);
  if (op == "!=") return !a.equals(b);
  if (op == "in") return contains(b, a);
  if (op == "not in") return !contains(b, a);
  if (a.is_undefined()) undefined_error(a);
  if (b.is_undefined()) undefined_error(b);
  if (op == "<") return a.less(b);
  if (op == ">") return b.less(a);
  if (op == "<=") return !b.less(a);
  if (op == ">=") return !a.less(b);
  fail("unknown comparison " + op);
}

class Renderer {
 public:
  Renderer(const ValueDict& globals, const RenderLimits& limits) : limits_(limits) {
    scopes_.emplace_back();
    for (const auto& [k, v] : builtin_globals().items) scopes_.back()[k] = v;
    for (const auto& [k, v] : globals.items) scopes_.back()[k] = v;
  }

  RenderedText run(const Body& body) {
    TextBuilder out(limits_.max_output_bytes, "template output");
    Flow f = render_body(body, out);
    (void)f;
    auto [text, spans] = out.release();
    return {std::move(text), std::move(spans)};
  }

 private:
  using Scope = std::unordered_map<std::string, Value>;

  Value lookup(const std::string& name) const {
    for (auto it = scopes_.rbegin(); it != scopes_.rend(); ++it) {
      auto found = it->find(name);
      if (found != it->end()) return found->second;
    }
    return Value::undefined(name);
  }
  void assign(const std::string& name, Value v) { scopes_.back()[name] = std::move(v); }

  void assign_targets(const std::vector<std::string>& targets, const Value& v) {
    if (targets.size() == 1) {
      assign(targets[0], v);
      return;
    }
    ValueList items = iterate(v);
    if (items.size() != targets.size())
      fail("cannot unpack " + std::to_string(items.size()) + " values into " + std::to_string(targets.size()) + " names");
    for (size_t i = 0; i < targets.size(); ++i) assign(targets[i], items[i]);
  }

  Flow render_body(const Body& body, TextBuilder& out) {
    for (const StmtPtr& s : body) {
      Flow f;
      try {
        f = render_stmt(*s, out);
      } catch (const OutputLimitError& e) {
        if (e.line() > 0) throw;
        throw OutputLimitError(e.what(), s->line);
      } catch (const TemplateError& e) {
        if (e.line() > 0) throw;
        throw TemplateError(e.what(), s->line);
      }
      if (f != Flow::kNormal) return f;
    }
    return Flow::kNormal;
  }

  Flow render_stmt(const Stmt& s, TextBuilder& out) {
    switch (s.kind) {
      case StmtKind::kText: out.append_template(s.text); return Flow::kNormal;
      case StmtKind::kOutput: out.append(eval(*s.expr)); return Flow::kNormal;
      case StmtKind::kIf:
        for (size_t i = 0; i < s.conditions.size(); ++i)
          if (eval(*s.conditions[i]).truthy()) return render_body(s.bodies[i], out);
        return render_body(s.else_body, out);
      case StmtKind::kFor: return render_for(s, out);
      case StmtKind::kSet: {
        Value v = eval(*s.expr);
        if (!s.attr_owner.empty()) {
          Value owner = lookup(s.attr_owner);
          if (!owner.is_namespace()) fail("cannot set attribute '" + s.attr + "' of '" + s.attr_owner + "': not a namespace");
          owner.namespace_attrs().set(s.attr, std::move(v));
        } else {
          assign_targets(s.targets, v);
        }
        return Flow::kNormal;
      }
      case StmtKind::kSetBlock: {
        TextBuilder captured;
        scopes_.emplace_back();
        render_body(s.bodies[0], captured);
        scopes_.pop_back();
        Value v = captured.take();
        if (s.filter) v = apply_filter_chain(*s.filter, v);
        assign(s.targets[0], v);
        return Flow::kNormal;
      }
      case StmtKind::kMacro: assign(s.name, make_macro(s)); return Flow::kNormal;
      case StmtKind::kFilterBlock: {
        TextBuilder captured;
        render_body(s.bodies[0], captured);
        out.append(apply_filter_chain(*s.expr, captured.take()));
        return Flow::kNormal;
      }
      case StmtKind::kBreak:
        if (loop_depth_ == 0) fail("'break' outside a loop");
        return Flow::kBreak;
      case StmtKind::kContinue:
        if (loop_depth_ == 0) fail("'continue' outside a loop");
        return Flow::kContinue;
      case StmtKind::kScope: return render_body(s.bodies[0], out);
    }
    return Flow::kNormal;
  }

  Flow render_for(const Stmt& s, TextBuilder& out) {
    Value iterable = eval(*s.expr);
    if (iterable.is_none() || iterable.is_number() || iterable.is_bool())
      fail(iterable.type_name().insert(0, 1, '\'') + "' object is not iterable");
    ValueList items = iterate(iterable);
    if (s.filter) {  // for x in xs if cond: loop.length counts the kept items
      ValueList kept;
      for (const Value& item : items) {
        scopes_.emplace_back();
        assign_targets(s.targets, item);
        bool keep = eval(*s.filter).truthy();
        scopes_.pop_back();
        if (keep) kept.push_back(item);
      }
      items = std::move(kept);
    }
    if (items.empty()) return render_body(s.else_body, out);
    auto n = static_cast<int64_t>(items.size());
    ++loop_depth_;
    for (int64_t i = 0; i < n; ++i) {
      if (++iterations_ > limits_.max_loop_iterations) fail("template loops exceed the iteration limit");
      scopes_.emplace_back();
      assign_targets(s.targets, items[static_cast<size_t>(i)]);
      ValueDict loop;
      loop.set("index", Value(i + 1));
      loop.set("index0", Value(i));
      loop.set("revindex", Value(n - i));
      loop.set("revindex0", Value(n - i - 1));
      loop.set("first", Value(i == 0));
      loop.set("last", Value(i == n - 1));
      loop.set("length", Value(n));
      loop.set("depth", Value(1));
      loop.set("depth0", Value(0));
      loop.set("previtem", i > 0 ? items[static_cast<size_t>(i - 1)] : Value::undefined("previtem"));
      loop.set("nextitem", i + 1 < n ? items[static_cast<size_t>(i + 1)] : Value::undefined("nextitem"));
      loop.set("cycle", Value::function("loop.cycle", [i](CallArgs& a) -> Value {
        if (a.positional.empty()) fail("loop.cycle needs at least one argument");
        return a.positional[static_cast<size_t>(i) % a.positional.size()];
      }));
      assign("loop", Value(std::move(loop)));
      Flow f = render_body(s.bodies[0], out);
      scopes_.pop_back();
      if (f == Flow::kBreak) break;
    }
    --loop_depth_;
    return Flow::kNormal;
  }

  Value make_macro(const Stmt& s) {
    const Stmt* macro = &s;
    return Value::function(s.name, [this, macro](CallArgs& args) -> Value {
      if (++call_depth_ > limits_.max_call_depth) fail("macro calls nested too deeply");
      if (args.positional.size() > macro->params.size()) fail("too many arguments to macro '" + macro->name + "'");
      Scope scope;
      for (size_t i = 0; i < macro->params.size(); ++i) {
        const auto& [pname, def] = macro->params[i];
        if (args.has(i, pname.c_str())) scope[pname] = args.get(i, pname.c_str());
        else scope[pname] = def ? eval(*def) : Value::undefined(pname);
      }
      scopes_.push_back(std::move(scope));
      TextBuilder captured;
      int saved_loops = loop_depth_;
      loop_depth_ = 0;
      render_body(macro->bodies[0], captured);
      loop_depth_ = saved_loops;
      scopes_.pop_back();
      --call_depth_;
      return captured.take();
    });
  }

  CallArgs eval_args(const Expr& e, size_t first_arg) {
    CallArgs args;
    for (size_t i = first_arg; i < e.args.size(); ++i) args.positional.push_back(eval(*e.args[i]));
    for (const auto& [k, v] : e.kwargs) args.keyword.emplace_back(k, eval(*v));
    return args;
  }

  // Applies a filter node chain whose innermost input is null to `input`.
  Value apply_filter_chain(const Expr& f, const Value& input) {
    Value in = f.args[0] ? apply_filter_chain(*f.args[0], input) : input;
    CallArgs args = eval_args(f, 1);
    return apply_filter(f.name, in, args);
  }

  Value eval(const Expr& e) {
    try {
      return eval_inner(e);
    } catch (const OutputLimitError& err) {
      if (err.line() > 0) throw;
      throw OutputLimitError(err.what(), e.line);
    } catch (const TemplateError& err) {
      if (err.line() > 0) throw;
      throw TemplateError(err.what(), e.line);
    }
  }

  Value eval_inner(const Expr& e) {
    switch (e.kind) {
      case ExprKind::kLiteral: return e.value;
      case ExprKind::kName: return lookup(e.name);
      case ExprKind::kList:
      case ExprKind::kTuple: {
        ValueList list;
        for (const auto& a : e.args) list.push_back(eval(*a));
        return e.kind == ExprKind::kTuple ? Value::tuple(std::move(list)) : Value(std::move(list));
      }
      case ExprKind::kDict: {
        ValueDict dict;
        for (size_t i = 0; i + 1 < e.args.size(); i += 2) {
          Value k = eval(*e.args[i]);
          if (!k.is_string()) fail("dict keys must be strings here, got " + k.type_name());
          dict.data_keys = dict.data_keys || k.data_spans();
          dict.set(k.as_string(), eval(*e.args[i + 1]));
        }
        return Value(std::move(dict));
      }
      case ExprKind::kAttr: {
        Value obj = eval(*e.args[0]);
        if (obj.is_undefined()) undefined_error(obj);
        return get_attribute(obj, e.name);
      }
      case ExprKind::kItem: {
        Value obj = eval(*e.args[0]);
        if (obj.is_undefined()) undefined_error(obj);
        return get_item(obj, eval(*e.args[1]));
      }
      case ExprKind::kSlice: {
        Value obj = eval(*e.args[0]);
        if (obj.is_undefined()) undefined_error(obj);
        auto part = [&](size_t i) { return e.args[i] ? eval(*e.args[i]) : Value(); };
        return get_slice(obj, part(1), part(2), part(3));
      }
      case ExprKind::kCall: {
        Value fn = eval(*e.args[0]);
        if (fn.is_undefined()) undefined_error(fn);
        if (!fn.is_function()) fail("'" + fn.type_name() + "' object is not callable");
        CallArgs args = eval_args(e, 1);
        return fn.as_function()(args);
      }
      case ExprKind::kFilter: {
        if (!has_filter(e.name)) fail("no filter named '" + e.name + "'");
        Value in = eval(*e.args[0]);
        CallArgs args = eval_args(e, 1);
        return apply_filter(e.name, in, args);
      }
      case ExprKind::kTest: {
        if (!has_test(e.name)) fail("no test named '" + e.name + "'");
        Value in = eval(*e.args[0]);
        CallArgs args = eval_args(e, 1);
        return Value(apply_test(e.name, in, args) != e.negated);
      }
      case ExprKind::kUnary: {
        Value v = eval(*e.args[0]);
        if (e.name == "not") return Value(!v.truthy());
        if (v.is_undefined()) undefined_error(v);
        if (!v.is_number()) fail("bad operand type for unary " + e.name + ": '" + v.type_name() + "'");
        if (e.name == "+") return v.is_float() ? v : Value(v.as_int());
        if (v.is_float()) return Value(-v.as_double());
        if (v.as_int() == INT64_MIN) fail("integer overflow");
        return Value(-v.as_int());
      }
      case ExprKind::kBinary: {
        if (e.name == "and") {
          Value l = eval(*e.args[0]);
          return l.truthy() ? eval(*e.args[1]) : l;
        }
        if (e.name == "or") {
          Value l = eval(*e.args[0]);
          return l.truthy() ? l : eval(*e.args[1]);
        }
        Value l = eval(*e.args[0]);
        Value r = eval(*e.args[1]);
        if (e.name == "~") {
          TextBuilder joined;
          joined.append(l);
          joined.append(r);
          return joined.take();
        }
        return arithmetic(e.name, l, r);
      }
      case ExprKind::kCompare: {
        Value left = eval(*e.args[0]);
        for (size_t i = 0; i < e.ops.size(); ++i) {
          Value right = eval(*e.args[i + 1]);
          if (!compare(e.ops[i], left, right)) return Value(false);
          left = std::move(right);
        }
        return Value(true);
      }
      case ExprKind::kCond: {
        if (eval(*e.args[1]).truthy()) return eval(*e.args[0]);
        return e.args[2] ? eval(*e.args[2]) : Value::undefined();
      }
    }
    fail("unknown expression");
  }

  const RenderLimits& limits_;
  std::vector<Scope> scopes_;
  int loop_depth_ = 0;
  int call_depth_ = 0;
  int64_t iterations_ = 0;
};

}  // namespace

RenderedText render_template(const Body& body, const ValueDict& globals, const RenderLimits& limits) {
  RenderBudget budget{limits.max_value_bytes, limits.max_built_bytes};
  ScopedRenderBudget scope(&budget);
  Renderer r(globals, limits);
  return r.run(body);
}

}  // namespace dsv3::jinja
