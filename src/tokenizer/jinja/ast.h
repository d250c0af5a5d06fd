#pragma once
// The syntax tree of a Jinja template: expressions and statements, each with its template
// line for error messages. Generic nodes (a kind plus children) keep the parser and the
// evaluator short; the field comments say what each kind uses.

#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "tokenizer/jinja/value.h"

namespace dsv3::jinja {

struct Expr;
using ExprPtr = std::unique_ptr<Expr>;

enum class ExprKind {
  kLiteral,  // value
  kName,     // name
  kList,     // args: items
  kTuple,    // args: items
  kDict,     // args: key0, value0, key1, value1, ...
  kAttr,     // args[0].name
  kItem,     // args[0][args[1]]
  kSlice,    // args[0][args[1]:args[2]:args[3]] (missing parts are null)
  kCall,     // args[0](args[1..], kwargs)
  kFilter,   // args[0] | name(args[1..], kwargs); args[0] is null inside {% filter %}
  kTest,     // args[0] is [not] name(args[1..]); negated
  kUnary,    // op args[0]: "-", "+", "not"
  kBinary,   // args[0] op args[1]: + - * / // % ** ~ and or in "not in"
  kCompare,  // args[0] ops[0] args[1] ops[1] args[2] ...: == != < <= > >=
  kCond,     // args[0] if args[1] else args[2] (args[2] may be null)
};

struct Expr {
  ExprKind kind;
  int line = 0;
  Value value;
  std::string name;  // name, attribute, filter/test name, or operator
  std::vector<ExprPtr> args;
  std::vector<std::pair<std::string, ExprPtr>> kwargs;
  std::vector<std::string> ops;
  bool negated = false;
};

struct Stmt;
using StmtPtr = std::unique_ptr<Stmt>;
using Body = std::vector<StmtPtr>;

enum class StmtKind {
  kText,      // text
  kOutput,    // {{ expr }}
  kIf,        // conditions[i] -> bodies[i]; else_body
  kFor,       // for targets in expr [if filter]: bodies[0]; else_body
  kSet,       // set targets = expr; or set attr_owner.attr = expr
  kSetBlock,  // {% set targets[0] %}bodies[0]{% endset %} (optionally | filter)
  kMacro,     // macro name(params) bodies[0]
  kFilterBlock,  // {% filter expr %}bodies[0]{% endfilter %}
  kBreak,
  kContinue,
  kScope,     // bodies[0] rendered in place ({% generation %})
};

struct Stmt {
  StmtKind kind;
  int line = 0;
  std::string text;
  ExprPtr expr;                      // output / for iterable / set value / filter chain
  ExprPtr filter;                    // for ... if filter
  std::vector<ExprPtr> conditions;   // if / elif
  std::vector<Body> bodies;
  Body else_body;
  std::vector<std::string> targets;  // loop / set names
  std::string attr_owner, attr;      // set ns.attr = ...
  std::string name;                  // macro name
  std::vector<std::pair<std::string, ExprPtr>> params;  // macro parameters and defaults
};

}  // namespace dsv3::jinja
