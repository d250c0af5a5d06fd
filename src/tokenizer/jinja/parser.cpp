#include "tokenizer/jinja/parser.h"

#include <set>

#include "tokenizer/jinja/error.h"

namespace dsv3::jinja {

namespace {

class Parser {
 public:
  explicit Parser(const std::vector<Token>& tokens) : toks_(tokens) {}

  Body parse_all() {
    Body body = parse_body({});
    if (cur().type != TokenType::kEnd) error("unexpected '" + peek_tag_name() + "'");
    return body;
  }

 private:
  // ---- token helpers ----
  const Token& cur() const { return toks_[pos_]; }
  const Token& ahead(size_t n) const { return toks_[std::min(pos_ + n, toks_.size() - 1)]; }
  void advance() {
    if (pos_ + 1 < toks_.size()) ++pos_;
  }
  [[noreturn]] void error(const std::string& message) const { throw TemplateError(message, cur().line); }
  bool is_op(const char* op) const { return cur().type == TokenType::kOperator && cur().value == op; }
  bool is_name(const char* name) const { return cur().type == TokenType::kName && cur().value == name; }
  bool accept_op(const char* op) {
    if (!is_op(op)) return false;
    advance();
    return true;
  }
  bool accept_name(const char* name) {
    if (!is_name(name)) return false;
    advance();
    return true;
  }
  std::string describe(const Token& t) const {
    switch (t.type) {
      case TokenType::kText: return "template text";
      case TokenType::kVarBegin: return "'{{'";
      case TokenType::kVarEnd: return "'}}'";
      case TokenType::kBlockBegin: return "'{%'";
      case TokenType::kBlockEnd: return "'%}'";
      case TokenType::kEnd: return "end of template";
      case TokenType::kString: return "string literal";
      default: return "'" + t.value + "'";
    }
  }
  void expect_op(const char* op) {
    if (!accept_op(op)) error(std::string("expected '") + op + "', got " + describe(cur()));
  }
  std::string expect_name() {
    if (cur().type != TokenType::kName) error("expected a name, got " + describe(cur()));
    std::string v = cur().value;
    advance();
    return v;
  }
  void expect_block_end() {
    if (cur().type != TokenType::kBlockEnd) error("expected '%}', got " + describe(cur()));
    advance();
  }
  std::string peek_tag_name() const {
    if (cur().type == TokenType::kBlockBegin && ahead(1).type == TokenType::kName) return ahead(1).value;
    return describe(cur());
  }

  ExprPtr node(ExprKind kind, int line) {
    auto e = std::make_unique<Expr>();
    e->kind = kind;
    e->line = line;
    return e;
  }

  // ---- statements ----
  // Parses until a block tag whose name is in `stop` (left unconsumed) or the end.
  Body parse_body(const std::set<std::string>& stop) {
    Body body;
    while (cur().type != TokenType::kEnd) {
      const Token& t = cur();
      if (t.type == TokenType::kText) {
        auto s = std::make_unique<Stmt>();
        s->kind = StmtKind::kText;
        s->line = t.line;
        s->text = t.value;
        body.push_back(std::move(s));
        advance();
      } else if (t.type == TokenType::kVarBegin) {
        auto s = std::make_unique<Stmt>();
        s->kind = StmtKind::kOutput;
        s->line = t.line;
        advance();
        s->expr = parse_expression();
        if (cur().type != TokenType::kVarEnd) error("expected '}}', got " + describe(cur()));
        advance();
        body.push_back(std::move(s));
      } else if (t.type == TokenType::kBlockBegin) {
        if (ahead(1).type != TokenType::kName) {
          advance();
          error("expected a tag name after '{%'");
        }
        if (stop.count(ahead(1).value)) return body;
        body.push_back(parse_statement());
      } else {
        error("unexpected " + describe(t));
      }
    }
    return body;
  }

  // Consumes {% name ... and checks that the block closes with one of `names`; returns which.
  std::string end_tag(const std::set<std::string>& names, const std::string& opener, int open_line) {
    if (cur().type == TokenType::kEnd)
      throw TemplateError("'" + opener + "' opened on line " + std::to_string(open_line) + " is never closed",
                          cur().line);
    advance();  // {%
    std::string name = expect_name();
    if (!names.count(name)) error("unexpected '" + name + "' inside '" + opener + "'");
    return name;
  }

  StmtPtr parse_statement() {
    int line = cur().line;
    advance();  // {%
    std::string tag = expect_name();
    auto s = std::make_unique<Stmt>();
    s->line = line;
    if (tag == "if") {
      s->kind = StmtKind::kIf;
      s->conditions.push_back(parse_expression());
      expect_block_end();
      while (true) {
        s->bodies.push_back(parse_body({"elif", "else", "endif"}));
        std::string t = end_tag({"elif", "else", "endif"}, "if", line);
        if (t == "elif") {
          s->conditions.push_back(parse_expression());
          expect_block_end();
        } else if (t == "else") {
          expect_block_end();
          s->else_body = parse_body({"endif"});
          end_tag({"endif"}, "if", line);
          expect_block_end();
          break;
        } else {
          expect_block_end();
          break;
        }
      }
    } else if (tag == "for") {
      s->kind = StmtKind::kFor;
      s->targets = parse_targets();
      if (!accept_name("in")) error("expected 'in' in for loop, got " + describe(cur()));
      s->expr = parse_tuple_or(/*with_condexpr=*/false);
      if (accept_name("if")) s->filter = parse_expression();
      if (is_name("recursive")) error("recursive for loops are not supported");
      expect_block_end();
      s->bodies.push_back(parse_body({"else", "endfor"}));
      if (end_tag({"else", "endfor"}, "for", line) == "else") {
        expect_block_end();
        s->else_body = parse_body({"endfor"});
        end_tag({"endfor"}, "for", line);
      }
      expect_block_end();
    } else if (tag == "set") {
      if (cur().type == TokenType::kName && ahead(1).type == TokenType::kOperator && ahead(1).value == ".") {
        s->kind = StmtKind::kSet;
        s->attr_owner = expect_name();
        advance();  // .
        s->attr = expect_name();
        expect_op("=");
        s->expr = parse_tuple_or(true);
        expect_block_end();
      } else {
        s->targets = parse_targets();
        if (accept_op("=")) {
          s->kind = StmtKind::kSet;
          s->expr = parse_tuple_or(true);
          expect_block_end();
        } else {
          s->kind = StmtKind::kSetBlock;
          if (s->targets.size() != 1) error("a block set takes one name");
          if (is_op("|")) s->filter = parse_filter_chain(nullptr);
          expect_block_end();
          s->bodies.push_back(parse_body({"endset"}));
          end_tag({"endset"}, "set", line);
          expect_block_end();
        }
      }
    } else if (tag == "macro") {
      s->kind = StmtKind::kMacro;
      s->name = expect_name();
      expect_op("(");
      while (!is_op(")")) {
        std::string param = expect_name();
        ExprPtr def;
        if (accept_op("=")) def = parse_expression();
        s->params.emplace_back(param, std::move(def));
        if (!accept_op(",")) break;
      }
      expect_op(")");
      expect_block_end();
      s->bodies.push_back(parse_body({"endmacro"}));
      end_tag({"endmacro"}, "macro", line);
      if (cur().type == TokenType::kName) advance();  // {% endmacro name %}
      expect_block_end();
    } else if (tag == "filter") {
      s->kind = StmtKind::kFilterBlock;
      s->expr = parse_filter_chain(nullptr, /*leading_pipe=*/false);
      expect_block_end();
      s->bodies.push_back(parse_body({"endfilter"}));
      end_tag({"endfilter"}, "filter", line);
      expect_block_end();
    } else if (tag == "generation") {
      s->kind = StmtKind::kScope;
      expect_block_end();
      s->bodies.push_back(parse_body({"endgeneration"}));
      end_tag({"endgeneration"}, "generation", line);
      expect_block_end();
    } else if (tag == "break" || tag == "continue") {
      s->kind = tag == "break" ? StmtKind::kBreak : StmtKind::kContinue;
      expect_block_end();
    } else {
      static const std::set<std::string> kEnds = {"elif", "else", "endif", "endfor", "endset", "endmacro", "endfilter",
                                                 "endgeneration", "endraw"};
      --pos_;
      if (kEnds.count(tag)) error("unexpected '" + tag + "' (no matching opening tag)");
      error("unknown or unsupported tag '" + tag + "'");
    }
    return s;
  }

  std::vector<std::string> parse_targets() {
    std::vector<std::string> names;
    bool paren = accept_op("(");
    names.push_back(expect_name());
    while (accept_op(",")) {
      if (cur().type != TokenType::kName) break;
      names.push_back(expect_name());
    }
    if (paren) expect_op(")");
    return names;
  }

  // ---- expressions ----
  ExprPtr parse_expression() { return parse_condexpr(); }

  // An expression, or a tuple "a, b" without parentheses (for and set).
  ExprPtr parse_tuple_or(bool with_condexpr) {
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

  ExprPtr parse_condexpr() {
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

  ExprPtr binary(const std::string& op, ExprPtr l, ExprPtr r, int line) {
    auto b = node(ExprKind::kBinary, line);
    b->name = op;
    b->args.push_back(std::move(l));
    b->args.push_back(std::move(r));
    return b;
  }

  ExprPtr parse_or() {
    ExprPtr l = parse_and();
    while (is_name("or")) {
      int line = cur().line;
      advance();
      l = binary("or", std::move(l), parse_and(), line);
    }
    return l;
  }
  ExprPtr parse_and() {
    ExprPtr l = parse_not();
    while (is_name("and")) {
      int line = cur().line;
      advance();
      l = binary("and", std::move(l), parse_not(), line);
    }
    return l;
  }
  ExprPtr parse_not() {
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
  ExprPtr parse_compare() {
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
  ExprPtr parse_math1() {
    ExprPtr l = parse_concat();
    while (is_op("+") || is_op("-")) {
      std::string op = cur().value;
      int line = cur().line;
      advance();
      l = binary(op, std::move(l), parse_concat(), line);
    }
    return l;
  }
  ExprPtr parse_concat() {
    ExprPtr l = parse_math2();
    while (is_op("~")) {
      int line = cur().line;
      advance();
      l = binary("~", std::move(l), parse_math2(), line);
    }
    return l;
  }
  ExprPtr parse_math2() {
    ExprPtr l = parse_pow();
    while (is_op("*") || is_op("/") || is_op("//") || is_op("%")) {
      std::string op = cur().value;
      int line = cur().line;
      advance();
      l = binary(op, std::move(l), parse_pow(), line);
    }
    return l;
  }
  ExprPtr parse_pow() {
    ExprPtr l = parse_unary(true);
    while (is_op("**")) {
      int line = cur().line;
      advance();
      l = binary("**", std::move(l), parse_unary(true), line);
    }
    return l;
  }
  ExprPtr parse_unary(bool with_filter) {
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

  ExprPtr parse_primary() {
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
        try {
          e->value = Value(static_cast<int64_t>(std::stoll(t.value)));
        } catch (const std::exception&) {
          error("integer literal out of range");
        }
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

  ExprPtr parse_postfix(ExprPtr e) {
    while (true) {
      int line = cur().line;
      if (is_op(".")) {
        advance();
        if (cur().type == TokenType::kInt) {  // a.0 is a[0]
          auto item = node(ExprKind::kItem, line);
          item->args.push_back(std::move(e));
          auto idx = node(ExprKind::kLiteral, line);
          idx->value = Value(static_cast<int64_t>(std::stoll(cur().value)));
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

  ExprPtr parse_subscript(ExprPtr obj, int line) {
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
  void parse_call_args(Expr& e) {
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

  ExprPtr parse_call(ExprPtr fn) {
    auto call = node(ExprKind::kCall, cur().line);
    call->args.push_back(std::move(fn));
    parse_call_args(*call);
    return call;
  }

  std::string dotted_name() {
    std::string name = expect_name();
    while (is_op(".") && ahead(1).type == TokenType::kName) {
      advance();
      name += "." + expect_name();
    }
    return name;
  }

  // "| f(args) | g ..." applied to `input` (null for {% filter %} blocks).
  ExprPtr parse_filter_chain(ExprPtr input, bool leading_pipe = true) {
    bool first = true;
    while (is_op("|") || (first && !leading_pipe)) {
      if (!(first && !leading_pipe)) advance();
      first = false;
      auto f = node(ExprKind::kFilter, cur().line);
      f->name = dotted_name();
      f->args.push_back(std::move(input));
      if (is_op("(")) parse_call_args(*f);
      input = std::move(f);
    }
    return input;
  }

  ExprPtr parse_filter_expr(ExprPtr e) {
    while (true) {
      if (is_op("|")) {
        e = parse_filter_chain(std::move(e));
      } else if (is_name("is")) {
        int line = cur().line;
        advance();
        auto t = node(ExprKind::kTest, line);
        t->negated = accept_name("not");
        t->name = dotted_name();
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

  const std::vector<Token>& toks_;
  size_t pos_ = 0;
};

}  // namespace

Body parse_template(const std::vector<Token>& tokens) { return Parser(tokens).parse_all(); }

}  // namespace dsv3::jinja
