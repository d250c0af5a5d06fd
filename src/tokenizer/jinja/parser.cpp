#include "tokenizer/jinja/parser.h"

#include "tokenizer/jinja/parser_impl.h"

namespace dsv3::jinja {

namespace detail {

// Parses until a block tag whose name is in `stop` (left unconsumed) or the end.

Body Parser::parse_body(const std::set<std::string>& stop) {
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

std::string Parser::end_tag(const std::set<std::string>& names, const std::string& opener, int open_line) {
  if (cur().type == TokenType::kEnd)
    throw TemplateError("'" + opener + "' opened on line " + std::to_string(open_line) + " is never closed",
                        cur().line);
  advance();  // {%
  std::string name = expect_name();
  if (!names.count(name)) error("unexpected '" + name + "' inside '" + opener + "'");
  return name;
}

StmtPtr Parser::parse_statement() {
  NestingGuard guard(*this);
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

std::vector<std::string> Parser::parse_targets() {
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

}  // namespace detail

Body parse_template(const std::vector<Token>& tokens) { return detail::Parser(tokens).parse_all(); }

}  // namespace dsv3::jinja
