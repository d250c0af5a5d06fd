// dsv3: the command-line front end. Thin: parsing and printing only; the engine is in src/.

#include <cstdio>
#include <vector>

#include "base/mapped_file.h"
#include "command.h"

namespace dsv3::cli {

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
  app.fallthrough(false);

  std::vector<Command> commands = {
      add_generate_command(app),
      add_logits_command(app),
      add_make_random_command(app),
  };

  try {
    app.parse(argc, argv);
  } catch (const CLI::CallForHelp& e) {
    return app.exit(e);
  } catch (const CLI::CallForAllHelp& e) {
    return app.exit(e);
  } catch (const CLI::CallForVersion& e) {
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
