#pragma once
// Each subcommand lives in its own cmd_*.cpp and registers itself with
// DSV3_REGISTER_COMMAND: its factory adds a CLI11 subcommand with its options and returns
// what to run when that subcommand is chosen.
// Exit codes: 0 success, 1 error (bad file, bad input, failure), 2 usage error.

#include <functional>
#include <string>

#include <CLI/CLI.hpp>

#include "dist/communicator.h"

namespace dsv3::cli {

struct Command {
  CLI::App* app = nullptr;
  std::function<int()> run;
};

using CommandFactory = Command (*)(CLI::App& root);

// Adds a factory to the registry main() builds the command line from (sorted by name).
bool register_command(const char* name, CommandFactory factory);

// The ranks of this run (world size 1 without mpirun); commands run on rank 0.
Communicator& world();

// Prints "dsv3 <command>: error: <message>" to stderr and returns exit code 1.
int fail(const std::string& command, const std::string& message);

}  // namespace dsv3::cli

#define DSV3_REGISTER_COMMAND(name, factory) \
  static const bool DSV3_CONCAT(dsv3_command_registered_, __LINE__) = ::dsv3::cli::register_command(name, factory)
