// Where the first-token time of a short chat prompt goes, phase by phase (issue 21):
//
//   build/bench/dsv3_bench_first_token MODEL_DIR [--runs 7] [--threads N] [--message TEXT] [--tokenizer DIR]
//
// One process, one model, the same request every run (the prefix cache is off, so every run
// prefills the whole prompt). Each run measures, in this order:
//   template   the chat template rendered (Tokenizer::apply_chat_template)
//   tokenize   the rendered text encoded
//   forward    Model::forward of the prompt alone, last row's logits (the compute)
//   engine     Engine::submit -> the first token out of RequestHandle::wait, split into the
//              wait for a batch place (queued) and the prompt's steps + sampling (prefill)
//   http       the whole request through an in-process OpenAIServer on loopback: from the
//              first byte sent to the first content byte of the streamed answer
// and prints the medians. http minus (template + tokenize + engine) is what the HTTP layer,
// JSON parsing and the server's own work add; engine minus forward is what scheduling and
// sampling add. Figures for reports, never for tests.

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

#include "base/json.h"
#include "model/model.h"
#include "runtime/engine.h"
#include "server/http_server.h"
#include "tokenizer/tokenizer.h"

using namespace dsv3;
using Clock = std::chrono::steady_clock;

namespace {

double ms_since(Clock::time_point t0) { return std::chrono::duration<double, std::milli>(Clock::now() - t0).count(); }

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v.empty() ? 0.0 : v[v.size() / 2];
}

// Sends a streamed chat request and returns the milliseconds until the first SSE event that
// carries content (a "content" delta), or -1.
double http_first_token_ms(int port, const std::string& body) {
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(static_cast<uint16_t>(port));
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) return -1;
  const std::string request = "POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                              "Connection: close\r\nContent-Length: " +
                              std::to_string(body.size()) + "\r\n\r\n" + body;
  const auto t0 = Clock::now();
  if (::send(fd, request.data(), request.size(), MSG_NOSIGNAL) != static_cast<ssize_t>(request.size())) return -1;
  std::string got;
  char buf[4096];
  double first = -1;
  for (;;) {
    const ssize_t n = ::recv(fd, buf, sizeof buf, 0);
    if (n <= 0) break;
    got.append(buf, static_cast<size_t>(n));
    if (first < 0) {  // a content delta with text (the opening one may carry "" and the role)
      for (size_t at = got.find("\"content\":\""); at != std::string::npos; at = got.find("\"content\":\"", at + 1))
        if (at + 11 < got.size() && got[at + 11] != '"') first = ms_since(t0);
    }
  }
  ::close(fd);
  return first;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 2) {
    std::fprintf(stderr, "usage: %s MODEL_DIR [--runs 7] [--threads N] [--message TEXT] [--tokenizer DIR]\n", argv[0]);
    return 2;
  }
  int runs = 7, threads = 0;
  std::string tokenizer_dir = argv[1];
  std::string message = "Write one short sentence about the sea, the wind and the old ships in the harbour.";
  for (int i = 2; i + 1 < argc; i += 2) {
    const std::string flag = argv[i], value = argv[i + 1];
    if (flag == "--runs") runs = std::max(1, std::atoi(value.c_str()));
    else if (flag == "--threads") threads = std::atoi(value.c_str());
    else if (flag == "--message") message = value;
    else if (flag == "--tokenizer") tokenizer_dir = value;
  }
  ModelOptions mo;
  mo.threads = threads;
  mo.max_context = 4096;
  auto loaded = Model::load(argv[1], mo);
  if (!loaded.ok()) {
    std::fprintf(stderr, "%s\n", loaded.error().message().c_str());
    return 1;
  }
  Model& model = **loaded;
  auto tok = Tokenizer::load(tokenizer_dir);
  if (!tok.ok()) {
    std::fprintf(stderr, "%s\n", tok.error().message().c_str());
    return 1;
  }
  const Tokenizer& tokenizer = **tok;
  Engine engine(model, EngineOptions{});
  server::ServerOptions so;
  so.port = 0;
  server::OpenAIServer http(so);
  if (Status st = http.bind(); !st.ok()) {
    std::fprintf(stderr, "%s\n", st.error().message().c_str());
    return 1;
  }
  http.start();
  http.set_ready(&engine, &tokenizer, {"bench", model.vocab_size(), model.max_context()});

  const Json messages = Json::array({{{"role", "user"}, {"content", message}}});
  const std::string body =
      Json{{"model", "bench"}, {"messages", messages}, {"max_tokens", 1}, {"temperature", 0}, {"stream", true}}.dump();
  std::vector<double> templ, tokenize, forward, queued, prefill, engine_total, via_http;
  size_t prompt_tokens = 0;
  for (int r = 0; r < runs + 1; ++r) {  // the first run warms up and is not counted
    auto t0 = Clock::now();
    auto text = tokenizer.apply_chat_template(messages, true);
    if (!text.ok()) {
      std::fprintf(stderr, "%s\n", text.error().message().c_str());
      return 1;
    }
    const double t_template = ms_since(t0);
    t0 = Clock::now();
    const std::vector<int32_t> ids = tokenizer.encode(*text);
    const double t_tokenize = ms_since(t0);
    prompt_tokens = ids.size();

    KVCache cache = model.new_cache();
    SequenceInput in{&cache, ids, Logits::Last};
    ForwardOutput out;
    t0 = Clock::now();
    if (Status st = model.forward({&in, 1}, &out); !st.ok()) {
      std::fprintf(stderr, "%s\n", st.error().message().c_str());
      return 1;
    }
    const double t_forward = ms_since(t0);

    RequestParams params;
    params.max_new_tokens = 1;
    t0 = Clock::now();
    SubmitResult sr = engine.submit(ids, params);
    if (sr.status != SubmitStatus::Ok) {
      std::fprintf(stderr, "submit: %s\n", sr.message.c_str());
      return 1;
    }
    for (bool done = false; !done;) done = !sr.handle->wait(std::chrono::milliseconds(1000)).tokens.empty();
    const double t_engine = ms_since(t0);
    while (!sr.handle->wait(std::chrono::milliseconds(1000)).finished) {
    }
    const RequestTiming timing = sr.handle->timing();

    const double t_http = http_first_token_ms(http.port(), body);
    if (r == 0) continue;
    templ.push_back(t_template);
    tokenize.push_back(t_tokenize);
    forward.push_back(t_forward);
    queued.push_back(1e3 * timing.queued);
    prefill.push_back(1e3 * timing.prefill);
    engine_total.push_back(t_engine);
    via_http.push_back(t_http);
  }
  http.stop();
  engine.shutdown(std::chrono::milliseconds(0));

  std::printf("model %s, %zu prompt tokens, threads %d, medians of %d runs (ms)\n", argv[1], prompt_tokens,
              model.pool().size(), runs);
  std::printf("  template  %8.3f\n  tokenize  %8.3f\n  forward   %8.3f\n", median(templ), median(tokenize),
              median(forward));
  std::printf("  engine    %8.3f  (queued %.3f, prefill + sampling %.3f)\n", median(engine_total), median(queued),
              median(prefill));
  std::printf("  http      %8.3f  (first content byte of a streamed chat request on loopback)\n", median(via_http));
  std::printf("  http - (template + tokenize + engine) %8.3f\n  engine - forward                      %8.3f\n",
              median(via_http) - median(templ) - median(tokenize) - median(engine_total),
              median(engine_total) - median(forward));
  return 0;
}
