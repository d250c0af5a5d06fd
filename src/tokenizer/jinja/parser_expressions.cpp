// Expression parsing: Jinja2's precedence climbing (see parser.h for the order).

#include "tokenizer/jinja/builtins.h"
#include "tokenizer/jinja/parser_impl.h"

namespace dsv3::jinja::detail {

// An expression, or a tuple "a, b" without parentheses (for and set).

ExprPtr Parser::parse_tuple_or(bool with_condexpr) {
  int line = cur().line;
  ExprPtr first = with_condexpr ? parse_condexpr() : parse_or();
  if (!is_op(",")) return first;
  auto t = node(ExprKind::kTuple, line);
  t->args.push_back(std::move(first));
  while (accept_op(",")) {
    if (cur().type == TokenType::kBlockEnd || cur().type == TokenType::kVarEnd) break;
    t->args.push_back(with_condexpr ? parse_condexpr() : parse_or());
  }
  return t;
}

ExprPtr Parser::parse_condexpr() {
  NestingGuard guard(*this);
  ExprPtr expr = parse_or();
  while (is_name("if")) {
    int line = cur().line;
    advance();
    auto c = node(ExprKind::kCond, line);
    ExprPtr test = parse_or();
    ExprPtr otherwise;
    if (accept_name("else")) otherwise = parse_condexpr();
    c->args.push_back(std::move(expr));
    c->args.push_back(std::move(test));
    c->args.push_back(std::move(otherwise));
    expr = std::move(c);
  }
  return expr;
}

ExprPtr Parser::binary(const std::string& op, ExprPtr l, ExprPtr r, int line) {
  auto b = node(ExprKind::kBinary, line);
  b->name = op;
  b->args.push_back(std::move(l));
  b->args.push_back(std::move(r));
  return b;
}

ExprPtr Parser::parse_or() {
  ExprPtr l = parse_and();
  while (is_name("or")) {
    int line = cur().line;
    advance();
    l = binary("or", std::move(l), parse_and(), line);
  }
  return l;
}

ExprPtr Parser::parse_and() {
  ExprPtr l = parse_not();
  while (is_name("and")) {
    int line = cur().line;
    advance();
    l = binary("and", std::move(l), parse_not(), line);
  }
  return l;
}

ExprPtr Parser::parse_not() {
  NestingGuard guard(*this);
  if (is_name("not")) {
    int line = cur().line;
    advance();
    auto u = node(ExprKind::kUnary, line);
    u->name = "not";
    u->args.push_back(parse_not());
    return u;
  }
  return parse_compare();
}

ExprPtr Parser::parse_compare() {
  int line = cur().line;
  ExprPtr first = parse_math1();
  ExprPtr cmp;
  while (true) {
    std::string op;
    if (cur().type == TokenType::kOperator &&
        (cur().value == "==" || cur().value == "!=" || cur().value == "<" || cur().value == "<=" ||
         cur().value == ">" || cur().value == ">=")) {
      op = cur().value;
      advance();
    } else if (is_name("in")) {
      op = "in";
      advance();
    } else if (is_name("not") && ahead(1).type == TokenType::kName && ahead(1).value == "in") {
      op = "not in";
      advance();
      advance();
    } else {
      break;
    }
    if (!cmp) {
      cmp = node(ExprKind::kCompare, line);
      cmp->args.push_back(std::move(first));
    }
    cmp->ops.push_back(op);
    cmp->args.push_back(parse_math1());
  }
  return cmp ? std::move(cmp) : std::move(first);
}

ExprPtr Parser::parse_math1() {
  ExprPtr l = parse_concat();
  while (is_op("+") || is_op("-")) {
    std::string op = cur().value;
    int line = cur().line;
    advance();
    l = binary(op, std::move(l), parse_concat(), line);
  }
  return l;
}

ExprPtr Parser::parse_concat() {
  ExprPtr l = parse_math2();
  while (is_op("~")) {
    int line = cur().line;
    advance();
    l = binary("~", std::move(l), parse_math2(), line);
  }
  return l;
}

ExprPtr Parser::parse_math2() {
  ExprPtr l = parse_pow();
  while (is_op("*") || is_op("/") || is_op("//") || is_op("%")) {
    std::string op = cur().value;
    int line = cur().line;
    advance();
    l = binary(op, std::move(l), parse_pow(), line);
  }
  return l;
}

ExprPtr Parser::parse_pow() {
  ExprPtr l = parse_unary(true);
  while (is_op("**")) {
    int line = cur().line;
    advance();
    l = binary("**", std::move(l), parse_unary(true), line);
  }
  return l;
}

ExprPtr Parser::parse_unary(bool with_filter) {
  NestingGuard guard(*this);
  ExprPtr e;
  if (is_op("-") || is_op("+")) {
    auto u = node(ExprKind::kUnary, cur().line);
    u->name = cur().value;
    advance();
    u->args.push_back(parse_unary(false));
    e = std::move(u);
  } else {
    e = parse_primary();
  }
  e = parse_postfix(std::move(e));
  if (with_filter) e = parse_filter_expr(std::move(e));
  return e;
}

ExprPtr Parser::parse_primary() {
  const Token& t = cur();
  int line = t.line;
  switch (t.type) {
    case TokenType::kName: {
      auto e = node(ExprKind::kLiteral, line);
      if (t.value == "true" || t.value == "True") e->value = Value(true);
      else if (t.value == "false" || t.value == "False") e->value = Value(false);
      else if (t.value == "none" || t.value == "None") e->value = Value::none();
      else {
        e->kind = ExprKind::kName;
        e->name = t.value;
      }
      advance();
      return e;
    }
    case TokenType::kString: {
      std::string s;
      while (cur().type == TokenType::kString) {  // adjacent literals concatenate
        s += cur().value;
        advance();
      }
      auto e = node(ExprKind::kLiteral, line);
      e->value = Value(std::move(s));
      return e;
    }
    case TokenType::kInt: {
      auto e = node(ExprKind::kLiteral, line);
      const std::optional<int64_t> v = decimal_int64(t.value);
      if (!v) error("integer literal out of range");
      e->value = Value(*v);
      advance();
      return e;
    }
    case TokenType::kFloat: {
      auto e = node(ExprKind::kLiteral, line);
      e->value = Value(std::strtod(t.value.c_str(), nullptr));
      advance();
      return e;
    }
    case TokenType::kOperator:
      if (t.value == "(") {
        advance();
        if (accept_op(")")) return node(ExprKind::kTuple, line);
        ExprPtr first = parse_expression();
        if (accept_op(")")) return first;
        auto tuple = node(ExprKind::kTuple, line);
        tuple->args.push_back(std::move(first));
        while (accept_op(",")) {
          if (is_op(")")) break;
          tuple->args.push_back(parse_expression());
        }
        expect_op(")");
        return tuple;
      }
      if (t.value == "[") {
        advance();
        auto list = node(ExprKind::kList, line);
        while (!is_op("]")) {
          list->args.push_back(parse_expression());
          if (!accept_op(",")) break;
        }
        expect_op("]");
        return list;
      }
      if (t.value == "{") {
        advance();
        auto dict = node(ExprKind::kDict, line);
        while (!is_op("}")) {
          dict->args.push_back(parse_expression());
          expect_op(":");
          dict->args.push_back(parse_expression());
          if (!accept_op(",")) break;
        }
        expect_op("}");
        return dict;
      }
      break;
    default: break;
  }
  error("unexpected " + describe(t) + " in expression");
}

ExprPtr Parser::parse_postfix(ExprPtr e) {
  while (true) {
    int line = cur().line;
    if (is_op(".")) {
      advance();
      if (cur().type == TokenType::kInt) {  // a.0 is a[0]
        auto item = node(ExprKind::kItem, line);
        item->args.push_back(std::move(e));
        auto idx = node(ExprKind::kLiteral, line);
        const std::optional<int64_t> v = decimal_int64(cur().value);
        if (!v) error("integer index out of range");
        idx->value = Value(*v);
        advance();
        item->args.push_back(std::move(idx));
        e = std::move(item);
      } else {
        auto attr = node(ExprKind::kAttr, line);
        attr->name = expect_name();
        attr->args.push_back(std::move(e));
        e = std::move(attr);
      }
    } else if (is_op("[")) {
      advance();
      e = parse_subscript(std::move(e), line);
    } else if (is_op("(")) {
      e = parse_call(std::move(e));
    } else {
      return e;
    }
  }
}

ExprPtr Parser::parse_subscript(ExprPtr obj, int line) {
  ExprPtr parts[3];
  bool is_slice = false;
  for (int i = 0; i < 3; ++i) {
    if (!is_op(":") && !is_op("]")) parts[i] = parse_expression();
    if (i < 2 && accept_op(":")) {
      is_slice = true;
      continue;
    }
    break;
  }
  expect_op("]");
  if (!is_slice) {
    if (!parts[0]) error("empty subscript");
    auto item = node(ExprKind::kItem, line);
    item->args.push_back(std::move(obj));
    item->args.push_back(std::move(parts[0]));
    return item;
  }
  auto slice = node(ExprKind::kSlice, line);
  slice->args.push_back(std::move(obj));
  for (auto& p : parts) slice->args.push_back(std::move(p));
  return slice;
}

// Fills args (after any already present) and kwargs from "( ... )".

void Parser::parse_call_args(Expr& e) {
  expect_op("(");
  while (!is_op(")")) {
    if (cur().type == TokenType::kName && ahead(1).type == TokenType::kOperator && ahead(1).value == "=") {
      std::string key = cur().value;
      advance();
      advance();
      e.kwargs.emplace_back(key, parse_expression());
    } else {
      if (!e.kwargs.empty()) error("positional argument after keyword argument");
      e.args.push_back(parse_expression());
    }
    if (!accept_op(",")) break;
  }
  expect_op(")");
}

ExprPtr Parser::parse_call(ExprPtr fn) {
  auto call = node(ExprKind::kCall, cur().line);
  call->args.push_back(std::move(fn));
  parse_call_args(*call);
  return call;
}

std::string Parser::dotted_name() {
  std::string name = expect_name();
  while (is_op(".") && ahead(1).type == TokenType::kName) {
    advance();
    name += "." + expect_name();
  }
  return name;
}

// "| f(args) | g ..." applied to `input` (null for {% filter %} blocks).

ExprPtr Parser::parse_filter_chain(ExprPtr input, bool leading_pipe) {
  bool first = true;
  while (is_op("|") || (first && !leading_pipe)) {
    if (!(first && !leading_pipe)) advance();
    first = false;
    auto f = node(ExprKind::kFilter, cur().line);
    f->name = dotted_name();
    if (!has_filter(f->name)) throw TemplateError("no filter named '" + f->name + "'", f->line);  // Jinja2 checks at compile time too
    f->args.push_back(std::move(input));
    if (is_op("(")) parse_call_args(*f);
    input = std::move(f);
  }
  return input;
}

ExprPtr Parser::parse_filter_expr(ExprPtr e) {
  while (true) {
    if (is_op("|")) {
      e = parse_filter_chain(std::move(e));
    } else if (is_name("is")) {
      int line = cur().line;
      advance();
      auto t = node(ExprKind::kTest, line);
      t->negated = accept_name("not");
      t->name = dotted_name();
    if (!has_test(t->name)) throw TemplateError("no test named '" + t->name + "'", line);
      t->args.push_back(std::move(e));
      if (is_op("(")) {
        parse_call_args(*t);
      } else if ((cur().type == TokenType::kName || cur().type == TokenType::kString || cur().type == TokenType::kInt ||
                  cur().type == TokenType::kFloat || is_op("[") || is_op("{") || is_op("(")) &&
                 !is_name("else") && !is_name("or") && !is_name("and")) {
        if (is_name("is")) error("tests cannot be chained with 'is'");
        t->args.push_back(parse_postfix(parse_primary()));
      }
      e = std::move(t);
    } else if (is_op("(")) {
      e = parse_call(std::move(e));
    } else {
      return e;
    }
  }
}

}  // namespace dsv3::jinja::detail
