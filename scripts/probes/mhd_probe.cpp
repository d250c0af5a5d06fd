// GNU libmicrohttpd 0.9.75 (Debian's libmicrohttpd-dev) on the HTTP cases of
// docs/reliability.md, for the choice of the server's HTTP layer (docs/server.md). Not built
// by CMake; the evidence only:
//
//   g++ -O2 -std=c++20 scripts/probes/mhd_probe.cpp -o /tmp/mhd_probe -lmicrohttpd
//   /tmp/mhd_probe [threads|epoll]      (prints "port N")
//
// Routes as dsv3 serve's: /health open, /v1/* needs "Authorization: Bearer k", decided on
// the first call (headers only); POST bodies up to 4 MiB, counted as they arrive (chunked
// included) and refused with 413 past that.

#include <microhttpd.h>

#include <cstdio>
#include <cstring>
#include <string>
#include <thread>

namespace {

constexpr size_t kMaxBody = 4u << 20;

struct Request {
  std::string body;
};

MHD_Result reply(MHD_Connection* c, unsigned status, const std::string& text) {
  MHD_Response* r = MHD_create_response_from_buffer(text.size(), const_cast<char*>(text.data()), MHD_RESPMEM_MUST_COPY);
  MHD_add_response_header(r, "Content-Type", "application/json");
  MHD_Result ret = MHD_queue_response(c, status, r);
  MHD_destroy_response(r);
  return ret;
}

MHD_Result handle(void*, MHD_Connection* c, const char* url, const char* method, const char*, const char* upload,
                  size_t* upload_size, void** state) {
  if (*state == nullptr) {  // the request line and headers only
    *state = new Request;
    const char* auth = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Authorization");
    if (std::strncmp(url, "/v1/", 4) == 0 && (auth == nullptr || std::strcmp(auth, "Bearer k") != 0))
      return reply(c, 401, "{\"error\":\"key\"}");
    return MHD_YES;
  }
  auto* req = static_cast<Request*>(*state);
  if (*upload_size != 0) {
    if (req->body.size() + *upload_size > kMaxBody) return reply(c, 413, "{\"error\":\"too large\"}");
    req->body.append(upload, *upload_size);
    *upload_size = 0;
    return MHD_YES;
  }
  if (std::strcmp(method, "GET") == 0 && std::strcmp(url, "/health") == 0) return reply(c, 200, "{\"status\":\"ok\"}");
  return reply(c, 200, "{\"bytes\":" + std::to_string(req->body.size()) + "}");
}

void completed(void*, MHD_Connection*, void** state, MHD_RequestTerminationCode) {
  delete static_cast<Request*>(*state);
  *state = nullptr;
}

}  // namespace

int main(int argc, char** argv) {
  const bool epoll = argc > 1 && std::strcmp(argv[1], "epoll") == 0;
  unsigned flags = MHD_USE_ERROR_LOG | (epoll ? MHD_USE_EPOLL_INTERNAL_THREAD : MHD_USE_THREAD_PER_CONNECTION |
                                                                                    MHD_USE_INTERNAL_POLLING_THREAD);
  MHD_Daemon* d = MHD_start_daemon(flags, 0, nullptr, nullptr, &handle, nullptr,  //
                                   MHD_OPTION_NOTIFY_COMPLETED, &completed, nullptr,  //
                                   MHD_OPTION_CONNECTION_TIMEOUT, 10u,  //
                                   MHD_OPTION_CONNECTION_LIMIT, 1024u,  //
                                   MHD_OPTION_END);
  if (d == nullptr) return 1;
  std::printf("port %u\n", MHD_get_daemon_info(d, MHD_DAEMON_INFO_BIND_PORT)->port);
  std::fflush(stdout);
  for (;;) std::this_thread::sleep_for(std::chrono::hours(1));
}
