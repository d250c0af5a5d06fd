#include "tools/page_release.h"

#include <sys/mman.h>
#include <unistd.h>

namespace dsv3 {

void drop_mapped_pages(const MappedFile& file, const uint8_t* p, uint64_t n) {
  const uintptr_t begin = reinterpret_cast<uintptr_t>(p), end = begin + n;
  const uintptr_t map_begin = reinterpret_cast<uintptr_t>(file.data()), map_end = map_begin + file.size();
  if (n == 0 || !file.data() || begin < map_begin || end > map_end) return;
  const uintptr_t page = static_cast<uintptr_t>(::sysconf(_SC_PAGESIZE));
  const uintptr_t first = (begin + page - 1) & ~(page - 1), last = end & ~(page - 1);
  // MADV_DONTNEED on a read-only shared file mapping only unmaps the pages: a later access
  // faults them back in from the page cache (or the file) unchanged.
  if (last > first) ::madvise(reinterpret_cast<void*>(first), last - first, MADV_DONTNEED);
}

void drop_all_mapped_pages(const MappedFile& file) {
  if (file.data() && file.size() > 0)
    ::madvise(const_cast<uint8_t*>(file.data()), file.size(), MADV_DONTNEED);  // mmap returns page-aligned memory
}

}  // namespace dsv3
