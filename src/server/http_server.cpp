#include "server/http_server.h"

#include <strings.h>

#include <algorithm>
#include <cctype>
#include <chrono>
#include <ctime>

#include "base/log.h"
#include "base/memory_stats.h"
#include "server/generation_job.h"
#include "server/http_transport.h"
#include "server/json_vocabulary.h"
#include "server/metrics.h"
#include "server/prompt.h"
#include "server/tool_prompt.h"
#include "server/web_page.h"

namespace dsv3::server {

using namespace std::chrono_literals;

namespace {

constexpr int kJsonDepthLimit = 64;
constexpr size_t kMaxHeaders = 100, kMaxHeaderBytes = 16 << 10;

std::string dump(const Json& j) { return j.dump(-1, ' ', false, Json::error_handler_t::replace); }

void send_json(http::Response& res, int status, const Json& body) {
  res.status = status;
  res.content_type = "application/json";
  res.body = dump(body);
}

void send_error(http::Response& res, const ApiError& e) {
  if (e.retry_after_seconds) res.set_header("Retry-After", std::to_string(*e.retry_after_seconds));
  send_json(res, e.status, e.to_json());
}

http::Response error_response(const ApiError& e) {
  http::Response res;
  send_error(res, e);
  return res;
}

// The transport's own refusals, in OpenAI's error shape.
http::Response transport_error(int status, const std::string& message) {
  const char* code = nullptr;
  switch (status) {
    case 411: code = "length_required"; break;
    case 413: code = "payload_too_large"; break;
    case 414: code = "uri_too_long"; break;
    case 431: code = "headers_too_large"; break;
    case 501: code = "not_implemented"; break;
    default: break;
  }
  ApiError e = status >= 500 && status != 501 && status != 505
                   ? api_error(status, message, "server_error")
                   : api_error(status, message, "invalid_request_error");
  if (code) e.code = code;
  return error_response(e);
}

// Constant-time comparison of the presented key with the configured one (CVE-2025-59425).
bool keys_equal(const std::string& a, const std::string& b) {
  unsigned char diff = static_cast<unsigned char>(a.size() != b.size());
  for (size_t i = 0; i < a.size(); ++i) diff |= static_cast<unsigned char>(a[i] ^ b[i % (b.empty() ? 1 : b.size())]);
  return diff == 0 && !b.empty();
}

// The key of an "Authorization: Bearer <key>" value, or none. The scheme is matched
// case-insensitively and may be followed by any number of spaces (RFC 7235: 1*SP).
std::optional<std::string> bearer_key(const std::string& h) {
  const size_t space = h.find(' ');
  if (space != 6 || strncasecmp(h.c_str(), "bearer", 6) != 0) return std::nullopt;
  const size_t key = h.find_first_not_of(' ', space);
  if (key == std::string::npos) return std::nullopt;
  return h.substr(key);
}

// application/json, with parameters (charset) or without; the type is case-insensitive.
bool is_json_media_type(const std::string& content_type) {
  std::string type = content_type.substr(0, content_type.find(';'));
  while (!type.empty() && (type.back() == ' ' || type.back() == '\t')) type.pop_back();
  while (!type.empty() && (type.front() == ' ' || type.front() == '\t')) type.erase(type.begin());
  return strcasecmp(type.c_str(), "application/json") == 0;
}

bool write_str(http::ChunkSink& sink, const std::string& s) { return sink.write(s); }

bool write_event(http::ChunkSink& sink, const Json& j) { return write_str(sink, "data: " + dump(j) + "\n\n"); }

// The routes: a path and the methods it answers.
enum class Route { None, Page, Health, Metrics, Models, Model, Chat, Completions };

const WebPageFile* page_file(const std::string& path) {
  for (const WebPageFile& f : web_page_files())
    if (f.path == path) return &f;
  return nullptr;
}

// The chat page's files. The page holds no secret (the API key rule applies to /v1/*, which
// the page calls), so it is open like /health. Its policy lets it run only its own script and
// talk only to this server, a second guard behind its escaping of the model's text.
void send_page_file(http::Response& res, const WebPageFile& f) {
  res.status = 200;
  res.content_type = std::string(f.content_type);
  res.body = std::string(f.body);
  res.set_header("Cache-Control", "no-cache");
  res.set_header("X-Content-Type-Options", "nosniff");
  res.set_header("Content-Security-Policy",
                 "default-src 'self'; img-src 'self' data:; object-src 'none'; base-uri 'none'; frame-ancestors 'none'");
}

Route route_of(const std::string& path) {
  if (page_file(path)) return Route::Page;
  if (path == "/health") return Route::Health;
  if (path == "/metrics") return Route::Metrics;
  if (path == "/v1/models") return Route::Models;
  if (path.size() > 11 && path.rfind("/v1/models/", 0) == 0) return Route::Model;
  if (path == "/v1/chat/completions") return Route::Chat;
  if (path == "/v1/completions") return Route::Completions;
  return Route::None;
}

bool is_post_route(Route r) { return r == Route::Chat || r == Route::Completions; }

}  // namespace

OpenAIServer::OpenAIServer(ServerOptions options) : options_(std::move(options)) {
  http::Limits limits;
  limits.max_body_bytes = options_.max_body_bytes;
  limits.max_headers = kMaxHeaders;
  limits.max_header_bytes = kMaxHeaderBytes;
  limits.header_timeout = options_.read_timeout;
  limits.body_read_timeout = options_.read_timeout;
  limits.write_timeout = 30s;
  limits.workers = options_.http_threads;
  limits.max_connections = options_.max_connections;
  http::Handlers h;
  h.screen = [this](const http::Request& head) { return screen(head); };
  h.handle = [this](const http::Request& req, http::Response& res) { handle(req, res); };
  h.error = transport_error;
  // Every response (errors and streams included) tells an allowed browser origin it may read
  // it, and is counted for /metrics.
  h.finish = [this](const http::Request* head, http::Response& res) {
    if (head && !options_.allowed_origins.empty()) {
      const std::string origin = cors_origin(*head);
      if (!origin.empty()) {
        res.set_header("Access-Control-Allow-Origin", origin);
        if (origin != "*") res.set_header("Vary", "Origin");
      }
    }
    count_response(res.status);
  };
  http_ = std::make_unique<http::Server>(limits, std::move(h));
}

OpenAIServer::~OpenAIServer() { stop(); }

Status OpenAIServer::bind() { return http_->bind(options_.host, options_.port); }

int OpenAIServer::port() const { return http_->port(); }

void OpenAIServer::start() { http_->start(); }

void OpenAIServer::set_ready(Engine* engine, const Tokenizer* tokenizer, ServedModel model) {
  engine_ = engine;
  tokenizer_ = tokenizer;
  json_vocabulary_ = json_token_vocabulary(*tokenizer);
  tool_call_format_ = probe_tool_call_format(*tokenizer);
  template_renders_tools_ = template_renders_tools(*tokenizer);
  model_ = std::move(model);
  started_ = static_cast<int64_t>(std::time(nullptr));
  ready_ = true;  // publishes the fields above to the threads that see it set
}

void OpenAIServer::begin_drain() { draining_ = true; }

void OpenAIServer::stop() {
  if (http_) http_->stop();
}

void OpenAIServer::count_response(int status) {
  std::lock_guard<std::mutex> lock(metrics_mu_);
  ++responses_by_status_[status];
}

std::optional<http::Response> OpenAIServer::screen(const http::Request& head) const {
  // A browser's CORS preflight: answered before authentication (browsers send no
  // credentials with it).
  if (head.method == "OPTIONS" && !options_.allowed_origins.empty()) {
    if (cors_origin(head).empty())
      return error_response(api_error(403, "this origin is not allowed (--allowed-origins)", "invalid_request_error",
                                      "origin_not_allowed"));
    http::Response res;
    res.status = 204;
    res.set_header("Access-Control-Allow-Methods", "GET, POST, OPTIONS");
    const std::string asked = head.header("Access-Control-Request-Headers");
    res.set_header("Access-Control-Allow-Headers", asked.empty() ? "Authorization, Content-Type" : bounded_text(asked, 1024));
    res.set_header("Access-Control-Max-Age", "600");
    return res;
  }
  const Route route = route_of(head.path);
  if (route == Route::None) return error_response(api_error(404, "not found", "invalid_request_error", "not_found"));
  // Known paths with the wrong method: 405 with Allow.
  const bool post = is_post_route(route);
  const bool allowed = post ? head.method == "POST" : head.method == "GET" || head.method == "HEAD";
  if (!allowed) {
    http::Response res = error_response(api_error(
        405, "method " + bounded_text(head.method, 20) + " is not allowed here (use " + (post ? "POST" : "GET") + ")",
        "invalid_request_error", "method_not_allowed"));
    res.set_header("Allow", post ? "POST" : "GET, HEAD");
    return res;
  }
  if (head.path.rfind("/v1/", 0) == 0)
    if (auto refused = check_auth(head)) return refused;
  if (!post) return std::nullopt;
  if (draining_) return error_response(api_error(503, "the server is shutting down", "server_error", "shutting_down"));
  if (!ready_) return error_response(api_error(503, "the model is still loading", "server_error", "loading"));
  const std::string ct = head.header("Content-Type");
  if (!ct.empty() && !is_json_media_type(ct))
    return error_response(api_error(415, "Content-Type must be application/json", "invalid_request_error",
                                    "unsupported_media_type"));
  return std::nullopt;
}

void OpenAIServer::handle(const http::Request& req, http::Response& res) {
  switch (route_of(req.path)) {
    case Route::Page: return send_page_file(res, *page_file(req.path));
    case Route::Health:
      if (draining_) return send_json(res, 503, {{"status", "draining"}});
      if (!ready_) return send_json(res, 503, {{"status", "loading"}});
      return send_json(res, 200, {{"status", "ok"}});
    case Route::Metrics: return handle_metrics(res);
    case Route::Models:
    case Route::Model: return handle_models(req, res);
    case Route::Chat: return handle_chat(req, res);
    case Route::Completions: return handle_completions(req, res);
    case Route::None: break;
  }
  send_error(res, api_error(404, "not found", "invalid_request_error", "not_found"));
}

std::string OpenAIServer::cors_origin(const http::Request& req) const {
  const std::string origin = req.header("Origin");
  for (const std::string& allowed : options_.allowed_origins) {
    if (allowed == "*") return "*";
    if (!origin.empty() && origin == allowed) return origin;
  }
  return "";
}

std::optional<http::Response> OpenAIServer::check_auth(const http::Request& head) const {
  if (options_.api_key.empty()) return std::nullopt;
  const std::optional<std::string> key = bearer_key(head.header("Authorization"));
  if (keys_equal(key.value_or(""), options_.api_key)) return std::nullopt;
  http::Response res = error_response(api_error(401, "invalid or missing API key (Authorization: Bearer <key>)",
                                                "authentication_error", "invalid_api_key"));
  res.set_header("WWW-Authenticate", "Bearer");
  return res;
}

bool OpenAIServer::read_json_body(const http::Request& req, http::Response& res, Json* body) {
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
void stream_events(std::shared_ptr<GenerationJob> job, bool include_usage, http::Response& res) {
  res.set_header("Cache-Control", "no-cache");
  res.set_header("X-Accel-Buffering", "no");
  res.content_type = "text/event-stream";
  res.stream = [job, include_usage](http::ChunkSink& sink) {
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
    return write_str(sink, "data: [DONE]\n\n");
  };
}

// Non-streamed: short requests answer directly with a proper status; longer ones switch to
// a chunked body whose leading whitespace heartbeats (valid before JSON) detect a client
// that disconnected, so its generation is cancelled.
void respond_when_done(std::shared_ptr<GenerationJob> job, http::Response& res) {
  auto deadline = std::chrono::steady_clock::now() + 200ms;
  while (!job->done() && std::chrono::steady_clock::now() < deadline) job->poll(20ms);
  if (job->done()) {
    if (auto e = job->failure()) return send_error(res, *e);
    return send_json(res, 200, job->final_response());
  }
  res.content_type = "application/json";
  res.stream = [job](http::ChunkSink& sink) {
    while (!job->done()) {
      job->poll(200ms);
      if (!job->done() && !write_str(sink, " ")) {
        job->cancel_all();
        return false;
      }
    }
    Json body = job->failure() ? job->failure()->to_json() : job->final_response();
    return write_str(sink, dump(body));
  };
}

void run_generation(Engine& engine, const Tokenizer& tok, const ServedModel& model, const PreparedGeneration& p,
                    http::Response& res) {
  std::shared_ptr<GenerationJob> job;
  if (auto e = start_generation(engine, tok, model, p, &job)) return send_error(res, *e);
  if (p.gen.stream) return stream_events(job, p.gen.include_usage, res);
  respond_when_done(job, res);
}

}  // namespace

void OpenAIServer::handle_chat(const http::Request& req, http::Response& res) {
  Json body;
  if (!read_json_body(req, res, &body)) return;
  ChatRequest cr;
  if (auto e = parse_chat_request(body, model_, &cr)) return send_error(res, *e);
  // tool_choice "none": no tool may be called, and the model is not told of any (as vLLM
  // with --exclude-tools-when-tool-choice-none).
  if (cr.tool_choice == "none") cr.tools = nullptr;
  // A template that ignores tools (DeepSeek-V3's): they go into the system prompt instead.
  if (cr.tools.is_array() && !cr.tools.empty() && !template_renders_tools_)
    cr.messages = messages_with_tools_section(cr.messages, cr.tools, tool_call_format_);
  ChatPrompt prompt;
  if (auto e = build_chat_prompt(*tokenizer_, cr, &prompt, model_.context)) return send_error(res, *e);
  PreparedGeneration p{.kind = JobKind::Chat,
                       .prompts = {std::move(prompt.ids)},
                       .gen = cr.gen,
                       .reasoning = options_.split_reasoning,
                       .opens_reasoning = prompt.opens_reasoning,
                       .tool_calls = !cr.tools.is_null(),
                       .prompt_param = "messages"};
  if (tool_choice_forces_call(cr.tool_choice)) {
    // The call is the output: a response_format, if any, has no content to apply to.
    if (auto e = forced_tool_call_grammar(*tokenizer_, tool_call_format_, json_vocabulary_, cr.tools, cr.tool_choice,
                                          prompt.opens_reasoning, &p.tool_call_grammar))
      return send_error(res, *e);
  } else if (cr.response_schema) {
    std::vector<int32_t> ends;
    if (tokenizer_->eos_id()) ends.push_back(*tokenizer_->eos_id());
    p.grammar = std::make_shared<grammar::JsonGrammar>(grammar::JsonGrammar{cr.response_schema, json_vocabulary_, ends});
  }
  run_generation(*engine_, *tokenizer_, model_, p, res);
}

void OpenAIServer::handle_completions(const http::Request& req, http::Response& res) {
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

void OpenAIServer::handle_models(const http::Request& req, http::Response& res) {
  if (!ready_) return send_error(res, api_error(503, "the model is still loading", "server_error", "loading"));
  Json m = {{"id", model_.id}, {"object", "model"}, {"created", started_}, {"owned_by", "dsv3"},
            {"max_model_len", model_.context}};
  if (req.path == "/v1/models") return send_json(res, 200, {{"object", "list"}, {"data", Json::array({m})}});
  // GET /v1/models/{id} (the client libraries' models.retrieve).
  const std::string id = req.path.substr(std::string("/v1/models/").size());
  if (id == model_.id) return send_json(res, 200, m);
  ApiError e = api_error(404, "The model '" + bounded_text(id, 80) + "' does not exist", "invalid_request_error",
                         "model_not_found");
  e.param = "model";
  send_error(res, e);
}

void OpenAIServer::handle_metrics(http::Response& res) {
  MetricsSnapshot snapshot;
  const bool ready = ready_;  // engine_ is read only once ready_ is seen set
  snapshot.ready = ready && !draining_;
  if (ready) snapshot.engine = engine_->stats();
  snapshot.memory = memory_stats();
  {
    std::lock_guard<std::mutex> lock(metrics_mu_);
    snapshot.responses_by_status = responses_by_status_;
  }
  res.content_type = "text/plain; version=0.0.4";
  res.body = render_metrics(snapshot);
}

}  // namespace dsv3::server
