#pragma once
// HTTP/1.1 for the server: connections, framing, limits, timeouts and the threads that run
// handlers, on Boost.Asio and Boost.Beast's parser (Debian's libboost-dev). It knows no route
// and no JSON: what to answer is the Handlers' business.
//
// A request goes through three stages, and is refused at the first that can refuse it:
//   1. the request line and headers, read by the I/O thread with a deadline for all of them
//      (a client trickling bytes holds a socket, never a thread), within max_target_bytes,
//      max_header_bytes and max_headers (more: 414 or 431, the rest unread);
//   2. the framing, Handlers::screen and the body's size, decided from those alone, before
//      any body byte is read: ambiguous framing (Transfer-Encoding with Content-Length,
//      Content-Lengths that differ, a Content-Length that is not a number, a transfer coding
//      other than chunked) is 400; then screen may answer (authentication, routes, methods);
//      then a POST, PUT or PATCH without a length is 411, and a body over max_body_bytes by
//      its Content-Length 413;
//   3. the body, read up to max_body_bytes whatever its encoding (chunked bodies stop at the
//      limit with 413), then Handlers::handle on one of `workers` threads, which may block
//      (generation) and may stream.
// A request refused before its announced body was read gets "Connection: close" and its
// connection is closed: the unread body can never be taken for the next request. Pipelined
// requests are answered in order.

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "base/result.h"

namespace dsv3::server::http {

struct Request {
  std::string method;  // as sent: "GET", "POST", ...
  std::string target;  // as sent
  std::string path;    // the target's path, percent-decoded, without the query
  std::vector<std::pair<std::string, std::string>> fields;  // the headers as received, in order
  std::string body;    // empty in Handlers::screen
  bool has_body = false;  // a body is announced (a Content-Length above 0, or chunked)

  // The first value of a header (names compare case-insensitively), or "".
  std::string header(std::string_view name) const;
  bool has_header(std::string_view name) const;
};

// Where a streamed response writes its chunks. write() blocks until the bytes are sent and
// returns false when they cannot be (the client left, or did not read for write_timeout).
class ChunkSink {
 public:
  virtual ~ChunkSink() = default;
  virtual bool write(std::string_view bytes) = 0;
};

struct Response {
  int status = 200;
  std::vector<std::pair<std::string, std::string>> headers;
  std::string content_type;
  std::string body;
  // A chunked body instead of `body`, produced on the handler's thread: returns false when a
  // write failed (the connection is then closed).
  std::function<bool(ChunkSink&)> stream;
  bool close = false;  // close the connection after this response

  void set_header(std::string name, std::string value);
  bool has_header(std::string_view name) const;
  std::string header(std::string_view name) const;
};

struct Limits {
  size_t max_body_bytes = 4u << 20;
  size_t max_target_bytes = 8u << 10;    // the request target (URL): longer gets 414
  size_t max_header_bytes = 16u << 10;   // header lines, name + value + 4 each: more gets 431
  size_t max_headers = 100;              // more gets 431
  std::chrono::milliseconds header_timeout{10'000};  // for the whole request line and headers,
                                                      // and a kept-alive connection's idle time
  std::chrono::milliseconds body_read_timeout{10'000};  // between two reads of a body
  std::chrono::milliseconds write_timeout{30'000};      // for one write to the client
  int workers = 64;             // handlers running at once (more requests wait for one)
  int max_connections = 1024;   // open connections; more are closed at once
  int max_requests_per_connection = 1000;
  // After a request with a body at least this large, once no handler runs, free memory is
  // given back to the system (malloc_trim): glibc keeps the top of its heaps up to a
  // threshold that grows with the largest block freed, so a burst of large bodies would leave
  // the process far above its baseline. 0: never.
  size_t trim_after_body_bytes = 1u << 20;
};

struct Handlers {
  // Decides from the request line and headers (body empty): a response refuses the request
  // without reading its body; none reads the body and calls handle. Runs on the I/O thread:
  // it must not block.
  std::function<std::optional<Response>(const Request& head)> screen;
  // Answers a request whose body was read; runs on a worker thread and may block or stream.
  std::function<void(const Request& request, Response& response)> handle;
  // The transport's own refusals (400, 411, 413, 414, 431, 501): status and message.
  std::function<Response(int status, const std::string& message)> error;
  // Sees every response just before it is written (`head` is null when the request could not
  // be parsed): headers every response carries, counting.
  std::function<void(const Request* head, Response& response)> finish;
};

class Session;

class Server {
 public:
  Server(Limits limits, Handlers handlers);
  ~Server();  // stop()
  Server(const Server&) = delete;
  Server& operator=(const Server&) = delete;

  // Binds and listens (SO_REUSEADDR, not SO_REUSEPORT: a second server on a port in use fails).
  // Port 0: any free port (see port()).
  Status bind(const std::string& host, int port);
  int port() const;
  // Accepts and serves on background threads (one for I/O, `workers` for handlers).
  void start();
  // Stops accepting, ends every connection (handlers see their writes fail) and joins the
  // threads. Idempotent.
  void stop();

 private:
  friend class Session;
  struct State;
  std::shared_ptr<State> state_;
};

// Percent-decodes a URL path; error for a malformed escape or a decoded NUL.
Result<std::string> decode_path(std::string_view path);

}  // namespace dsv3::server::http
