#pragma once
// The chat's input lines. On a terminal: line editing and history (arrow keys, Ctrl-R), as
// the reference demo gets from Python's input() with readline, through libedit (BSD
// licensed). From a pipe or a file: plain lines, the prompt still printed, so that a
// scripted session reads like a typed one.

#include <optional>
#include <string>

namespace dsv3::cli {

class LineReader {
 public:
  explicit LineReader(std::string prompt);
  // The next line without its newline; nullopt at end of input (Ctrl-D, closed stdin).
  std::optional<std::string> read();
  bool interactive() const { return interactive_; }

 private:
  std::string prompt_;
  bool interactive_;
};

}  // namespace dsv3::cli
