#pragma once
// The Jinja parser's internals, shared by parser.cpp (statements) and
// parser_expressions.cpp (expressions). Not part of the engine's interface: use parser.h.

#include <set>
#include <string>
#include <vector>

#include "tokenizer/jinja/ast.h"
#include "tokenizer/jinja/error.h"
#include "tokenizer/jinja/lexer.h"

namespace dsv3::jinja::detail {

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

  // ---- statements (parser.cpp) ----
  Body parse_body(const std::set<std::string>& stop);
  std::string end_tag(const std::set<std::string>& names, const std::string& opener, int open_line);
  StmtPtr parse_statement();
  std::vector<std::string> parse_targets();

  // ---- expressions (parser_expressions.cpp) ----
  ExprPtr parse_expression() { return parse_condexpr(); }
  ExprPtr parse_tuple_or(bool with_condexpr);
  ExprPtr parse_condexpr();
  ExprPtr binary(const std::string& op, ExprPtr l, ExprPtr r, int line);
  ExprPtr parse_or();
  ExprPtr parse_and();
  ExprPtr parse_not();
  ExprPtr parse_compare();
  ExprPtr parse_math1();
  ExprPtr parse_concat();
  ExprPtr parse_math2();
  ExprPtr parse_pow();
  ExprPtr parse_unary(bool with_filter);
  ExprPtr parse_primary();
  ExprPtr parse_postfix(ExprPtr e);
  ExprPtr parse_subscript(ExprPtr obj, int line);
  void parse_call_args(Expr& e);
  ExprPtr parse_call(ExprPtr fn);
  std::string dotted_name();
  ExprPtr parse_filter_chain(ExprPtr input, bool leading_pipe = true);
  ExprPtr parse_filter_expr(ExprPtr e);

  // Recursion guard: nesting deeper than this is a syntax error, never a stack overflow.
  static constexpr int kMaxNesting = 200;
  struct NestingGuard {
    Parser& p;
    explicit NestingGuard(Parser& parser) : p(parser) {
      if (++p.nesting_ > kMaxNesting) p.error("template nested too deeply");
    }
    ~NestingGuard() { --p.nesting_; }
  };

  const std::vector<Token>& toks_;
  int nesting_ = 0;
  size_t pos_ = 0;};

}  // namespace dsv3::jinja::detail
