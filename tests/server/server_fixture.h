#pragma once
// An in-process dsv3 server on a loopback port for HTTP tests: a small random-weight model of
// the V3 architecture with the real DeepSeek-V3 tokenizer (made once per test binary), the
// engine and the HTTP layer, as `dsv3 serve` wires them.

#include <gtest/gtest.h>
#include <httplib.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <memory>
#include <string>

#include "model/model.h"
#include "runtime/engine.h"
#include "server/http_server.h"
#include "server/prompt.h"
#include "small_chat_model.h"
#include "test_util.h"
#include "tokenizer/tokenizer.h"

namespace dsv3::test {

// DeepSeek-V3's own tokenizer (assets/), loaded once for the whole test binary.
inline const Tokenizer& v3_tokenizer() {
  static const auto tok = Tokenizer::load(v3_tokenizer_dir()).value();
  return *tok;
}

struct TestServerOptions {
  std::string model_dir;        // default: small_chat_model_dir()
  std::string tokenizer_dir;    // default: model_dir
  int64_t context = 512;
  EngineOptions engine;
  server::ServerOptions http;
  bool ready = true;
};

class TestServer {
 public:
  explicit TestServer(TestServerOptions o = {}) {
    if (o.model_dir.empty()) o.model_dir = small_chat_model_dir();
    if (o.tokenizer_dir.empty()) o.tokenizer_dir = o.model_dir;
    ModelOptions mo;
    mo.threads = 2;
    mo.max_context = o.context;
    auto m = Model::load(o.model_dir, mo);
    EXPECT_TRUE(m.ok()) << m.error().message();
    model_ = std::move(m).value();
    auto t = Tokenizer::load(o.tokenizer_dir);
    EXPECT_TRUE(t.ok()) << t.error().message();
    tokenizer_ = std::move(t).value();
    engine_ = std::make_unique<Engine>(*model_, o.engine);
    o.http.port = 0;
    http_ = std::make_unique<server::OpenAIServer>(o.http);
    EXPECT_TRUE(http_->bind().ok());
    http_->start();
    served_ = {"test-model", model_->vocab_size(), model_->max_context()};
    if (o.ready) make_ready();
  }
  ~TestServer() {
    http_->stop();
    engine_.reset();
  }
  void make_ready() { http_->set_ready(engine_.get(), tokenizer_.get(), served_); }
  int port() const { return http_->port(); }
  httplib::Client client() const {
    httplib::Client c("127.0.0.1", port());
    c.set_read_timeout(60, 0);
    return c;
  }
  server::OpenAIServer& http() { return *http_; }
  Engine& engine() { return *engine_; }
  const Tokenizer& tokenizer() const { return *tokenizer_; }
  const Model& model() const { return *model_; }

 private:
  std::unique_ptr<Model> model_;
  std::unique_ptr<Tokenizer> tokenizer_;
  std::unique_ptr<Engine> engine_;
  std::unique_ptr<server::OpenAIServer> http_;
  server::ServedModel served_;
};

// A socket connected to the server's port on loopback, or -1.
inline int connect_loopback(int port) {
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(static_cast<uint16_t>(port));
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0) {
    ::close(fd);
    return -1;
  }
  return fd;
}

// Requests one at a time on one kept-alive connection, each answer read whole: its headers,
// then Content-Length bytes of body (5 s per read at most).
class KeepAliveConnection {
 public:
  struct Answer {
    std::string bytes;
    bool complete = false;  // headers with a Content-Length, and that much body, arrived
  };
  explicit KeepAliveConnection(int port) : fd_(connect_loopback(port)) {
    timeval tv{5, 0};
    if (fd_ >= 0) ::setsockopt(fd_, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
  }
  ~KeepAliveConnection() {
    if (fd_ >= 0) ::close(fd_);
  }
  KeepAliveConnection(const KeepAliveConnection&) = delete;
  KeepAliveConnection& operator=(const KeepAliveConnection&) = delete;
  bool connected() const { return fd_ >= 0; }

  Answer exchange(const std::string& request) {
    Answer a;
    if (::send(fd_, request.data(), request.size(), MSG_NOSIGNAL) != static_cast<ssize_t>(request.size())) return a;
    while (a.bytes.find("\r\n\r\n") == std::string::npos)
      if (!receive(a.bytes)) return a;
    const size_t cl = a.bytes.find("Content-Length: ");
    if (cl == std::string::npos) return a;
    const size_t want = a.bytes.find("\r\n\r\n") + 4 + std::stoul(a.bytes.substr(cl + 16));
    while (a.bytes.size() < want)
      if (!receive(a.bytes)) return a;
    a.complete = true;
    return a;
  }

 private:
  bool receive(std::string& out) {
    char buf[4096];
    const ssize_t n = ::recv(fd_, buf, sizeof(buf), 0);
    if (n <= 0) return false;
    out.append(buf, static_cast<size_t>(n));
    return true;
  }
  int fd_;
};

// Sends raw bytes on a new connection; returns what the server answers until it closes the
// connection or `timeout_ms` passes. `close_after_ms` >= 0 closes our side early (a client
// that leaves).
inline std::string raw_exchange(int port, const std::string& bytes, int timeout_ms = 5000, int close_after_ms = -1) {
  const int fd = connect_loopback(port);
  if (fd < 0) return "";
  size_t sent = 0;
  while (sent < bytes.size()) {
    ssize_t n = ::send(fd, bytes.data() + sent, bytes.size() - sent, MSG_NOSIGNAL);
    if (n <= 0) break;
    sent += static_cast<size_t>(n);
  }
  std::string out;
  timeval tv{0, 50 * 1000};
  ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
  const int limit = close_after_ms >= 0 ? close_after_ms : timeout_ms;
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(limit);
  while (std::chrono::steady_clock::now() < deadline) {
    char buf[4096];
    ssize_t n = ::recv(fd, buf, sizeof(buf), 0);
    if (n > 0) out.append(buf, static_cast<size_t>(n));
    else if (n == 0) break;
  }
  ::close(fd);
  return out;
}

// The bytes of a POST of a JSON body with its Content-Length; `extra_headers` are whole
// lines ("Name: value\r\n").
inline std::string raw_post(const std::string& path, const std::string& body, const std::string& extra_headers = "") {
  return "POST " + path + " HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n" + extra_headers +
         "Content-Length: " + std::to_string(body.size()) + "\r\n\r\n" + body;
}

inline int status_of(const std::string& raw) {
  if (raw.rfind("HTTP/1.", 0) != 0 || raw.size() < 12) return -1;
  return std::atoi(raw.c_str() + 9);
}

}  // namespace dsv3::test
