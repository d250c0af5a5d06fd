#pragma once
// A load generator for `dsv3 serve` (or any OpenAI-compatible server): N concurrent clients
// send streaming chat completions back to back for a fixed time; the report gives aggregate
// generated tokens per second (over the whole run, and while decoding), time to first token
// and inter-token latency percentiles, errors, and the server's resident memory before and
// after (from /metrics).

#include <cstdint>
#include <string>

#include "base/json.h"
#include "base/result.h"

namespace dsv3 {

struct LoadTestOptions {
  std::string url = "http://127.0.0.1:8000";
  std::string api_key;
  std::string model;          // empty: the first id of /v1/models
  int clients = 4;
  double duration_seconds = 30;
  int max_tokens = 64;
  std::string prompt = "Write a short story about a lighthouse keeper.";
  double temperature = 0.8;
  double top_p = 1.0;  // sent only when below 1
};

struct LoadTestReport {
  int clients = 0;
  double seconds = 0;
  int64_t requests_ok = 0, requests_failed = 0;
  int64_t generated_tokens = 0;
  double tokens_per_second = 0;  // aggregate over all clients
  // Decode alone: per client, tokens after each request's first over the time from its first
  // to its last token, summed over the clients (prefill and the wait for it left out).
  double decode_tokens_per_second = 0;
  double ttft_p50_ms = 0, ttft_p99_ms = 0;
  double itl_p50_ms = 0, itl_p99_ms = 0;
  int64_t server_rss_before = -1, server_rss_after = -1;    // bytes, -1 if /metrics lacks it
  int64_t server_anon_before = -1, server_anon_after = -1;  // anonymous part (heap, KV caches)
  std::string first_error;
  Json to_json() const;
  std::string to_text() const;
};

Result<LoadTestReport> run_load_test(const LoadTestOptions& options);

}  // namespace dsv3
