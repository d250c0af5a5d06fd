#include "base/memory_stats.h"

#include <cstdio>
#include <cstring>

namespace dsv3 {

MemoryStats memory_stats() {
  MemoryStats s;
  FILE* f = std::fopen("/proc/self/status", "r");
  if (!f) return s;
  char line[256];
  while (std::fgets(line, sizeof(line), f)) {
    unsigned long long kb = 0;
    if (std::sscanf(line, "VmRSS: %llu kB", &kb) == 1) s.resident_bytes = kb * 1024;
    else if (std::sscanf(line, "RssFile: %llu kB", &kb) == 1) s.resident_file_bytes = kb * 1024;
    else if (std::sscanf(line, "RssAnon: %llu kB", &kb) == 1) s.resident_anon_bytes = kb * 1024;
    else if (std::sscanf(line, "VmHWM: %llu kB", &kb) == 1) s.peak_resident_bytes = kb * 1024;
  }
  std::fclose(f);
  return s;
}

}  // namespace dsv3
