#pragma once
// Resident memory of this process, from /proc/self/status and /proc/self/smaps (0 where
// unavailable).

#include <cstdint>
#include <string>
#include <vector>

namespace dsv3 {

struct MemoryStats {
  uint64_t resident_bytes = 0;       // VmRSS: anonymous + file-backed pages in RAM
  uint64_t resident_file_bytes = 0;  // RssFile: mapped file pages (e.g. weights) in RAM
  uint64_t resident_anon_bytes = 0;  // RssAnon: heap, stacks, KV caches
  uint64_t peak_resident_bytes = 0;  // VmHWM
};

MemoryStats memory_stats();

// The pages of this process's mappings that overlap any of the ranges (whole mappings: a
// file's or an allocation's, each counted once), from /proc/self/smaps.
struct PageResidency {
  uint64_t resident_bytes = 0;  // Rss
  // Of those, the ones mapped 2 MB at a time (one page-table entry for 512 pages): a file's
  // huge page-cache folios (FilePmdMapped), transparent huge pages of anonymous memory
  // (AnonHugePages). Fewer TLB misses, and under a hypervisor that shadows page tables fewer
  // trips to it: on this project's VMs decode ran 1.2x faster with the weights in them
  // (docs/benchmarks.md, "Weights in 2 MB pages").
  uint64_t huge_bytes = 0;
};
struct MemoryRange {
  const void* p = nullptr;
  uint64_t bytes = 0;
};
PageResidency page_residency(const std::vector<MemoryRange>& ranges);

// The system's transparent huge page mode (/sys/kernel/mm/transparent_hugepage/enabled):
// "always", "madvise" (for memory a program asks, as dsv3 does for its weights) or "never";
// empty where the kernel has none.
std::string transparent_huge_pages_mode();

}  // namespace dsv3
