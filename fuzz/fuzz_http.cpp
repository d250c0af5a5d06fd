// Raw bytes on a connection to the OpenAI server's HTTP layer (Boost.Beast's parser, framing,
// limits, routing, authentication, CORS): the transport has no entry point below the socket,
// so each input is written to a loopback connection of one server started once, and the
// harness reads until the server closes or goes quiet. Pass: no crash, no sanitizer report,
// and the server still answers GET /health afterwards (no wedged thread or leaked slot).
// The server is started without a model (as it is while loading): generation routes are
// answered from their headers; their bodies are fuzzed by fuzz_openai_request.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>

#include "fuzz_util.h"
#include "server/http_server.h"

namespace {

int connect_to(int port) {
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(static_cast<uint16_t>(port));
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
    if (errno != EINTR) std::abort();
    // Interrupted (see read_answer): the connection goes on being made; wait for it.
    pollfd p{fd, POLLOUT, 0};
    while (::poll(&p, 1, 10000) < 0 && errno == EINTR) {
    }
    int error = 0;
    socklen_t length = sizeof error;
    if (::getsockopt(fd, SOL_SOCKET, SO_ERROR, &error, &length) != 0 || error != 0) std::abort();
  }
  return fd;
}

// Everything the server sends until it closes, or until it sends nothing for `quiet_ms`.
// libFuzzer's -timeout raises SIGALRM every second, which interrupts poll and read (EINTR,
// whatever SA_RESTART says for poll): an interrupted wait is resumed, never taken for silence
// (that mistake once read as a server that stopped answering /health).
std::string read_answer(int fd, int quiet_ms) {
  using clock = std::chrono::steady_clock;
  std::string got;
  char buf[4096];
  for (;;) {
    const auto quiet_until = clock::now() + std::chrono::milliseconds(quiet_ms);
    int ready;
    do {
      const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(quiet_until - clock::now()).count();
      pollfd p{fd, POLLIN, 0};
      ready = ::poll(&p, 1, static_cast<int>(std::max<long long>(0, left)));
    } while (ready < 0 && errno == EINTR);
    if (ready <= 0) break;
    ssize_t n;
    do n = ::read(fd, buf, sizeof buf);
    while (n < 0 && errno == EINTR);
    if (n <= 0) break;
    got.append(buf, static_cast<size_t>(n));
  }
  return got;
}

dsv3::server::OpenAIServer& server() {
  static dsv3::server::OpenAIServer* s = [] {
    dsv3::server::ServerOptions options;
    options.port = 0;
    options.api_key = "k";
    options.max_body_bytes = 64u << 10;
    options.http_threads = 4;
    options.read_timeout = std::chrono::seconds(1);
    options.allowed_origins = {"https://example.com"};
    auto* created = new dsv3::server::OpenAIServer(options);
    if (!created->bind().ok()) std::abort();
    created->start();
    return created;
  }();
  return *s;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const int port = server().port();
  int fd = connect_to(port);
  size_t sent = 0;
  while (sent < size) {
    ssize_t n = ::send(fd, data + sent, size - sent, MSG_NOSIGNAL);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;  // the server closed early (a refusal from the headers)
    sent += static_cast<size_t>(n);
  }
  ::shutdown(fd, SHUT_WR);
  (void)read_answer(fd, 200);
  ::close(fd);

  // The server must still serve.
  int probe = connect_to(port);
  const char health[] = "GET /health HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n";
  ssize_t sent_probe;
  do sent_probe = ::send(probe, health, sizeof health - 1, MSG_NOSIGNAL);
  while (sent_probe < 0 && errno == EINTR);
  if (sent_probe != static_cast<ssize_t>(sizeof health - 1)) std::abort();
  std::string answer = read_answer(probe, 10000);  // "Connection: close" ends it; the wait only matters on a loaded machine
  ::close(probe);
  if (answer.rfind("HTTP/1.1 503", 0) != 0 && answer.rfind("HTTP/1.1 200", 0) != 0) std::abort();
  return 0;
}
