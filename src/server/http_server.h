#pragma once
// The OpenAI-compatible HTTP server (cpp-httplib): routes, authentication, request limits,
// streaming (SSE), error shapes, health and Prometheus metrics. Generation requests go to the
// Engine through generation_job; the pure translation lives in openai_request /
// generation_plan, the prompt in prompt, the /metrics text in metrics.
//
// Lifecycle: bind() then start() serve at once (/health answers 503 "loading"); set_ready()
// after the model is loaded; begin_drain() on SIGTERM (new generation requests get 503, the
// running ones finish); stop().

#include <atomic>
#include <chrono>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "base/result.h"
#include "runtime/engine.h"
#include "server/openai_request.h"
#include "tokenizer/tokenizer.h"

namespace httplib {
class Server;
struct Request;
struct Response;
}  // namespace httplib

namespace dsv3::server {

struct ServerOptions {
  std::string host = "127.0.0.1";
  int port = 8000;                      // 0: any free port (see port())
  std::string api_key;                  // empty: no authentication
  size_t max_body_bytes = 4u << 20;     // larger bodies get 413 before parsing
  int http_threads = 64;                // concurrent connections served
  std::chrono::seconds read_timeout{10};  // slow clients (slowloris) are dropped
  // CORS: browser origins allowed to call the API ("*": any); empty: no CORS headers at all.
  std::vector<std::string> allowed_origins;
};

class OpenAIServer {
 public:
  explicit OpenAIServer(ServerOptions options);
  ~OpenAIServer();

  Status bind();
  int port() const { return port_; }
  void start();  // serves on a background thread
  void set_ready(Engine* engine, const Tokenizer* tokenizer, ServedModel model);
  void begin_drain();
  void stop();

 private:
  void handle_chat(const httplib::Request& req, httplib::Response& res);
  void handle_completions(const httplib::Request& req, httplib::Response& res);
  void handle_models(const httplib::Request& req, httplib::Response& res);
  void handle_metrics(const httplib::Request& req, httplib::Response& res);
  bool check_auth(const httplib::Request& req, httplib::Response& res);
  // Header limits (431), CORS preflight, authentication on /v1/*: true when it answered.
  bool screen(const httplib::Request& req, httplib::Response& res);
  // The Access-Control-Allow-Origin value for this request's Origin, or "" (not allowed).
  std::string cors_origin(const httplib::Request& req) const;
  // Validates the common parts of a POST: readiness, auth, content type, JSON. On failure
  // the response is filled and false returned.
  bool read_json_body(const httplib::Request& req, httplib::Response& res, Json* body);
  void count_response(int status);

  ServerOptions options_;
  std::unique_ptr<httplib::Server> http_;
  std::thread thread_;
  int port_ = 0;
  std::atomic<bool> listening_done_{false};  // listen_after_bind() has returned
  std::atomic<bool> ready_{false};
  std::atomic<bool> draining_{false};
  Engine* engine_ = nullptr;
  const Tokenizer* tokenizer_ = nullptr;
  ServedModel model_;
  int64_t started_ = 0;  // Unix time of set_ready(): the model's "created"
  std::mutex metrics_mu_;
  std::map<int, uint64_t> responses_by_status_;
};

}  // namespace dsv3::server
