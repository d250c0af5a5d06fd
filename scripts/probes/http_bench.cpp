// Requests per second and latency of GET /health over kept-alive connections: the HTTP
// layer alone (no model work), for comparing servers (docs/server.md). Not built by CMake:
//
//   g++ -O2 -std=c++20 scripts/probes/http_bench.cpp -o /tmp/http_bench -lcpp-httplib -lpthread
//   /tmp/http_bench PORT CONNECTIONS SECONDS

#include <httplib.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <mutex>
#include <thread>
#include <vector>

int main(int argc, char** argv) {
  if (argc < 4) return 2;
  const int port = std::atoi(argv[1]), connections = std::atoi(argv[2]);
  const double seconds = std::atof(argv[3]);
  using Clock = std::chrono::steady_clock;
  const auto end = Clock::now() + std::chrono::duration<double>(seconds);
  std::mutex mu;
  std::vector<double> latencies_us;
  std::atomic<int> errors{0};
  std::vector<std::thread> threads;
  for (int c = 0; c < connections; ++c)
    threads.emplace_back([&] {
      httplib::Client client("127.0.0.1", port);
      client.set_keep_alive(true);
      std::vector<double> mine;
      while (Clock::now() < end) {
        const auto t0 = Clock::now();
        auto r = client.Get("/health");
        if (!r || r->status != 200) {
          ++errors;
          continue;
        }
        mine.push_back(std::chrono::duration<double, std::micro>(Clock::now() - t0).count());
      }
      std::lock_guard<std::mutex> lock(mu);
      latencies_us.insert(latencies_us.end(), mine.begin(), mine.end());
    });
  for (auto& t : threads) t.join();
  std::sort(latencies_us.begin(), latencies_us.end());
  auto pct = [&](double p) { return latencies_us.empty() ? 0.0 : latencies_us[static_cast<size_t>(p * (latencies_us.size() - 1))]; };
  std::printf("{\"requests_per_second\": %.0f, \"p50_us\": %.0f, \"p99_us\": %.0f, \"errors\": %d}\n",
              latencies_us.size() / seconds, pct(0.5), pct(0.99), errors.load());
}
