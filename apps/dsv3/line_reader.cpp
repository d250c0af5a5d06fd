#include "line_reader.h"

#include <editline/readline.h>
#include <unistd.h>

#include <clocale>
#include <cstdio>
#include <cstring>
#include <cstdlib>
#include <iostream>

namespace dsv3::cli {

LineReader::LineReader(std::string prompt) : prompt_(std::move(prompt)), interactive_(::isatty(0) && ::isatty(1)) {
  if (!interactive_) return;
  // libedit decodes keystrokes with the C library's multibyte functions: in the default "C"
  // locale a Chinese character would be edited byte by byte. The user's LC_CTYPE, else
  // C.UTF-8 (always present on Debian). Only the character type: numbers keep their format.
  const char* set = std::setlocale(LC_CTYPE, "");
  if (!set || std::strcmp(set, "C") == 0 || std::strcmp(set, "POSIX") == 0) std::setlocale(LC_CTYPE, "C.UTF-8");
}

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
