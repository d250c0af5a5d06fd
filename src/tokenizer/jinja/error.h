#pragma once
// Errors inside the Jinja engine. Lexer, parser and evaluator are deeply recursive and every
// step of an expression can fail on data, so they throw TemplateError internally; it never
// leaves the engine: ChatTemplate::compile/render turn it into a Result error that names the
// template line.

#include <stdexcept>
#include <string>

namespace dsv3::jinja {

class TemplateError : public std::runtime_error {
 public:
  explicit TemplateError(const std::string& message, int line = 0) : std::runtime_error(message), line_(line) {}
  int line() const { return line_; }

 private:
  int line_;
};

// The render's output passed RenderLimits::max_output_bytes.
class OutputLimitError : public TemplateError {
 public:
  using TemplateError::TemplateError;
};

[[noreturn]] inline void fail(const std::string& message) { throw TemplateError(message); }

}  // namespace dsv3::jinja
