#pragma once
// Each subcommand lives in its own cmd_*.cpp and registers itself on the root CLI11 app:
// it adds a subcommand with its options and returns what to run when that subcommand is
// chosen. Exit codes: 0 success, 1 error (bad file, bad input, failure), 2 usage error.

#include <functional>
#include <string>

#include <CLI/CLI.hpp>

namespace dsv3::cli {

struct Command {
  CLI::App* app = nullptr;
  std::function<int()> run;
};

// Prints "dsv3 <command>: error: <message>" to stderr and returns exit code 1.
int fail(const std::string& command, const std::string& message);

Command add_logits_command(CLI::App& root);
Command add_generate_command(CLI::App& root);
Command add_make_random_command(CLI::App& root);

}  // namespace dsv3::cli
