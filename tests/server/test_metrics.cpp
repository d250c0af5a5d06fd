// GET /metrics: the Prometheus text of a snapshot, compared exactly.

#include <gtest/gtest.h>

#include <sstream>

#include "server/metrics.h"

using namespace dsv3;
using namespace dsv3::server;

namespace {

EngineStats busy_engine() {
  EngineStats st;
  st.requests_submitted = 12;
  st.requests_finished = 9;
  st.requests_cancelled = 2;
  st.requests_failed = 1;
  st.prompt_tokens = 3400;
  st.generated_tokens = 1500;
  st.steps = 77;  // not exported
  st.queue_length = 3;
  st.running = 4;
  st.generated_tokens_per_second = 12.5;
  st.kv_cache_bytes = uint64_t{1} << 40;
  st.prefix_cache_bytes = 65536;
  st.prefix_cache_hits = 5;
  st.prefix_cache_tokens = 640;
  st.draft_tokens = 300;
  st.draft_tokens_accepted = 240;
  return st;
}

MemoryStats memory(uint64_t resident, uint64_t anonymous) {
  MemoryStats m;
  m.resident_bytes = resident;
  m.resident_anon_bytes = anonymous;
  m.resident_file_bytes = 7;  // not exported
  return m;
}

// The lines that carry values (not # HELP / # TYPE), in order.
std::vector<std::string> samples(const std::string& text) {
  std::vector<std::string> out;
  std::istringstream in(text);
  for (std::string line; std::getline(in, line);)
    if (!line.starts_with("#")) out.push_back(line);
  return out;
}

}  // namespace

TEST(Metrics, EachMetricHasHelpTypeAndValue) {
  MetricsSnapshot s;
  s.ready = true;
  s.memory = memory(2048, 1024);
  s.responses_by_status = {{200, 1}};
  EXPECT_EQ(render_metrics(s),
            "# HELP dsv3_ready 1 when the model is loaded and the server accepts requests.\n"
            "# TYPE dsv3_ready gauge\n"
            "dsv3_ready 1\n"
            "# HELP dsv3_process_resident_memory_bytes Resident memory of the server process.\n"
            "# TYPE dsv3_process_resident_memory_bytes gauge\n"
            "dsv3_process_resident_memory_bytes 2048\n"
            "# HELP dsv3_process_resident_anonymous_bytes Resident anonymous memory (heap, KV caches).\n"
            "# TYPE dsv3_process_resident_anonymous_bytes gauge\n"
            "dsv3_process_resident_anonymous_bytes 1024\n"
            "# HELP dsv3_http_responses_total HTTP responses by status code.\n"
            "# TYPE dsv3_http_responses_total counter\n"
            "dsv3_http_responses_total{status=\"200\"} 1\n");
}

TEST(Metrics, SamplesOfEachSnapshot) {
  struct Row {
    const char* name;
    MetricsSnapshot snapshot;
    std::vector<std::string> samples;
  };
  const std::vector<Row> rows = {
      {"loading: no engine yet, no responses",
       {false, std::nullopt, memory(100, 60), {}},
       {"dsv3_ready 0", "dsv3_process_resident_memory_bytes 100", "dsv3_process_resident_anonymous_bytes 60"}},
      {"serving: every engine metric, responses ordered by status",
       {true, busy_engine(), memory(5000000000, 4000000000), {{503, 2}, {200, 30}, {429, 1}}},
       {"dsv3_ready 1",
        "dsv3_requests_total 12",
        "dsv3_requests_finished_total 9",
        "dsv3_requests_cancelled_total 2",
        "dsv3_requests_failed_total 1",
        "dsv3_prompt_tokens_total 3400",
        "dsv3_generation_tokens_total 1500",
        "dsv3_queue_length 3",
        "dsv3_running_requests 4",
        "dsv3_generation_tokens_per_second 12.5",
        "dsv3_kv_cache_bytes 1099511627776",
        "dsv3_prefix_cache_bytes 65536",
        "dsv3_prefix_cache_hits_total 5",
        "dsv3_prefix_cache_tokens_total 640",
        "dsv3_draft_tokens_total 300",
        "dsv3_draft_tokens_accepted_total 240",
        "dsv3_process_resident_memory_bytes 5000000000",
        "dsv3_process_resident_anonymous_bytes 4000000000",
        "dsv3_http_responses_total{status=\"200\"} 30",
        "dsv3_http_responses_total{status=\"429\"} 1",
        "dsv3_http_responses_total{status=\"503\"} 2"}},
      {"draining: not ready, the engine still reported",
       {false, EngineStats{}, memory(0, 0), {}},
       {"dsv3_ready 0", "dsv3_requests_total 0", "dsv3_requests_finished_total 0", "dsv3_requests_cancelled_total 0",
        "dsv3_requests_failed_total 0", "dsv3_prompt_tokens_total 0", "dsv3_generation_tokens_total 0",
        "dsv3_queue_length 0", "dsv3_running_requests 0", "dsv3_generation_tokens_per_second 0",
        "dsv3_kv_cache_bytes 0", "dsv3_prefix_cache_bytes 0", "dsv3_prefix_cache_hits_total 0",
        "dsv3_prefix_cache_tokens_total 0", "dsv3_draft_tokens_total 0", "dsv3_draft_tokens_accepted_total 0",
        "dsv3_process_resident_memory_bytes 0",
        "dsv3_process_resident_anonymous_bytes 0"}},
      {"a rate keeps 17 significant digits",
       {true, [] {
          EngineStats st;
          st.generated_tokens_per_second = 0.1;
          return st;
        }(),
        memory(1, 1), {}},
       {"dsv3_ready 1", "dsv3_requests_total 0", "dsv3_requests_finished_total 0", "dsv3_requests_cancelled_total 0",
        "dsv3_requests_failed_total 0", "dsv3_prompt_tokens_total 0", "dsv3_generation_tokens_total 0",
        "dsv3_queue_length 0", "dsv3_running_requests 0", "dsv3_generation_tokens_per_second 0.10000000000000001",
        "dsv3_kv_cache_bytes 0", "dsv3_prefix_cache_bytes 0", "dsv3_prefix_cache_hits_total 0",
        "dsv3_prefix_cache_tokens_total 0", "dsv3_draft_tokens_total 0", "dsv3_draft_tokens_accepted_total 0",
        "dsv3_process_resident_memory_bytes 1",
        "dsv3_process_resident_anonymous_bytes 1"}},
  };
  for (const Row& row : rows) EXPECT_EQ(samples(render_metrics(row.snapshot)), row.samples) << row.name;
}
