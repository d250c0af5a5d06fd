#pragma once
// The Prometheus text (exposition format 0.0.4) of GET /metrics, rendered from a snapshot of
// the server's state: a pure function, so that the text itself is tested.

#include <cstdint>
#include <map>
#include <optional>
#include <string>

#include "base/memory_stats.h"
#include "runtime/engine.h"

namespace dsv3::server {

struct MetricsSnapshot {
  bool ready = false;                 // the model is loaded and the server is not draining
  std::optional<EngineStats> engine;  // absent until the model is loaded
  MemoryStats memory;
  std::map<int, uint64_t> responses_by_status;  // HTTP status -> responses sent
};

// Each metric with its HELP and TYPE lines; the engine's metrics only when it is there.
std::string render_metrics(const MetricsSnapshot& snapshot);

}  // namespace dsv3::server
