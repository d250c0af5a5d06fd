#include "server/metrics.h"

#include "base/result.h"

namespace dsv3::server {

std::string render_metrics(const MetricsSnapshot& snapshot) {
  std::string out;
  auto metric = [&](const char* name, const char* type, const char* help, double value) {
    out += str_f("# HELP %s %s\n# TYPE %s %s\n%s %.17g\n", name, help, name, type, name, value);
  };
  metric("dsv3_ready", "gauge", "1 when the model is loaded and the server accepts requests.", snapshot.ready ? 1 : 0);
  if (const auto& st = snapshot.engine) {
    metric("dsv3_requests_total", "counter", "Generation requests accepted by the engine.", st->requests_submitted);
    metric("dsv3_requests_finished_total", "counter", "Generation requests that ran to completion.",
           st->requests_finished);
    metric("dsv3_requests_cancelled_total", "counter", "Generation requests cancelled (client gone or stop string).",
           st->requests_cancelled);
    metric("dsv3_requests_failed_total", "counter", "Generation requests that failed in the engine.",
           st->requests_failed);
    metric("dsv3_prompt_tokens_total", "counter", "Prompt tokens processed.", st->prompt_tokens);
    metric("dsv3_generation_tokens_total", "counter", "Tokens generated.", st->generated_tokens);
    metric("dsv3_queue_length", "gauge", "Requests waiting for a batch slot.", st->queue_length);
    metric("dsv3_running_requests", "gauge", "Requests in the running batch.", st->running);
    metric("dsv3_generation_tokens_per_second", "gauge", "Generated tokens per second over the last seconds.",
           st->generated_tokens_per_second);
    metric("dsv3_kv_cache_bytes", "gauge", "Bytes held by the running sequences' KV caches.", st->kv_cache_bytes);
    metric("dsv3_prefix_cache_bytes", "gauge", "Bytes held by finished requests' caches kept for later prompts.",
           st->prefix_cache_bytes);
    metric("dsv3_prefix_cache_hits_total", "counter", "Requests that started from a cached prompt prefix.",
           st->prefix_cache_hits);
    metric("dsv3_prefix_cache_tokens_total", "counter", "Prompt tokens taken from the prefix cache, not prefilled.",
           st->prefix_cache_tokens);
    metric("dsv3_draft_tokens_total", "counter", "Tokens drafted by the MTP module and verified (speculative decoding).",
           st->draft_tokens);
    metric("dsv3_draft_tokens_accepted_total", "counter", "Drafted tokens kept by verification.",
           st->draft_tokens_accepted);
  }
  metric("dsv3_process_resident_memory_bytes", "gauge", "Resident memory of the server process.",
         static_cast<double>(snapshot.memory.resident_bytes));
  metric("dsv3_process_resident_anonymous_bytes", "gauge", "Resident anonymous memory (heap, KV caches).",
         static_cast<double>(snapshot.memory.resident_anon_bytes));
  out += "# HELP dsv3_http_responses_total HTTP responses by status code.\n# TYPE dsv3_http_responses_total counter\n";
  for (const auto& [status, n] : snapshot.responses_by_status)
    out += str_f("dsv3_http_responses_total{status=\"%d\"} %llu\n", status, static_cast<unsigned long long>(n));
  return out;
}

}  // namespace dsv3::server
