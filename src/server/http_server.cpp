#include "server/http_server.h"

#include <httplib.h>
#include <sys/socket.h>

#include <algorithm>
#include <cctype>
#include <chrono>
#include <ctime>
#include <strings.h>
#include <thread>

#include "base/log.h"
#include "base/memory_stats.h"
#include "server/generation_job.h"
#include "server/metrics.h"
#include "server/prompt.h"

namespace dsv3::server {

using namespace std::chrono_literals;

namespace {

constexpr int kJsonDepthLimit = 64;
constexpr size_t kMaxHeaders = 100, kMaxHeaderBytes = 16 << 10;

std::string dump(const Json& j) { return j.dump(-1, ' ', false, Json::error_handler_t::replace); }

void send_json(httplib::Response& res, int status, const Json& body) {
  res.status = status;
  res.set_content(dump(body), "application/json");
}

void send_error(httplib::Response& res, const ApiError& e) {
  if (e.retry_after_seconds) res.set_header("Retry-After", std::to_string(*e.retry_after_seconds));
  send_json(res, e.status, e.to_json());
}

// Constant-time comparison of the presented key with the configured one (CVE-2025-59425).
bool keys_equal(const std::string& a, const std::string& b) {
  unsigned char diff = static_cast<unsigned char>(a.size() != b.size());
  for (size_t i = 0; i < a.size(); ++i) diff |= static_cast<unsigned char>(a[i] ^ b[i % (b.empty() ? 1 : b.size())]);
  return diff == 0 && !b.empty();
}

bool write_str(httplib::DataSink& sink, const std::string& s) { return sink.write(s.data(), s.size()); }

bool write_event(httplib::DataSink& sink, const Json& j) { return write_str(sink, "data: " + dump(j) + "\n\n"); }

}  // namespace

OpenAIServer::OpenAIServer(ServerOptions options) : options_(std::move(options)), http_(std::make_unique<httplib::Server>()) {
  httplib::Server& s = *http_;
  const int threads = options_.http_threads;
  s.new_task_queue = [threads] { return new httplib::ThreadPool(static_cast<size_t>(threads)); };
  // SO_REUSEADDR only: httplib's default adds SO_REUSEPORT, with which a second server on
  // the same port binds too and the kernel splits the connections between the two.
  s.set_socket_options([](socket_t sock) {
    int yes = 1;
    ::setsockopt(sock, SOL_SOCKET, SO_REUSEADDR, &yes, sizeof(yes));
  });
  s.set_payload_max_length(options_.max_body_bytes);
  s.set_read_timeout(static_cast<time_t>(options_.read_timeout.count()), 0);
  s.set_write_timeout(30, 0);
  s.set_keep_alive_max_count(1000);

  // Runs after the headers are read and before the body is. It answers requests without a
  // body only: httplib 0.11 keeps a connection open whatever the response says, so a body left
  // unread would be read as the next request. Requests with a body get the same checks in
  // their handler (read_json_body), after httplib has read it (within the 413 limit).
  s.set_pre_routing_handler([this](const httplib::Request& req, httplib::Response& res) {
    using httplib::Server;
    const bool chunked = strcasecmp(req.get_header_value("Transfer-Encoding").c_str(), "chunked") == 0;  // as httplib
    const bool has_length = req.has_header("Content-Length");
    // httplib reads a body for these methods; with neither a length nor chunked encoding it
    // would read until the client closes (the read timeout). Nothing was sent, so answer now.
    const bool reads_body = req.method == "POST" || req.method == "PUT" || req.method == "PATCH" ||
                            req.method == "DELETE" || req.method == "PRI";
    if (reads_body && !has_length && !chunked) {
      if (req.method == "DELETE") {  // no route takes DELETE
        res.set_header("Allow", "GET, POST");
        send_error(res, api_error(405, "method DELETE is not allowed here", "invalid_request_error",
                                     "method_not_allowed"));
      } else {
        send_error(res, api_error(411, "a request body needs a Content-Length (or chunked encoding)",
                                     "invalid_request_error", "length_required"));
      }
      return Server::HandlerResponse::Handled;
    }
    const bool has_body = chunked || (has_length && std::strtoull(req.get_header_value("Content-Length").c_str(), nullptr, 10) > 0);
    if (has_body) return Server::HandlerResponse::Unhandled;
    return screen(req, res) ? Server::HandlerResponse::Handled : Server::HandlerResponse::Unhandled;
  });
  s.set_error_handler(httplib::Server::HandlerWithResponse([](const httplib::Request&, httplib::Response& res) {
    if (!res.body.empty()) return httplib::Server::HandlerResponse::Unhandled;
    switch (res.status) {
      case 404: send_error(res, api_error(404, "not found", "invalid_request_error", "not_found")); break;
      case 413: send_error(res, api_error(413, "request body too large", "invalid_request_error", "payload_too_large")); break;
      case 414: send_error(res, api_error(414, "request URI too long", "invalid_request_error")); break;
      default: send_error(res, api_error(res.status, "bad request", "invalid_request_error"));
    }
    return httplib::Server::HandlerResponse::Handled;
  }));
  s.set_exception_handler([](const httplib::Request&, httplib::Response& res, std::exception_ptr ep) {
    std::string what = "internal error";
    try {
      std::rethrow_exception(ep);
    } catch (const std::exception& e) {
      what = e.what();
    } catch (...) {
    }
    DSV3_LOG_ERROR("request failed: %s", what.c_str());
    send_error(res, api_error(500, "internal error", "server_error"));
  });
  // Every response (errors and streams included) tells an allowed browser origin it may read it.
  s.set_post_routing_handler([this](const httplib::Request& req, httplib::Response& res) {
    if (options_.allowed_origins.empty()) return;
    const std::string origin = cors_origin(req);
    if (origin.empty()) return;
    res.set_header("Access-Control-Allow-Origin", origin);
    if (origin != "*") res.set_header("Vary", "Origin");
  });
  s.set_logger([this](const httplib::Request&, const httplib::Response& res) { count_response(res.status); });

  s.Get("/health", [this](const httplib::Request&, httplib::Response& res) {
    if (draining_) send_json(res, 503, {{"status", "draining"}});
    else if (!ready_) send_json(res, 503, {{"status", "loading"}});
    else send_json(res, 200, {{"status", "ok"}});
  });
  s.Get("/metrics", [this](const httplib::Request& req, httplib::Response& res) { handle_metrics(req, res); });
  s.Get("/v1/models", [this](const httplib::Request& req, httplib::Response& res) { handle_models(req, res); });
  s.Get("/v1/models/(.+)", [this](const httplib::Request& req, httplib::Response& res) { handle_models(req, res); });
  s.Post("/v1/chat/completions", [this](const httplib::Request& req, httplib::Response& res) { handle_chat(req, res); });
  s.Post("/v1/completions", [this](const httplib::Request& req, httplib::Response& res) { handle_completions(req, res); });

  // Known paths with the wrong method: 405 with Allow.
  auto method_not_allowed = [](const char* allow) {
    return [allow](const httplib::Request& req, httplib::Response& res) {
      res.set_header("Allow", allow);
      send_error(res, api_error(405, "method " + bounded_text(req.method, 20) + " is not allowed here (use " + allow + ")",
                                   "invalid_request_error", "method_not_allowed"));
    };
  };
  for (const char* path : {"/v1/chat/completions", "/v1/completions"}) {
    s.Get(path, method_not_allowed("POST"));
    s.Put(path, method_not_allowed("POST"));
    s.Delete(path, method_not_allowed("POST"));
    s.Patch(path, method_not_allowed("POST"));
  }
  for (const char* path : {"/v1/models", "/health", "/metrics"}) {
    s.Post(path, method_not_allowed("GET"));
    s.Put(path, method_not_allowed("GET"));
    s.Delete(path, method_not_allowed("GET"));
    s.Patch(path, method_not_allowed("GET"));
  }
}

OpenAIServer::~OpenAIServer() { stop(); }

Status OpenAIServer::bind() {
  if (options_.port == 0) {
    port_ = http_->bind_to_any_port(options_.host.c_str());
    if (port_ <= 0) return Error("cannot bind to " + options_.host + " (any port)");
  } else {
    if (!http_->bind_to_port(options_.host.c_str(), options_.port))
      return error_f("cannot listen on %s:%d (address in use, or not a local address?)", options_.host.c_str(), options_.port);
    port_ = options_.port;
  }
  return {};
}

void OpenAIServer::start() {
  listening_done_ = false;
  thread_ = std::thread([this] {
    http_->listen_after_bind();
    listening_done_ = true;
  });
}

void OpenAIServer::set_ready(Engine* engine, const Tokenizer* tokenizer, ServedModel model) {
  engine_ = engine;
  tokenizer_ = tokenizer;
  model_ = std::move(model);
  started_ = static_cast<int64_t>(std::time(nullptr));
  ready_ = true;
}

void OpenAIServer::begin_drain() { draining_ = true; }

void OpenAIServer::stop() {
  // httplib's stop() does nothing until the listening thread has marked itself running, so a
  // stop that comes first would leave it blocked in accept() forever: repeat until it returns.
  if (thread_.joinable()) {
    while (!listening_done_) {
      http_->stop();
      std::this_thread::sleep_for(std::chrono::milliseconds(1));
    }
    thread_.join();
  } else if (http_) {
    http_->stop();
  }
}

void OpenAIServer::count_response(int status) {
  std::lock_guard<std::mutex> lock(metrics_mu_);
  ++responses_by_status_[status];
}

bool OpenAIServer::screen(const httplib::Request& req, httplib::Response& res) {
  // A browser's CORS preflight: answered before authentication (browsers send no
  // credentials with it).
  if (req.method == "OPTIONS" && !options_.allowed_origins.empty()) {
    if (cors_origin(req).empty()) {
      send_error(res, api_error(403, "this origin is not allowed (--allowed-origins)", "invalid_request_error",
                                   "origin_not_allowed"));
      return true;
    }
    res.status = 204;
    res.set_header("Access-Control-Allow-Methods", "GET, POST, OPTIONS");
    const std::string asked = req.get_header_value("Access-Control-Request-Headers");
    res.set_header("Access-Control-Allow-Headers", asked.empty() ? "Authorization, Content-Type" : bounded_text(asked, 1024));
    res.set_header("Access-Control-Max-Age", "600");
    return true;
  }
  // Header limits (431), on what the client sent (httplib adds REMOTE_ADDR, REMOTE_PORT,
  // LOCAL_ADDR and LOCAL_PORT). This answers; it does not bound memory: httplib has read
  // every line already.
  size_t count = 0, bytes = 0;
  for (const auto& [name, value] : req.headers) {
    if (name == "REMOTE_ADDR" || name == "REMOTE_PORT" || name == "LOCAL_ADDR" || name == "LOCAL_PORT") continue;
    ++count;
    bytes += name.size() + value.size() + 4;
  }
  if (count > kMaxHeaders || bytes > kMaxHeaderBytes) {
    send_error(res, api_error(431, str_f("request headers too large (at most %zu headers, %zu bytes)", kMaxHeaders,
                                            kMaxHeaderBytes),
                                 "invalid_request_error", "headers_too_large"));
    return true;
  }
  return req.path.rfind("/v1/", 0) == 0 && !check_auth(req, res);
}

std::string OpenAIServer::cors_origin(const httplib::Request& req) const {
  const std::string origin = req.get_header_value("Origin");
  for (const std::string& allowed : options_.allowed_origins) {
    if (allowed == "*") return "*";
    if (!origin.empty() && origin == allowed) return origin;
  }
  return "";
}

bool OpenAIServer::check_auth(const httplib::Request& req, httplib::Response& res) {
  if (options_.api_key.empty()) return true;
  std::string h = req.get_header_value("Authorization");
  // The scheme is case-insensitive (RFC 7235), the key is not.
  const bool bearer = h.size() > 7 && h[6] == ' ' && std::equal(h.begin(), h.begin() + 6, "bearer", [](char a, char b) {
                        return std::tolower(static_cast<unsigned char>(a)) == b;
                      });
  std::string key = bearer ? h.substr(7) : std::string();
  if (keys_equal(key, options_.api_key)) return true;
  res.set_header("WWW-Authenticate", "Bearer");
  send_error(res, api_error(401, "invalid or missing API key (Authorization: Bearer <key>)", "authentication_error",
                               "invalid_api_key"));
  return false;
}

bool OpenAIServer::read_json_body(const httplib::Request& req, httplib::Response& res, Json* body) {
  if (screen(req, res)) return false;  // a request with a body was not screened before routing
  if (draining_) {
    send_error(res, api_error(503, "the server is shutting down", "server_error", "shutting_down"));
    return false;
  }
  if (!ready_) {
    send_error(res, api_error(503, "the model is still loading", "server_error", "loading"));
    return false;
  }
  std::string ct = req.get_header_value("Content-Type");
  if (!ct.empty() && ct.find("application/json") == std::string::npos) {
    send_error(res, api_error(415, "Content-Type must be application/json", "invalid_request_error",
                                 "unsupported_media_type"));
    return false;
  }
  if (req.body.empty()) {
    send_error(res, invalid_request("the request body is empty (a JSON object is required)"));
    return false;
  }
  auto parsed = parse_json(req.body, "request body", JsonLimits{kJsonDepthLimit, /*reject_duplicate_keys=*/true});
  if (!parsed.ok()) {
    send_error(res, invalid_request(bounded_text(parsed.error().message(), 300)));
    return false;
  }
  *body = std::move(parsed).value();
  return true;
}

namespace {

// Server-sent events: each chunk as it comes, a comment line after a second of silence (it
// also finds a client that left, whose generation is then cancelled), then the usage chunk
// if asked for and [DONE].
void stream_events(std::shared_ptr<GenerationJob> job, bool include_usage, httplib::Response& res) {
  res.set_header("Cache-Control", "no-cache");
  res.set_header("X-Accel-Buffering", "no");
  res.set_chunked_content_provider("text/event-stream", [job, include_usage](size_t, httplib::DataSink& sink) {
    auto last_write = std::chrono::steady_clock::now();
    while (!job->done()) {
      std::vector<Json> chunks = job->poll_chunks(100ms);
      for (const Json& c : chunks)
        if (!write_event(sink, c)) {
          job->cancel_all();  // client gone: free the slots
          return false;
        }
      auto now = std::chrono::steady_clock::now();
      if (!chunks.empty()) {
        last_write = now;
      } else if (now - last_write > 1s) {
        if (!write_str(sink, ": keep-alive\n\n")) {
          job->cancel_all();
          return false;
        }
        last_write = now;
      }
    }
    // The 200 status is sent already: an engine failure is reported as an error event.
    if (auto e = job->failure()) write_event(sink, e->to_json());
    if (include_usage) write_event(sink, job->usage_chunk());
    write_str(sink, "data: [DONE]\n\n");
    sink.done();
    return true;
  });
}

// Non-streamed: short requests answer directly with a proper status; longer ones switch to
// a chunked body whose leading whitespace heartbeats (valid before JSON) detect a client
// that disconnected, so its generation is cancelled.
void respond_when_done(std::shared_ptr<GenerationJob> job, httplib::Response& res) {
  auto deadline = std::chrono::steady_clock::now() + 200ms;
  while (!job->done() && std::chrono::steady_clock::now() < deadline) job->poll(20ms);
  if (job->done()) {
    if (auto e = job->failure()) return send_error(res, *e);
    return send_json(res, 200, job->final_response());
  }
  res.set_chunked_content_provider("application/json", [job](size_t, httplib::DataSink& sink) {
    while (!job->done()) {
      job->poll(200ms);
      if (!job->done() && !write_str(sink, " ")) {
        job->cancel_all();
        return false;
      }
    }
    Json body = job->failure() ? job->failure()->to_json() : job->final_response();
    write_str(sink, dump(body));
    sink.done();
    return true;
  });
}

void run_generation(Engine& engine, const Tokenizer& tok, const ServedModel& model, const PreparedGeneration& p,
                    httplib::Response& res) {
  std::shared_ptr<GenerationJob> job;
  if (auto e = start_generation(engine, tok, model, p, &job)) return send_error(res, *e);
  if (p.gen.stream) return stream_events(job, p.gen.include_usage, res);
  respond_when_done(job, res);
}

}  // namespace

void OpenAIServer::handle_chat(const httplib::Request& req, httplib::Response& res) {
  Json body;
  if (!read_json_body(req, res, &body)) return;
  ChatRequest cr;
  if (auto e = parse_chat_request(body, model_, &cr)) return send_error(res, *e);
  ChatPrompt prompt;
  if (auto e = build_chat_prompt(*tokenizer_, cr, &prompt)) return send_error(res, *e);
  PreparedGeneration p{.kind = JobKind::Chat,
                       .prompts = {std::move(prompt.ids)},
                       .gen = cr.gen,
                       .reasoning = true,
                       .opens_reasoning = prompt.opens_reasoning,
                       .prompt_param = "messages"};
  run_generation(*engine_, *tokenizer_, model_, p, res);
}

void OpenAIServer::handle_completions(const httplib::Request& req, httplib::Response& res) {
  Json body;
  if (!read_json_body(req, res, &body)) return;
  CompletionRequest cr;
  if (auto e = parse_completion_request(body, model_, &cr)) return send_error(res, *e);
  PreparedGeneration p{.kind = JobKind::Completion, .gen = cr.gen, .prompt_param = "prompt"};
  for (const auto& pr : cr.prompts) {
    p.prompts.push_back(pr.text ? encode_completion_prompt(*tokenizer_, *pr.text) : pr.ids);
    if (!cr.gen.echo) continue;
    if (pr.text) {
      p.echo_texts.push_back(*pr.text);
    } else {
      auto text = tokenizer_->decode(pr.ids, /*skip_special_tokens=*/false);
      p.echo_texts.push_back(text.ok() ? lossy_utf8(*text) : std::string());
    }
  }
  run_generation(*engine_, *tokenizer_, model_, p, res);
}

void OpenAIServer::handle_models(const httplib::Request& req, httplib::Response& res) {
  if (!ready_) return send_error(res, api_error(503, "the model is still loading", "server_error", "loading"));
  Json m = {{"id", model_.id}, {"object", "model"}, {"created", started_}, {"owned_by", "dsv3"},
            {"max_model_len", model_.context}};
  if (req.matches.size() < 2) return send_json(res, 200, {{"object", "list"}, {"data", Json::array({m})}});
  // GET /v1/models/{id} (the client libraries' models.retrieve).
  if (req.matches[1] == model_.id) return send_json(res, 200, m);
  ApiError e = api_error(404, "The model '" + bounded_text(req.matches[1], 80) + "' does not exist", "invalid_request_error",
                            "model_not_found");
  e.param = "model";
  send_error(res, e);
}

void OpenAIServer::handle_metrics(const httplib::Request&, httplib::Response& res) {
  MetricsSnapshot snapshot;
  snapshot.ready = ready_ && !draining_;
  if (engine_) snapshot.engine = engine_->stats();
  snapshot.memory = memory_stats();
  {
    std::lock_guard<std::mutex> lock(metrics_mu_);
    snapshot.responses_by_status = responses_by_status_;
  }
  res.set_content(render_metrics(snapshot), "text/plain; version=0.0.4");
}

}  // namespace dsv3::server
