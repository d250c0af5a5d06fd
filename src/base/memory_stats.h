#pragma once
// Resident memory of this process, from /proc/self/status (0 where unavailable).

#include <cstdint>

namespace dsv3 {

struct MemoryStats {
  uint64_t resident_bytes = 0;       // VmRSS: anonymous + file-backed pages in RAM
  uint64_t resident_file_bytes = 0;  // RssFile: mapped file pages (e.g. weights) in RAM
  uint64_t resident_anon_bytes = 0;  // RssAnon: heap, stacks, KV caches
  uint64_t peak_resident_bytes = 0;  // VmHWM
};

MemoryStats memory_stats();

}  // namespace dsv3
