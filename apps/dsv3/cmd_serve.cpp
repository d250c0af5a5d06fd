// dsv3 serve: the OpenAI-compatible HTTP server with continuous batching.

#include <malloc.h>
#include <pthread.h>
#include <signal.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <cstdio>
#include <filesystem>
#include <memory>
#include <mutex>
#include <thread>
#include <vector>

#include "command.h"
#include "common.h"
#include "runtime/engine.h"
#include "server/http_server.h"
#include "tokenizer/tokenizer.h"

namespace dsv3::cli {
namespace {

struct ServeArgs {
  ModelArgs model;
  SpeculativeArgs speculative;
  std::string host = "127.0.0.1";
  int port = 8000;
  std::string api_key;
  int max_batch = 16;
  int max_queue = 64;
  int64_t max_step_tokens = 256;
  std::string served_name;
  int drain_seconds = 30;
  size_t max_body_mb = 4;
  uint64_t prefix_cache_mb = 0;
  int http_threads = 0;
  std::vector<std::string> allowed_origins;
  std::string tokenizer;
  std::string reasoning_format = "deepseek";
};

// Signals are taken by one thread (sigwait): the first SIGINT/SIGTERM asks for a graceful
// drain, a second one exits at once.
class ShutdownSignal {
 public:
  ShutdownSignal() {
    sigemptyset(&set_);
    sigaddset(&set_, SIGINT);
    sigaddset(&set_, SIGTERM);
    pthread_sigmask(SIG_BLOCK, &set_, nullptr);  // inherited by every thread started later
    thread_ = std::thread([this] {
      for (;;) {
        int sig = 0;
        if (sigwait(&set_, &sig) != 0) continue;
        if (requested_.exchange(true)) {
          std::fprintf(stderr, "dsv3 serve: second signal, exiting now\n");
          _exit(130);
        }
        std::fprintf(stderr, "dsv3 serve: %s received, draining (send again to exit at once)\n",
                     sig == SIGINT ? "SIGINT" : "SIGTERM");
        cv_.notify_all();
      }
    });
    thread_.detach();
  }
  bool requested() const { return requested_.load(); }
  void wait() {
    std::unique_lock<std::mutex> lock(mu_);
    cv_.wait(lock, [&] { return requested_.load(); });
  }

 private:
  sigset_t set_;
  std::thread thread_;
  std::atomic<bool> requested_{false};
  std::mutex mu_;
  std::condition_variable cv_;
};

// One malloc arena for the whole process. glibc gives threads arenas of their own (up to 8 per
// core) and keeps, in each, free memory at the top of its heap up to a threshold that grows
// with the largest block freed (to 64 MiB): after a few 4 MiB request bodies, parsed on
// different handler threads, the server stayed hundreds of MB above its baseline. With one
// arena, what a request freed is at the top of one heap, which malloc_trim (after large
// requests, and when the engine goes idle) returns. Fixing the thresholds instead returned
// the memory too but mapped and unmapped the engine's per-step buffers at every step (8
// clients on the default model: 2.5x slower); one arena measured as fast as the default.
void return_freed_memory_promptly() { mallopt(M_ARENA_MAX, 1); }

int run_serve(const ServeArgs& a) {
  ::signal(SIGPIPE, SIG_IGN);
  return_freed_memory_promptly();
  ShutdownSignal signals;
  server::ServerOptions so;
  so.host = a.host;
  so.port = a.port;
  so.api_key = a.api_key;
  so.max_body_bytes = a.max_body_mb << 20;
  so.allowed_origins = a.allowed_origins;
  so.split_reasoning = a.reasoning_format == "deepseek";
  // A request holds a handler thread while it runs or waits in the engine's queue: enough
  // threads for a full batch and a full queue (so that the queue's 429 can happen at all) and
  // more for /health, /metrics and bad requests. Connections that are idle or still sending
  // their request hold none. The threads start up front: at most kMaxDefaultThreads unless
  // asked for.
  constexpr int kMaxDefaultThreads = 1024;
  so.http_threads = a.http_threads > 0 ? a.http_threads
                                        : std::clamp(a.max_batch + a.max_queue + 64, 128, kMaxDefaultThreads);
  if (a.max_batch + a.max_queue + 1 > so.http_threads)
    std::fprintf(stderr, "dsv3 serve: note: %d HTTP threads hold at most %d waiting requests; the rest wait for a "
                 "handler thread instead of getting 429 (--http-threads)\n",
                 so.http_threads, std::max(0, so.http_threads - a.max_batch - 1));
  server::OpenAIServer http(so);
  if (auto st = http.bind(); !st.ok()) return fail("serve", st.error().message());
  http.start();
  std::fprintf(stderr, "dsv3 serve: listening on http://%s:%d (loading the model; /health answers 503 until ready)\n",
               a.host.c_str(), http.port());

  auto dir = resolve_model_dir(a.model.model);
  if (!dir.ok()) return fail("serve", dir.error().message());
  ModelArgs margs = a.model;
  margs.model = *dir;
  auto tokenizer = Tokenizer::load(a.tokenizer.empty() ? *dir : a.tokenizer);
  if (!tokenizer.ok()) return fail("serve", tokenizer.error().message());
  if (!(*tokenizer)->has_chat_format())  // refused at startup, not at the first request
    return fail("serve", "tokenizer_config.json has no chat_template: /v1/chat/completions could not work "
                         "(point --tokenizer at a directory whose tokenizer_config.json has one)");
  auto model = load_model(margs, a.speculative.mtp);
  if (!model.ok()) return fail("serve", model.error().message());
  if (signals.requested()) return 0;
  // A tokenizer with ids beyond the model's vocabulary: refused at startup, not as a 400 on
  // every chat request.
  if (Status st = check_tokenizer_fits(**tokenizer, **model, a.tokenizer.empty() ? *dir : a.tokenizer); !st.ok())
    return fail("serve", st.error().message());

  EngineOptions eo;
  apply_speculative(a.speculative, &eo);
  eo.max_batch = a.max_batch;
  eo.max_queue = a.max_queue;
  eo.max_step_tokens = a.max_step_tokens;
  eo.prefix_cache_bytes = a.prefix_cache_mb << 20;
  Engine engine(**model, eo);
  server::ServedModel served;
  served.id = !a.served_name.empty() ? a.served_name
              : a.model.model.empty() ? "dsv3-default"
                                      : std::filesystem::path(*dir).filename().string();
  if (served.id.empty()) served.id = "dsv3";
  served.vocab_size = (*model)->vocab_size();
  served.context = (*model)->max_context();
  http.set_ready(&engine, tokenizer->get(), served);
  std::fprintf(stderr, "dsv3 serve: ready: model '%s', context %lld tokens, batch %d, queue %d, prefix cache %s\n",
               served.id.c_str(), static_cast<long long>(served.context), a.max_batch, a.max_queue,
               a.prefix_cache_mb ? str_f("%llu MiB", static_cast<unsigned long long>(a.prefix_cache_mb)).c_str() : "off");

  signals.wait();
  http.begin_drain();
  engine.shutdown(std::chrono::seconds(a.drain_seconds));
  http.stop();
  std::fprintf(stderr, "dsv3 serve: stopped\n");
  return 0;
}

Command add_serve(CLI::App& root) {
  auto args = std::make_shared<ServeArgs>();
  CLI::App* app = root.add_subcommand("serve", "OpenAI-compatible HTTP server (chat/completions, streaming, continuous batching)");
  add_model_options(app, args->model);
  add_speculative_options(app, args->speculative);
  args->model.ctx = 16384;
  app->add_option("--host", args->host, "Address to listen on");
  app->add_option("--port", args->port, "Port (0: any free port)")->check(CLI::Range(0, 65535));
  app->add_option("--api-key", args->api_key, "Require 'Authorization: Bearer KEY' on /v1/* (also DSV3_API_KEY)")
      ->envname("DSV3_API_KEY");
  app->add_option("--max-batch", args->max_batch, "Sequences decoded together")->check(CLI::Range(1, 4096));
  app->add_option("--max-queue", args->max_queue, "Requests waiting beyond the batch before 429")->check(CLI::Range(0, 1 << 20));
  app->add_option("--max-step-tokens", args->max_step_tokens, "Tokens per engine step (prefill chunk budget)")
      ->check(CLI::Range(int64_t(1), int64_t(1) << 20));
  app->add_option("--served-model-name", args->served_name, "Model id in /v1/models (default: the model directory's name)");
  app->add_option("--drain-timeout", args->drain_seconds, "Seconds to let running requests finish on SIGTERM")
      ->check(CLI::Range(0, 86400));
  app->add_option("--tokenizer", args->tokenizer, "Directory with tokenizer.json / tokenizer_config.json (default: --model)");
  app->add_option("--prefix-cache-mb", args->prefix_cache_mb,
                  "Keep finished requests' KV caches, up to this many MiB, so that later prompts starting with the "
                  "same tokens (a chat's history, a shared system prompt) skip their prefill (0: off)")
      ->check(CLI::Range(uint64_t(0), uint64_t(1) << 30));
  app->add_option("--allowed-origins", args->allowed_origins,
                  "Browser origins allowed to call the API (CORS), comma-separated, or '*' for any (default: none)")
      ->delimiter(',');
  app->add_option("--http-threads", args->http_threads,
                  "Requests handled at once (default: max-batch + max-queue + 64, within [128, 1024])")
      ->check(CLI::Range(0, 8192));
  app->add_option("--reasoning-format", args->reasoning_format,
                  "deepseek: a reasoning model's text up to </think> comes back as reasoning_content; none: all of it "
                  "in content, as generated")
      ->check(CLI::IsMember({"deepseek", "none"}));
  app->add_option("--max-body-mb", args->max_body_mb, "Largest request body in MiB (larger: 413)")->check(CLI::Range(1, 1024));
  return {app, [args] { return run_serve(*args); }};
}

}  // namespace

DSV3_REGISTER_COMMAND("serve", add_serve);

}  // namespace dsv3::cli
