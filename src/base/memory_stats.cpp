#include "base/memory_stats.h"

#include <cstdint>
#include <cstdio>
#include <cstdlib>
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

PageResidency page_residency(const std::vector<MemoryRange>& ranges) {
  PageResidency r;
  FILE* f = std::fopen("/proc/self/smaps", "r");
  if (!f) return r;
  auto overlaps = [&](unsigned long long lo, unsigned long long hi) {
    for (const MemoryRange& m : ranges) {
      const auto begin = reinterpret_cast<uintptr_t>(m.p);
      if (m.bytes > 0 && lo < begin + m.bytes && hi > begin) return true;
    }
    return false;
  };
  bool inside = false;  // the current mapping overlaps a range
  char* line = nullptr;
  size_t cap = 0;
  while (::getline(&line, &cap, f) > 0) {
    unsigned long long lo = 0, hi = 0, kb = 0;
    if (std::sscanf(line, "%llx-%llx ", &lo, &hi) == 2) {  // a mapping's first line: its address range
      inside = overlaps(lo, hi);
    } else if (inside) {
      if (std::sscanf(line, "Rss: %llu kB", &kb) == 1) r.resident_bytes += kb * 1024;
      else if (std::sscanf(line, "FilePmdMapped: %llu kB", &kb) == 1) r.huge_bytes += kb * 1024;
      else if (std::sscanf(line, "AnonHugePages: %llu kB", &kb) == 1) r.huge_bytes += kb * 1024;
    }
  }
  std::free(line);
  std::fclose(f);
  return r;
}

std::string transparent_huge_pages_mode() {
  FILE* f = std::fopen("/sys/kernel/mm/transparent_hugepage/enabled", "r");
  if (!f) return "";
  char line[256] = {};
  const bool read = std::fgets(line, sizeof(line), f) != nullptr;
  std::fclose(f);
  if (!read) return "";
  // e.g. "always [madvise] never": the chosen one is in brackets
  const char* open = std::strchr(line, '[');
  const char* close = open ? std::strchr(open, ']') : nullptr;
  return open && close ? std::string(open + 1, close) : "";
}

}  // namespace dsv3
