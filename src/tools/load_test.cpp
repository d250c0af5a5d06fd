#include "tools/load_test.h"

#include <httplib.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <mutex>
#include <thread>
#include <tuple>
#include <utility>
#include <vector>

namespace dsv3 {
namespace {

using Clock = std::chrono::steady_clock;

struct Endpoint {
  std::string host;
  int port = 80;
};

Result<Endpoint> parse_url(const std::string& url) {
  const std::string prefix = "http://";
  if (url.rfind(prefix, 0) != 0) return Error("--url must start with http:// (got '" + url.substr(0, 60) + "')");
  std::string rest = url.substr(prefix.size());
  if (auto slash = rest.find('/'); slash != std::string::npos) rest.resize(slash);
  Endpoint e;
  auto colon = rest.rfind(':');
  if (colon == std::string::npos) {
    e.host = rest;
  } else {
    e.host = rest.substr(0, colon);
    e.port = std::atoi(rest.c_str() + colon + 1);
  }
  if (e.host.empty() || e.port <= 0 || e.port > 65535) return Error("--url: cannot read host and port from '" + url.substr(0, 60) + "'");
  return e;
}

httplib::Headers headers_for(const LoadTestOptions& o) {
  httplib::Headers h = {{"Content-Type", "application/json"}};
  if (!o.api_key.empty()) h.emplace("Authorization", "Bearer " + o.api_key);
  return h;
}

// Server resident memory from /metrics: total (dsv3_process_resident_memory_bytes) and
// anonymous (dsv3_process_resident_anonymous_bytes: heap and KV caches, without the weight
// file's pages, which grow as weights are first touched); -1 where absent.
std::pair<int64_t, int64_t> server_rss(httplib::Client& cli, const httplib::Headers& h) {
  auto r = cli.Get("/metrics", h);
  if (!r || r->status != 200) return {-1, -1};
  auto value = [&](const std::string& name) -> int64_t {
    const std::string key = "\n" + name + " ";
    auto p = r->body.find(key);
    if (p == std::string::npos) return -1;
    return static_cast<int64_t>(std::atof(r->body.c_str() + p + key.size()));
  };
  return {value("dsv3_process_resident_memory_bytes"), value("dsv3_process_resident_anonymous_bytes")};
}

double percentile(std::vector<double> v, double q) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  size_t i = static_cast<size_t>(q * static_cast<double>(v.size() - 1) + 0.5);
  return v[std::min(i, v.size() - 1)];
}

struct ClientStats {
  int64_t ok = 0, failed = 0, tokens = 0;
  int64_t decode_tokens = 0;  // tokens after each request's first
  double decode_seconds = 0;  // from each request's first token to its last
  std::vector<double> ttft_ms, itl_ms;
  std::string first_error;
};

// One streaming request; returns false with `error` set on failure.
bool one_request(httplib::Client& cli, const LoadTestOptions& o, const std::string& model, int client, int64_t seq,
                 ClientStats& st) {
  Json body = {{"model", model},
               {"messages", Json::array({{{"role", "user"}, {"content", o.prompt + " (" + std::to_string(client) + "-" +
                                                                             std::to_string(seq) + ")"}}})},
               {"max_tokens", o.max_tokens},
               {"temperature", o.temperature},
               {"stream", true},
               {"stream_options", {{"include_usage", true}}}};
  if (o.top_p < 1.0) body["top_p"] = o.top_p;
  httplib::Request req;
  req.method = "POST";
  req.path = "/v1/chat/completions";
  req.headers = headers_for(o);
  req.body = body.dump();
  std::string buffer, error;
  int64_t usage_tokens = -1, chunks = 0;
  auto start = Clock::now();
  auto last = start, first_at = start;
  bool first = true;
  req.content_receiver = [&](const char* data, size_t len, uint64_t, uint64_t) {
    buffer.append(data, len);
    for (size_t nl; (nl = buffer.find("\n\n")) != std::string::npos;) {
      std::string event = buffer.substr(0, nl);
      buffer.erase(0, nl + 2);
      if (event.rfind("data: ", 0) != 0) continue;
      std::string payload = event.substr(6);
      if (payload == "[DONE]") continue;
      Json j = Json::parse(payload, nullptr, false);
      if (j.is_discarded()) continue;
      if (j.contains("error")) {
        error = j["error"].value("message", "error event");
        continue;
      }
      if (j.contains("usage") && j["usage"].is_object()) usage_tokens = j["usage"].value("completion_tokens", int64_t(0));
      if (!j.contains("choices") || j["choices"].empty()) continue;
      const Json& d = j["choices"][0].value("delta", Json::object());
      bool has_text = (d.contains("content") && d["content"].is_string() && !d["content"].get<std::string>().empty()) ||
                      (d.contains("reasoning_content") && d["reasoning_content"].is_string());
      if (!has_text) continue;
      auto now = Clock::now();
      ++chunks;
      if (first) {
        st.ttft_ms.push_back(std::chrono::duration<double, std::milli>(now - start).count());
        first = false;
        first_at = now;
      } else {
        st.itl_ms.push_back(std::chrono::duration<double, std::milli>(now - last).count());
      }
      last = now;
    }
    return true;
  };
  auto res = cli.send(req);
  if (!res) error = "transport error: " + httplib::to_string(res.error());
  else if (res->status != 200) error = "HTTP " + std::to_string(res->status);
  if (!error.empty()) {
    ++st.failed;
    if (st.first_error.empty()) st.first_error = error;
    return false;
  }
  ++st.ok;
  const int64_t tokens = usage_tokens >= 0 ? usage_tokens : chunks;
  st.tokens += tokens;
  if (tokens >= 2 && last > first_at) {
    st.decode_tokens += tokens - 1;
    st.decode_seconds += std::chrono::duration<double>(last - first_at).count();
  }
  return true;
}

}  // namespace

Json LoadTestReport::to_json() const {
  return Json{{"clients", clients},
              {"seconds", seconds},
              {"requests_ok", requests_ok},
              {"requests_failed", requests_failed},
              {"generated_tokens", generated_tokens},
              {"tokens_per_second", tokens_per_second},
              {"decode_tokens_per_second", decode_tokens_per_second},
              {"ttft_ms", {{"p50", ttft_p50_ms}, {"p99", ttft_p99_ms}}},
              {"itl_ms", {{"p50", itl_p50_ms}, {"p99", itl_p99_ms}}},
              {"server_rss_bytes", {{"before", server_rss_before}, {"after", server_rss_after}}},
              {"server_anonymous_bytes", {{"before", server_anon_before}, {"after", server_anon_after}}},
              {"first_error", first_error}};
}

std::string LoadTestReport::to_text() const {
  std::string s = str_f(
      "clients %d, %.1f s: %lld requests ok, %lld failed\n"
      "generated %lld tokens: %.1f tok/s aggregate, %.1f tok/s aggregate while decoding\n"
      "time to first token: p50 %.1f ms, p99 %.1f ms\n"
      "inter-token latency: p50 %.1f ms, p99 %.1f ms\n",
      clients, seconds, static_cast<long long>(requests_ok), static_cast<long long>(requests_failed),
      static_cast<long long>(generated_tokens), tokens_per_second, decode_tokens_per_second, ttft_p50_ms, ttft_p99_ms, itl_p50_ms, itl_p99_ms);
  if (server_rss_before >= 0)
    s += str_f("server resident memory: %.1f MB before, %.1f MB after (anonymous: %.1f MB before, %.1f MB after)\n",
               server_rss_before / 1e6, server_rss_after / 1e6, server_anon_before / 1e6, server_anon_after / 1e6);
  if (!first_error.empty()) s += "first error: " + first_error + "\n";
  return s;
}

Result<LoadTestReport> run_load_test(const LoadTestOptions& o) {
  if (o.clients < 1) return Error("--clients must be at least 1");
  DSV3_ASSIGN(Endpoint ep, parse_url(o.url));
  httplib::Client probe(ep.host, ep.port);
  probe.set_read_timeout(30, 0);
  auto h = headers_for(o);
  std::string model = o.model;
  if (model.empty()) {
    auto r = probe.Get("/v1/models", h);
    if (!r) return Error("cannot reach " + o.url + ": " + httplib::to_string(r.error()));
    if (r->status != 200) return error_f("GET /v1/models answered HTTP %d", r->status);
    Json j = Json::parse(r->body, nullptr, false);
    if (j.is_discarded() || !j.contains("data") || j["data"].empty()) return Error("GET /v1/models: no model listed");
    model = j["data"][0].value("id", "");
  }
  LoadTestReport rep;
  rep.clients = o.clients;
  std::tie(rep.server_rss_before, rep.server_anon_before) = server_rss(probe, h);

  std::vector<ClientStats> stats(static_cast<size_t>(o.clients));
  const auto start = Clock::now();
  const auto deadline = start + std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(o.duration_seconds));
  std::vector<std::thread> threads;
  for (int c = 0; c < o.clients; ++c) {
    threads.emplace_back([&, c] {
      httplib::Client cli(ep.host, ep.port);
      cli.set_read_timeout(600, 0);
      for (int64_t seq = 0; Clock::now() < deadline; ++seq) one_request(cli, o, model, c, seq, stats[c]);
    });
  }
  for (auto& t : threads) t.join();
  rep.seconds = std::chrono::duration<double>(Clock::now() - start).count();
  std::vector<double> ttft, itl;
  for (const auto& s : stats) {
    rep.requests_ok += s.ok;
    rep.requests_failed += s.failed;
    rep.generated_tokens += s.tokens;
    if (s.decode_seconds > 0) rep.decode_tokens_per_second += static_cast<double>(s.decode_tokens) / s.decode_seconds;
    ttft.insert(ttft.end(), s.ttft_ms.begin(), s.ttft_ms.end());
    itl.insert(itl.end(), s.itl_ms.begin(), s.itl_ms.end());
    if (rep.first_error.empty()) rep.first_error = s.first_error;
  }
  rep.tokens_per_second = rep.seconds > 0 ? rep.generated_tokens / rep.seconds : 0;
  rep.ttft_p50_ms = percentile(ttft, 0.5);
  rep.ttft_p99_ms = percentile(ttft, 0.99);
  rep.itl_p50_ms = percentile(itl, 0.5);
  rep.itl_p99_ms = percentile(itl, 0.99);
  std::this_thread::sleep_for(std::chrono::seconds(1));  // let the server release finished requests
  std::tie(rep.server_rss_after, rep.server_anon_after) = server_rss(probe, h);
  return rep;
}

}  // namespace dsv3
