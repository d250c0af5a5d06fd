// dsv3: the command-line front end. Thin: parsing and printing only; the engine is in src/.

#include <csignal>
#include <cstdio>
#include <map>
#include <vector>

#include "base/mapped_file.h"
#include "base/result.h"
#include "command.h"
#include "dist/build_identity.h"
#include "dist/communicator.h"
#include "model/model.h"

namespace dsv3::cli {

static std::map<std::string, CommandFactory>& registry() {
  static std::map<std::string, CommandFactory> r;
  return r;
}

bool register_command(const char* name, CommandFactory factory) {
  registry()[name] = factory;
  return true;
}

static Communicator* g_world = nullptr;

Communicator& world() {
  static LocalCommunicator one;
  return g_world ? *g_world : one;
}

int fail(const std::string& command, const std::string& message) {
  std::fprintf(stderr, "dsv3 %s: error: %s\n", command.c_str(), message.c_str());
  return 1;
}

}  // namespace dsv3::cli

// Rank 0 runs the command; under mpirun the other ranks follow its model calls
// (Model::follow) until it quits.
static int run_command(int argc, char** argv);
static std::string own_model_dir(int argc, char** argv);

int main(int argc, char** argv) {
  using namespace dsv3::cli;
  auto world = dsv3::open_world(&argc, &argv);
  if (!world.ok()) {
    std::fprintf(stderr, "dsv3: error: %s\n", world.error().message().c_str());
    return 1;
  }
  std::unique_ptr<dsv3::Communicator> comm = std::move(world).value();
  g_world = comm.get();
  if (comm->size() > 1) {
    // Before any step crosses between ranks: the same build everywhere, or every rank stops.
    auto build = dsv3::this_build(DSV3_VERSION);
    if (!build.ok()) {
      std::fprintf(stderr, "dsv3 (rank %d): error: %s\n", comm->rank(), build.error().message().c_str());
      comm->abort(1);
    }
    if (dsv3::Status same = dsv3::check_same_build(*comm, *build); !same.ok()) {
      if (comm->is_leader()) std::fprintf(stderr, "dsv3: error: %s\n", same.error().message().c_str());
      return 1;
    }
  }
  if (!comm->is_leader()) {
    // Stopping is rank 0's to decide (a server drains first); the others quit when it says so,
    // or when mpirun ends the job.
    std::signal(SIGINT, SIG_IGN);
    std::signal(SIGTERM, SIG_IGN);
    dsv3::install_sigbus_reporter();
    if (dsv3::Status st = dsv3::Model::follow(*comm, own_model_dir(argc, argv)); !st.ok()) {
      std::fprintf(stderr, "dsv3 (rank %d): error: %s\n", comm->rank(), st.error().message().c_str());
      comm->abort(1);
    }
    return 0;
  }
  const int code = run_command(argc, argv);
  dsv3::Model::quit_followers(*comm);
  return code;
}

// The command line as rank 0 reads it: every subcommand with its options.
static std::vector<dsv3::cli::Command> add_commands(CLI::App& app) {
  std::vector<dsv3::cli::Command> commands;
  for (const auto& [name, factory] : dsv3::cli::registry()) commands.push_back(factory(app));
  return commands;
}

// A follower's own --model, "" when its command line names none (then it loads rank 0's): under
// `mpirun -np 1 dsv3 ... --model A : -np 1 dsv3 ... --model B` each machine finds the checkpoint
// where it keeps it. Everything else on a follower's command line is rank 0's to act on.
static std::string own_model_dir(int argc, char** argv) {
  CLI::App app{"dsv3"};
  app.set_version_flag("--version", "");
  std::vector<dsv3::cli::Command> commands = add_commands(app);
  try {
    app.parse(argc, argv);
  } catch (const CLI::Error&) {
    // Rank 0 reports what is wrong with its command line; a follower's need not be complete
    // (a missing required option is found after every given one was read).
  }
  for (const auto& c : commands) {
    if (!c.app->parsed()) continue;
    const CLI::Option* model = c.app->get_option_no_throw("--model");
    if (model && model->count() > 0) return model->as<std::string>();
  }
  return "";
}

static int run_command(int argc, char** argv) {
  using namespace dsv3::cli;
  CLI::App app{"dsv3: inference engine for the DeepSeek-V3 model family (V3, V3-Base, R1, V3.1, V2, V2-Lite)", "dsv3"};
  app.set_version_flag("--version", std::string("dsv3 ") + DSV3_VERSION);
  app.require_subcommand(1);

  std::vector<Command> commands = add_commands(app);

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
