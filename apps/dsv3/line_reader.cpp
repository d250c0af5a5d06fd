#include "line_reader.h"

#include <editline/readline.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <iostream>

namespace dsv3::cli {

LineReader::LineReader(std::string prompt) : prompt_(std::move(prompt)), interactive_(::isatty(0) && ::isatty(1)) {}

std::optional<std::string> LineReader::read() {
  if (interactive_) {
    char* raw = ::readline(prompt_.c_str());
    if (!raw) return std::nullopt;
    std::string line(raw);
    std::free(raw);
    if (line.find_first_not_of(" \t") != std::string::npos) ::add_history(line.c_str());
    return line;
  }
  std::fputs(prompt_.c_str(), stdout);
  std::fflush(stdout);
  std::string line;
  if (!std::getline(std::cin, line)) return std::nullopt;
  return line;
}

}  // namespace dsv3::cli
