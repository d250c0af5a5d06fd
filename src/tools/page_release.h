#pragma once
// Reading a multi-GB checkpoint through its mapping once (convert, inspect --verify) would
// leave every touched page counted in the process's resident set. Dropping pages once they are
// consumed keeps the footprint at the working window; the data stays in the kernel's page
// cache, so nothing is lost but the mapping's claim on it.

#include <cstdint>

#include "base/mapped_file.h"

namespace dsv3 {

// Drops this process's pages of [p, p + n) if the range lies inside `file`'s mapping (a
// pointer elsewhere, e.g. an aligned heap copy, is left alone). Only whole pages inside the
// range are dropped, so neighbours still being read keep theirs. Best effort.
void drop_mapped_pages(const MappedFile& file, const uint8_t* p, uint64_t n);

// Drops all of this process's pages of `file`. Worth calling after a sparse pass (validation
// reads the small scale and norm tensors): on recent kernels each read of a page-cache folio
// maps the whole folio, up to 2 MB (measured on Linux 6.18: ~1.8 MB resident per byte read,
// whatever MADV_RANDOM or MADV_NOHUGEPAGE say). Those pages are clean and reclaimable, but
// they count as resident until dropped.
void drop_all_mapped_pages(const MappedFile& file);

}  // namespace dsv3
