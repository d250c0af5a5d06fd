#pragma once
// Read-only memory mapping of a whole file, used in place (weights are not copied; but see
// FileLoad::Read).
// Opening checks that the path is a regular file; every OS call failure names the file,
// the call and errno's text.
//
// A mapped file truncated or replaced after mapping makes the next page fault raise SIGBUS.
// install_sigbus_reporter() turns that into a fatal message naming the
// file instead of a silent crash; the mapping registry below makes the address lookup
// async-signal-safe.

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>

#include "base/result.h"

namespace dsv3 {

// How MappedFile::open brings a file into memory.
enum class FileLoad {
  // Mapped from the page cache (MAP_SHARED): no copy, loads at once; the kernel may evict
  // the pages of an idle process and re-read them later. Mapped at a 2 MB-aligned address
  // with MADV_HUGEPAGE, so that the page cache's 2 MB folios (where the filesystem has large
  // folios) are mapped 2 MB at a time, as --no-mmap's copy is: the pages read from disk come
  // in such folios; pages already cached in small ones stay small (memory_stats.h).
  Map,
  // Read into anonymous memory backed by transparent huge pages where the kernel gives them
  // (--no-mmap): a copy, written once at load; the file's page-cache copy is dropped as it is
  // read, so the data lives once in memory. One page-table entry per 2 MB instead of per 4 KB:
  // fewer TLB misses and, under a hypervisor that shadows page tables, 512x fewer traps when
  // the kernel's access-bit sampling (DAMON) has marked pages old (docs/benchmarks.md, "An
  // idle server"). Not replaced or truncated under the process: no SIGBUS to report.
  Read,
};

class MappedFile {
 public:
  static Result<std::unique_ptr<MappedFile>> open(const std::string& path, FileLoad load = FileLoad::Map);
  ~MappedFile();
  MappedFile(const MappedFile&) = delete;
  MappedFile& operator=(const MappedFile&) = delete;

  const uint8_t* data() const { return data_; }
  uint64_t size() const { return size_; }
  const std::string& path() const { return path_; }

 private:
  MappedFile() = default;
  std::string path_;
  const uint8_t* data_ = nullptr;
  uint64_t size_ = 0;
  int slot_ = -1;  // index in the SIGBUS registry
};

// Anonymous read-write memory, zero-filled, at a 2 MB-aligned address with MADV_HUGEPAGE:
// transparent huge pages where the system gives them, as the weights get (FileLoad); for
// buffers that stream like weights (the bandwidth probe's, a benchmark's weights). Null
// where the memory cannot be had.
struct HugePageUnmap {
  uint64_t bytes = 0;
  void operator()(uint8_t* p) const;
};
using HugePageBuffer = std::unique_ptr<uint8_t, HugePageUnmap>;
HugePageBuffer allocate_huge_pages(uint64_t bytes);

// Maps the pages of [p, p + bytes) of a mapping into this process now (reading them from the
// file if they are not in the page cache), so that the first computation that reads them does
// not stop at a page fault per page: MADV_POPULATE_READ (where the kernel has it), then one
// read per page (which a hypervisor's shadow page tables also need). Best effort: a page that
// cannot be read is left to fault, with the SIGBUS report below, when it is used.
void prefault_pages(const void* p, uint64_t bytes);

// Locks the pages of [p, p + bytes) of a mapping in memory (mlock): the kernel then never
// evicts them, not under memory pressure nor by proactive reclaim (e.g. a DAMON pageout scheme,
// which on this project's VMs drops the page cache of a file unused for about a minute). The
// error names errno's text and, when the memory-lock limit is what stopped it, that limit.
Status lock_pages(const void* p, uint64_t bytes);

// Installs a SIGBUS handler that names the mapped file a fault hit, then exits with status 1.
void install_sigbus_reporter();

// Reads a whole (small) file into a string; the error names the file and errno.
Result<std::string> read_text_file(const std::string& path, uint64_t max_bytes);

}  // namespace dsv3
