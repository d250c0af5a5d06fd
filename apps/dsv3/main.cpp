// dsv3: the command-line front end. Thin: parsing and printing only; the engine is in src/.

#include <cstdio>
#include <map>
#include <vector>

#include "base/mapped_file.h"
#include "base/result.h"
#include "command.h"

namespace dsv3::cli {

static std::map<std::string, CommandFactory>& registry() {
  static std::map<std::string, CommandFactory> r;
  return r;
}

bool register_command(const char* name, CommandFactory factory) {
  registry()[name] = factory;
  return true;
}

int fail(const std::string& command, const std::string& message) {
  std::fprintf(stderr, "dsv3 %s: error: %s\n", command.c_str(), message.c_str());
  return 1;
}

}  // namespace dsv3::cli

int main(int argc, char** argv) {
  using namespace dsv3::cli;
  CLI::App app{"dsv3: inference engine for the DeepSeek-V3 model family (V3, V3-Base, R1, V3.1, V2, V2-Lite)", "dsv3"};
  app.set_version_flag("--version", std::string("dsv3 ") + DSV3_VERSION);
  app.require_subcommand(1);

  std::vector<Command> commands;
  for (const auto& [name, factory] : registry()) commands.push_back(factory(app));

  try {
    app.parse(argc, argv);
  } catch (const CLI::Success& e) {  // --help, --version
    return app.exit(e);
  } catch (const CLI::ParseError& e) {
    app.exit(e);
    return 2;
  }
  dsv3::install_sigbus_reporter();
  for (auto& c : commands)
    if (c.app->parsed()) return c.run();
  return 2;
}
