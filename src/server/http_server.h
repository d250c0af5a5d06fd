#pragma once
// The OpenAI-compatible HTTP server: routes, authentication, request limits, streaming (SSE),
// error shapes, health and Prometheus metrics, over http_transport (connections, framing,
// limits, threads). Generation requests go to the Engine through generation_job; the pure
// translation lives in openai_request / generation_plan, the prompt in prompt, the /metrics
// text in metrics.
//
// Everything that refuses a request from its headers (method, path, CORS preflight, API key,
// readiness, Content-Type) is decided before its body is read (screen).
//
// Lifecycle: bind() then start() serve at once (/health answers 503 "loading"); set_ready()
// after the model is loaded; begin_drain() on SIGTERM (new generation requests get 503, the
// running ones finish); stop().

#include <atomic>
#include <chrono>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "base/result.h"
#include "grammar/token_mask.h"
#include "runtime/engine.h"
#include "server/forced_tool_call.h"
#include "server/openai_request.h"
#include "tokenizer/tokenizer.h"

namespace dsv3::server {

namespace http {
class Server;
struct Request;
struct Response;
}  // namespace http

struct ServerOptions {
  std::string host = "127.0.0.1";
  int port = 8000;                      // 0: any free port (see port())
  std::string api_key;                  // empty: no authentication
  size_t max_body_bytes = 4u << 20;     // larger bodies get 413, whatever their encoding
  int http_threads = 64;                // requests handled at once (a request holds one while it runs or waits)
  int max_connections = 1024;           // open connections (idle kept-alive ones included)
  std::chrono::seconds read_timeout{10};  // for a request's headers, and between reads of its body
  // CORS: browser origins allowed to call the API ("*": any); empty: no CORS headers at all.
  std::vector<std::string> allowed_origins;
  // deepseek: a reasoning model's think block comes back as reasoning_content (the default);
  // none: the text as generated, all in content (llama-server's --reasoning-format none).
  bool split_reasoning = true;
};

class OpenAIServer {
 public:
  explicit OpenAIServer(ServerOptions options);
  ~OpenAIServer();

  Status bind();
  int port() const;
  void start();  // serves on background threads
  void set_ready(Engine* engine, const Tokenizer* tokenizer, ServedModel model);
  void begin_drain();
  void stop();

 private:
  // From the request line and headers: a CORS preflight's answer, or a refusal (401, 404,
  // 405, 415, 503); none lets the body be read and the request handled.
  std::optional<http::Response> screen(const http::Request& head) const;
  void handle(const http::Request& req, http::Response& res);
  void handle_chat(const http::Request& req, http::Response& res);
  void handle_completions(const http::Request& req, http::Response& res);
  void handle_models(const http::Request& req, http::Response& res);
  void handle_metrics(http::Response& res);
  // The 401 for a missing or wrong key on /v1/*, or none.
  std::optional<http::Response> check_auth(const http::Request& head) const;
  // The Access-Control-Allow-Origin value for this request's Origin, or "" (not allowed).
  std::string cors_origin(const http::Request& req) const;
  // The body as a JSON object; on failure the response is filled and false returned.
  bool read_json_body(const http::Request& req, http::Response& res, Json* body);
  void count_response(int status);

  ServerOptions options_;
  std::unique_ptr<http::Server> http_;
  std::atomic<bool> draining_{false};
  // Written once by set_ready() before `ready_` is set; read only after `ready_` is seen set.
  std::atomic<bool> ready_{false};
  Engine* engine_ = nullptr;
  const Tokenizer* tokenizer_ = nullptr;
  // The vocabulary's token bytes in the trie constrained decoding walks (response_format).
  std::shared_ptr<const grammar::TokenVocabulary> json_vocabulary_;
  // How the chat format writes tool calls (forced tool calls use the same markup), and whether
  // its template renders a request's `tools` (else they go into the system prompt).
  ToolCallFormat tool_call_format_ = ToolCallFormat::Unknown;
  bool template_renders_tools_ = false;
  ServedModel model_;
  int64_t started_ = 0;  // Unix time of set_ready(): the model's "created"
  std::mutex metrics_mu_;
  std::map<int, uint64_t> responses_by_status_;
};

}  // namespace dsv3::server
