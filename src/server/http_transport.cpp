#include "server/http_transport.h"

#include <malloc.h>
#include <poll.h>
#include <strings.h>
#include <sys/socket.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <boost/asio.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/http.hpp>
#include <cerrno>
#include <cstdio>
#include <optional>
#include <mutex>
#include <thread>
#include <unordered_set>

#include "base/log.h"

namespace dsv3::server::http {

namespace net = boost::asio;
namespace bhttp = boost::beast::http;
using tcp = net::ip::tcp;
using error_code = boost::system::error_code;

namespace {

bool iequals(std::string_view a, std::string_view b) {
  return a.size() == b.size() && strncasecmp(a.data(), b.data(), a.size()) == 0;
}

std::string_view trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return s;
}

// Bytes beyond the header limit that one read may bring (a flat_buffer never grows past this
// plus the header limit; body bytes move out of it into the body as they are parsed).
constexpr size_t kReadChunk = 64u << 10;
// After a refusal that closes the connection, what the client still sends is read and thrown
// away for at most this long (and this much), so that closing does not reset the connection
// before the client has read the answer.
constexpr std::chrono::milliseconds kLingerTime{1000};
constexpr size_t kLingerBytes = 16u << 20;

// Writes all of `bytes` to a non-blocking socket, waiting at most `timeout` for each chance
// to write. False when the client is gone or does not read.
bool send_all(int fd, std::string_view bytes, std::chrono::milliseconds timeout) {
  while (!bytes.empty()) {
    const ssize_t n = ::send(fd, bytes.data(), bytes.size(), MSG_NOSIGNAL);
    if (n > 0) {
      bytes.remove_prefix(static_cast<size_t>(n));
      continue;
    }
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
      pollfd p{fd, POLLOUT, 0};
      const int r = ::poll(&p, 1, static_cast<int>(timeout.count()));
      if (r < 0 && errno == EINTR) continue;
      if (r <= 0 || (p.revents & (POLLERR | POLLHUP | POLLNVAL))) return false;
      continue;
    }
    return false;
  }
  return true;
}

std::string status_line(int status) {
  const auto reason = bhttp::obsolete_reason(bhttp::int_to_status(static_cast<unsigned>(status)));
  return "HTTP/1.1 " + std::to_string(status) + " " + std::string(reason.data(), reason.size()) + "\r\n";
}

// The status line and headers of `r`; the body follows (Content-Length) or is chunked.
std::string serialize_head(const Response& r) {
  std::string out = status_line(r.status);
  if (!r.content_type.empty()) out += "Content-Type: " + r.content_type + "\r\n";
  for (const auto& [name, value] : r.headers) out += name + ": " + value + "\r\n";
  if (r.stream) out += "Transfer-Encoding: chunked\r\n";
  else if (r.status != 204 && r.status >= 200) out += "Content-Length: " + std::to_string(r.body.size()) + "\r\n";
  if (r.close) out += "Connection: close\r\n";
  out += "\r\n";
  return out;
}

class SocketChunkSink final : public ChunkSink {
 public:
  SocketChunkSink(int fd, std::chrono::milliseconds timeout) : fd_(fd), timeout_(timeout) {}
  bool write(std::string_view bytes) override {
    if (failed_) return false;
    if (bytes.empty()) return true;  // an empty chunk would end the body
    char size[24];
    const int n = std::snprintf(size, sizeof(size), "%zx\r\n", bytes.size());
    failed_ = !send_all(fd_, std::string_view(size, static_cast<size_t>(n)), timeout_) ||
              !send_all(fd_, bytes, timeout_) || !send_all(fd_, "\r\n", timeout_);
    return !failed_;
  }
  bool finish() { return !failed_ && send_all(fd_, "0\r\n\r\n", timeout_); }

 private:
  int fd_;
  std::chrono::milliseconds timeout_;
  bool failed_ = false;
};

}  // namespace

std::string Request::header(std::string_view name) const {
  for (const auto& [k, v] : fields)
    if (iequals(k, name)) return v;
  return "";
}

bool Request::has_header(std::string_view name) const {
  return std::any_of(fields.begin(), fields.end(), [&](const auto& f) { return iequals(f.first, name); });
}

void Response::set_header(std::string name, std::string value) {
  for (auto& [k, v] : headers)
    if (iequals(k, name)) {
      v = std::move(value);
      return;
    }
  headers.emplace_back(std::move(name), std::move(value));
}

bool Response::has_header(std::string_view name) const {
  return std::any_of(headers.begin(), headers.end(), [&](const auto& h) { return iequals(h.first, name); });
}

std::string Response::header(std::string_view name) const {
  for (const auto& [k, v] : headers)
    if (iequals(k, name)) return v;
  return "";
}

Result<std::string> decode_path(std::string_view path) {
  std::string out;
  out.reserve(path.size());
  for (size_t i = 0; i < path.size(); ++i) {
    if (path[i] != '%') {
      out += path[i];
      continue;
    }
    auto hex = [](char c) -> int {
      if (c >= '0' && c <= '9') return c - '0';
      if (c >= 'a' && c <= 'f') return c - 'a' + 10;
      if (c >= 'A' && c <= 'F') return c - 'A' + 10;
      return -1;
    };
    if (i + 2 >= path.size()) return Error("malformed percent escape in the path");
    const int hi = hex(path[i + 1]), lo = hex(path[i + 2]);
    if (hi < 0 || lo < 0) return Error("malformed percent escape in the path");
    const char c = static_cast<char>(hi * 16 + lo);
    if (c == '\0') return Error("NUL in the path");
    out += c;
    i += 2;
  }
  return out;
}

// ----------------------------------------------------------------------------------------
// Server state and connections

class Session;

struct Server::State {
  Limits limits;
  Handlers handlers;
  std::atomic<bool> stopping{false};
  std::atomic<int> handling{0};  // handlers running (and writing their response)
  bool started = false, stopped = false;
  int port = 0;

  // Connections alive, for stop() and max_connections. Declared before the I/O context, so
  // that they outlive the handlers it destroys (which end sessions).
  std::mutex mu;
  std::unordered_set<Session*> live;

  net::io_context io{1};
  std::optional<net::executor_work_guard<net::io_context::executor_type>> work;
  tcp::acceptor acceptor{io};
  std::unique_ptr<net::thread_pool> workers;
  std::thread io_thread;

  void accept();
};

class Session : public std::enable_shared_from_this<Session> {
 public:
  Session(Server::State* state, tcp::socket socket)
      : state_(state), limits_(state->limits), socket_(std::move(socket)), timer_(state->io), buffer_(kReadChunk) {
    fd_ = socket_.native_handle();
    error_code ec;
    socket_.non_blocking(true, ec);  // the handlers' blocking writes poll (send_all)
    socket_.set_option(tcp::no_delay(true), ec);
    std::lock_guard<std::mutex> lock(state_->mu);
    state_->live.insert(this);
  }
  ~Session() {
    std::lock_guard<std::mutex> lock(state_->mu);
    state_->live.erase(this);
    closed_ = true;
    error_code ec;
    socket_.close(ec);
  }

  void start() { read_header(); }

  // From stop(): ends the connection's reads and writes (the socket is closed by its owner).
  void shut_down_locked() {
    if (!closed_) ::shutdown(fd_, SHUT_RDWR);
  }

 private:
  // ---- stage 1: the request line and headers
  void read_header() {
    if (state_->stopping) return close();
    parser_.emplace();
    parser_->header_limit(static_cast<uint32_t>(limits_.max_target_bytes + limits_.max_header_bytes + 64));
    parser_->body_limit(UINT64_MAX);  // decided after screening (none would refuse every body)
    request_ = Request{};
    arm_timer(limits_.header_timeout);
    bhttp::async_read_header(socket_, buffer_, *parser_,
                             [self = shared_from_this()](error_code ec, size_t) { self->on_header(ec); });
  }

  void on_header(error_code ec) {
    disarm_timer();
    if (ec) {
      if (ec == bhttp::error::header_limit) return refuse(nullptr, header_limit_status(), header_limit_message());
      if (ec == bhttp::error::end_of_stream || ec == bhttp::error::partial_message || ec == net::error::eof ||
          ec == net::error::operation_aborted || ec == net::error::connection_reset || ec == net::error::bad_descriptor)
        return close();
      return refuse(nullptr, 400, "malformed request: " + ec.message());
    }
    const auto& m = parser_->get();
    request_.method = std::string(m.method_string());
    request_.target = std::string(m.target());
    for (const auto& f : m) request_.fields.emplace_back(std::string(f.name_string()), std::string(f.value()));
    if (m.version() != 10 && m.version() != 11) return refuse(nullptr, 505, "only HTTP/1.0 and HTTP/1.1 are served");
    if (auto status = check_head()) return refuse(&request_, status->first, status->second);
    if (state_->handlers.screen) {
      if (std::optional<Response> r = state_->handlers.screen(request_)) return respond_now(std::move(*r));
    }
    if (auto status = check_body_size()) return refuse(&request_, status->first, status->second);
    if (!request_.has_body) return dispatch();
    if (!parser_->content_length()) parser_->body_limit(limits_.max_body_bytes);  // chunked: stops at the limit
    if (iequals(trim(request_.header("Expect")), "100-continue")) {
      auto bytes = std::make_shared<std::string>("HTTP/1.1 100 Continue\r\n\r\n");
      arm_timer(limits_.write_timeout);
      return net::async_write(socket_, net::buffer(*bytes), [self = shared_from_this(), bytes](error_code e, size_t) {
        self->disarm_timer();
        if (e) return self->close();
        self->read_body();
      });
    }
    read_body();
  }

  // ---- stage 2: what the request line and headers alone refuse (status, message)
  std::optional<std::pair<int, std::string>> check_head() {
    if (request_.target.size() > limits_.max_target_bytes)
      return std::make_pair(414, "the request target is longer than " + std::to_string(limits_.max_target_bytes) + " bytes");
    size_t bytes = 0;
    for (const auto& [name, value] : request_.fields) bytes += name.size() + value.size() + 4;
    if (request_.fields.size() > limits_.max_headers || bytes > limits_.max_header_bytes) return header_refusal();
    const bool has_length = request_.has_header("Content-Length");
    const bool has_coding = request_.has_header("Transfer-Encoding");
    if (has_length && has_coding)
      return std::make_pair(400, std::string("Transfer-Encoding together with Content-Length: ambiguous framing"));
    if (has_coding) {
      std::string codings;
      for (const auto& [name, value] : request_.fields)
        if (iequals(name, "Transfer-Encoding")) codings += (codings.empty() ? "" : ", ") + value;
      if (!iequals(trim(codings), "chunked")) {
        const bool chunked_last = parser_->chunked();
        return std::make_pair(chunked_last ? 501 : 400, chunked_last ? "only the chunked transfer coding is supported"
                                                                     : "chunked must be the final transfer coding");
      }
    }
    request_.has_body = parser_->chunked() || parser_->content_length().value_or(0) > 0;
    const std::string_view target = request_.target;
    auto path = decode_path(target.substr(0, target.find_first_of("?#")));
    if (!path.ok()) return std::make_pair(400, path.error().message());
    request_.path = std::move(path).value();
    return std::nullopt;
  }

  // After screening: a body that must be announced and is not (411), or is too large (413).
  std::optional<std::pair<int, std::string>> check_body_size() const {
    const bool takes_body = request_.method == "POST" || request_.method == "PUT" || request_.method == "PATCH";
    if (takes_body && !parser_->content_length() && !parser_->chunked())
      return std::make_pair(411, std::string("a request body needs a Content-Length (or chunked encoding)"));
    if (parser_->content_length().value_or(0) > limits_.max_body_bytes)
      return std::make_pair(413, "the request body is larger than " + std::to_string(limits_.max_body_bytes) + " bytes");
    return std::nullopt;
  }

  std::pair<int, std::string> header_refusal() const {
    return {431, "request headers too large (at most " + std::to_string(limits_.max_headers) + " headers, " +
                     std::to_string(limits_.max_header_bytes) + " bytes)"};
  }
  // The header limit was reached before the headers ended: by the request line (414) or the
  // header lines (431).
  int header_limit_status() const {
    const auto data = buffer_.cdata();
    const std::string_view seen(static_cast<const char*>(data.data()), data.size());
    const size_t eol = seen.find("\r\n");
    return (eol == std::string_view::npos ? seen.size() : eol) > limits_.max_target_bytes + 16 ? 414 : 431;
  }
  std::string header_limit_message() const {
    return header_limit_status() == 414
               ? "the request target is longer than " + std::to_string(limits_.max_target_bytes) + " bytes"
               : header_refusal().second;
  }

  // ---- stage 3: the body, then the handler
  void read_body() {
    arm_timer(limits_.body_read_timeout);
    bhttp::async_read_some(socket_, buffer_, *parser_,
                           [self = shared_from_this()](error_code ec, size_t) { self->on_body(ec); });
  }

  void on_body(error_code ec) {
    disarm_timer();
    if (ec == bhttp::error::body_limit)
      return refuse(&request_, 413,
                    "the request body is larger than " + std::to_string(limits_.max_body_bytes) + " bytes");
    if (ec == bhttp::error::need_buffer) ec = {};
    if (ec) {
      if (ec == bhttp::error::end_of_stream || ec == bhttp::error::partial_message || ec == net::error::eof ||
          ec == net::error::operation_aborted || ec == net::error::connection_reset || ec == net::error::bad_descriptor)
        return close();
      return refuse(&request_, 400, "malformed request body: " + ec.message());
    }
    if (!parser_->is_done()) return read_body();
    request_.body = std::move(parser_->get().body());
    dispatch();
  }

  void dispatch() {
    ++state_->handling;
    net::post(*state_->workers, [self = shared_from_this()]() mutable {
      Session* session = self.get();
      session->run_handler(std::move(self));
    });
  }

  // On a worker thread: the handler, then the response written with blocking writes. The
  // connection goes back to the I/O thread with `self` (which owns the last reference, so
  // the session always ends on the I/O thread).
  void run_handler(std::shared_ptr<Session> self) {
    Response res;
    try {
      state_->handlers.handle(request_, res);
    } catch (const std::exception& e) {
      DSV3_LOG_ERROR("request failed: %s", e.what());
      res = state_->handlers.error(500, "internal error");
    }
    const bool keep = parser_->keep_alive() && !res.close && ++served_ < limits_.max_requests_per_connection &&
                      !state_->stopping;
    res.close = !keep;
    if (state_->handlers.finish) state_->handlers.finish(&request_, res);
    bool ok = send_all(fd_, serialize_head(res), limits_.write_timeout);
    if (ok && request_.method != "HEAD") {
      if (res.stream) {
        SocketChunkSink sink(fd_, limits_.write_timeout);
        ok = res.stream(sink) && sink.finish();
      } else {
        ok = send_all(fd_, res.body, limits_.write_timeout);
      }
    }
    const bool large = limits_.trim_after_body_bytes > 0 && request_.body.size() >= limits_.trim_after_body_bytes;
    request_ = Request{};  // the body is freed before the trim
    if (--state_->handling == 0 && large) malloc_trim(0);
    if (!ok || !keep) {
      net::post(state_->io, [self = std::move(self)] { self->close(); });
      return;
    }
    net::post(state_->io, [self = std::move(self)] { self->read_header(); });
  }

  // ---- answers written by the I/O thread

  // A refusal by the transport (head: the request, when its headers were parsed).
  void refuse(const Request* head, int status, const std::string& message) {
    Response r = state_->handlers.error(status, message);
    r.close = true;  // what follows on this connection cannot be trusted to be a request
    write_async(head, std::move(r));
  }

  // Handlers::screen's answer, before the body: the connection stays open only when no body
  // was announced (nothing of it is left to read).
  void respond_now(Response r) {
    if (request_.has_body || !parser_->keep_alive() || ++served_ >= limits_.max_requests_per_connection) r.close = true;
    write_async(&request_, std::move(r));
  }

  void write_async(const Request* head, Response r) {
    if (state_->handlers.finish) state_->handlers.finish(head, r);
    auto bytes = std::make_shared<std::string>(serialize_head(r));
    if (request_.method != "HEAD") *bytes += r.body;
    const bool close_after = r.close;
    arm_timer(limits_.write_timeout);
    net::async_write(socket_, net::buffer(*bytes), [self = shared_from_this(), bytes, close_after](error_code ec, size_t) {
      self->disarm_timer();
      if (ec) return self->close();
      if (close_after) return self->linger();
      self->read_header();
    });
  }

  // Closes after the client has had time to read the answer: our side of the connection is
  // shut, and what it still sends is discarded for a moment (a close with unread bytes would
  // reset the connection and could lose the answer).
  void linger() {
    error_code ec;
    socket_.shutdown(tcp::socket::shutdown_send, ec);
    linger_until_ = std::chrono::steady_clock::now() + kLingerTime;
    arm_timer(kLingerTime);
    discard();
  }
  void discard() {
    auto scratch = std::make_shared<std::array<char, 16384>>();
    socket_.async_read_some(net::buffer(*scratch), [self = shared_from_this(), scratch](error_code ec, size_t n) {
      self->lingered_ += n;
      if (ec || self->lingered_ > kLingerBytes || std::chrono::steady_clock::now() >= self->linger_until_) {
        self->disarm_timer();
        return self->close();
      }
      self->discard();
    });
  }

  // A deadline for the pending read or write: when it passes, the connection is closed. Each
  // arm or disarm starts a new generation, so that an expiry already queued when the timer
  // was disarmed closes nothing (the connection may be in a handler's hands by then).
  void arm_timer(std::chrono::milliseconds d) {
    const uint64_t generation = ++timer_generation_;
    timer_.expires_after(d);
    timer_.async_wait([weak = weak_from_this(), generation](error_code ec) {
      auto self = weak.lock();
      if (ec || !self || generation != self->timer_generation_) return;
      error_code ignored;
      self->socket_.cancel(ignored);  // the pending read or write ends with operation_aborted
      self->close();
    });
  }
  void disarm_timer() {
    ++timer_generation_;
    timer_.cancel();
  }

  void close() {
    std::lock_guard<std::mutex> lock(state_->mu);
    if (closed_) return;
    closed_ = true;
    error_code ec;
    disarm_timer();
    socket_.shutdown(tcp::socket::shutdown_both, ec);
    socket_.close(ec);
  }

  Server::State* state_;
  const Limits& limits_;
  tcp::socket socket_;
  int fd_ = -1;
  net::steady_timer timer_;
  boost::beast::flat_buffer buffer_;
  std::optional<bhttp::request_parser<bhttp::string_body>> parser_;
  Request request_;
  int served_ = 0;
  bool closed_ = false;  // guarded by state_->mu
  uint64_t timer_generation_ = 0;  // I/O thread only
  std::chrono::steady_clock::time_point linger_until_;
  size_t lingered_ = 0;
};

void Server::State::accept() {
  acceptor.async_accept(io, [this](error_code ec, tcp::socket socket) {
    if (stopping || !acceptor.is_open()) return;
    if (!ec) {
      size_t open;
      {
        std::lock_guard<std::mutex> lock(mu);
        open = live.size();
      }
      if (open >= static_cast<size_t>(limits.max_connections)) {
        error_code ignored;
        socket.close(ignored);  // over the limit: refused at once, costs nothing
      } else {
        std::make_shared<Session>(this, std::move(socket))->start();
      }
    }
    accept();
  });
}

// ----------------------------------------------------------------------------------------

Server::Server(Limits limits, Handlers handlers) : state_(std::make_shared<State>()) {
  state_->limits = limits;
  state_->handlers = std::move(handlers);
}

Server::~Server() { stop(); }

Status Server::bind(const std::string& host, int port) {
  error_code ec;
  tcp::resolver resolver(state_->io);
  auto endpoints = resolver.resolve(host, std::to_string(port), tcp::resolver::passive, ec);
  if (ec || endpoints.empty()) return Error("cannot listen on " + host + ": " + ec.message());
  const tcp::endpoint endpoint = endpoints.begin()->endpoint();
  tcp::acceptor& a = state_->acceptor;
  a.open(endpoint.protocol(), ec);
  if (!ec) a.set_option(tcp::acceptor::reuse_address(true), ec);  // SO_REUSEADDR only
  if (!ec) a.bind(endpoint, ec);
  if (!ec) a.listen(net::socket_base::max_listen_connections, ec);
  if (ec) {
    error_code ignored;
    a.close(ignored);
    if (port == 0) return Error("cannot bind to " + host + " (any port): " + ec.message());
    return error_f("cannot listen on %s:%d (address in use, or not a local address?): %s", host.c_str(), port,
                   ec.message().c_str());
  }
  state_->port = a.local_endpoint().port();
  return {};
}

int Server::port() const { return state_->port; }

void Server::start() {
  State& s = *state_;
  if (s.started) return;
  s.started = true;
  s.workers = std::make_unique<net::thread_pool>(static_cast<size_t>(std::max(1, s.limits.workers)));
  s.work.emplace(s.io.get_executor());
  s.accept();
  s.io_thread = std::thread([&s] { s.io.run(); });
}

void Server::stop() {
  State& s = *state_;
  if (!s.started || s.stopped) {
    if (!s.started && s.acceptor.is_open()) {
      error_code ignored;
      s.acceptor.close(ignored);
    }
    return;
  }
  s.stopped = true;
  s.stopping = true;
  net::post(s.io, [&s] {
    error_code ignored;
    s.acceptor.close(ignored);
  });
  {
    std::lock_guard<std::mutex> lock(s.mu);
    for (Session* session : s.live) session->shut_down_locked();
  }
  s.workers->join();  // handlers end: their writes fail
  s.work.reset();
  s.io.stop();
  s.io_thread.join();
}

}  // namespace dsv3::server::http
