#include "base/mapped_file.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cstring>
#include <utility>

namespace dsv3 {
namespace {

// Registry of live mappings for the SIGBUS reporter: fixed slots, written under a mutex-free
// protocol (the handler only reads; a slot's path is set before its range is published).
constexpr int kMaxMappings = 4096;
struct MappingSlot {
  std::atomic<uintptr_t> begin{0};
  std::atomic<uintptr_t> end{0};
  char path[512];
};
MappingSlot g_slots[kMaxMappings];
std::atomic<int> g_next_slot{0};

int register_mapping(const uint8_t* data, uint64_t size, const std::string& path) {
  for (int tries = 0; tries < kMaxMappings; ++tries) {
    int i = g_next_slot.fetch_add(1) % kMaxMappings;
    uintptr_t expected = 0;
    if (g_slots[i].begin.load() != 0) continue;
    std::strncpy(g_slots[i].path, path.c_str(), sizeof(g_slots[i].path) - 1);
    g_slots[i].path[sizeof(g_slots[i].path) - 1] = '\0';
    g_slots[i].end.store(reinterpret_cast<uintptr_t>(data) + size);
    if (g_slots[i].begin.compare_exchange_strong(expected, reinterpret_cast<uintptr_t>(data))) return i;
  }
  return -1;  // registry full: the mapping works, only the SIGBUS message loses the file name
}

void write_stderr(const char* s) {
  ssize_t r = ::write(2, s, std::strlen(s));
  (void)r;
}

void sigbus_handler(int, siginfo_t* info, void*) {
  auto addr = reinterpret_cast<uintptr_t>(info->si_addr);
  write_stderr("dsv3: fatal: bus error reading a memory-mapped file");
  for (auto& slot : g_slots) {
    uintptr_t b = slot.begin.load(std::memory_order_relaxed);
    if (b != 0 && addr >= b && addr < slot.end.load(std::memory_order_relaxed)) {
      write_stderr(" '");
      write_stderr(slot.path);
      write_stderr("'");
      break;
    }
  }
  write_stderr(": the file was truncated, replaced or became unreadable after it was loaded\n");
  _exit(1);
}

// A file descriptor, closed when it goes out of scope.
class FileDescriptor {
 public:
  explicit FileDescriptor(int fd) : fd_(fd) {}
  FileDescriptor(FileDescriptor&& other) noexcept : fd_(std::exchange(other.fd_, -1)) {}
  FileDescriptor(const FileDescriptor&) = delete;
  FileDescriptor& operator=(const FileDescriptor&) = delete;
  ~FileDescriptor() {
    if (fd_ >= 0) ::close(fd_);
  }
  int get() const { return fd_; }

 private:
  int fd_;
};

// Opens a regular file for reading, its fstat in `st`. The path is checked with stat before
// it is opened, and opened non-blocking: opening a FIFO for reading would otherwise wait
// forever. The descriptor is checked again, since the path may have changed in between.
Result<FileDescriptor> open_regular_file(const std::string& path, struct stat* st) {
  struct stat pre {};
  if (::stat(path.c_str(), &pre) != 0) return error_f("cannot open '%s': %s", path.c_str(), std::strerror(errno));
  if (!S_ISREG(pre.st_mode)) return error_f("'%s' is not a regular file", path.c_str());
  FileDescriptor fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NONBLOCK));
  if (fd.get() < 0) return error_f("cannot open '%s': %s", path.c_str(), std::strerror(errno));
  if (::fstat(fd.get(), st) != 0) return error_f("cannot stat '%s': %s", path.c_str(), std::strerror(errno));
  if (!S_ISREG(st->st_mode)) return error_f("'%s' is not a regular file", path.c_str());
  return Result<FileDescriptor>(std::move(fd));
}

// mmap(nullptr, size, prot, flags, fd, 0), but at a 2 MB-aligned address. A file's page cache
// keeps it in folios of up to 2 MB aligned to file offsets (where its filesystem has large
// folios: ext4 on this project's Linux 6.18 VMs does), and the kernel maps a 2 MB folio with
// one page-table entry only where the virtual address is aligned like the file offset;
// anonymous memory likewise gets transparent huge pages only on aligned 2 MB. The kernel here
// already picked such an address for a large file; this makes sure of it. MADV_HUGEPAGE then
// asks for huge pages where the system leaves the choice to the program (transparent_hugepage
// "madvise"): for a file, the pages it reads from disk come in 2 MB folios.
void* map_huge_aligned(uint64_t size, int prot, int flags, int fd) {
  constexpr uint64_t kHuge = uint64_t{2} << 20;
  void* p = MAP_FAILED;
  void* reserved = ::mmap(nullptr, size + kHuge, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
  if (reserved != MAP_FAILED) {
    const uint64_t page = static_cast<uint64_t>(::sysconf(_SC_PAGESIZE));
    const uintptr_t r = reinterpret_cast<uintptr_t>(reserved), a = (r + kHuge - 1) & ~(kHuge - 1);
    const uint64_t mapped = (size + page - 1) / page * page;
    p = ::mmap(reinterpret_cast<void*>(a), size, prot, flags | MAP_FIXED, fd, 0);
    if (p == MAP_FAILED) {
      ::munmap(reserved, size + kHuge);
    } else {  // give back the reservation around it
      if (a > r) ::munmap(reserved, a - r);
      if (r + mapped + kHuge > a + mapped) ::munmap(reinterpret_cast<void*>(a + mapped), r + kHuge - a);
    }
  }
  if (p == MAP_FAILED) p = ::mmap(nullptr, size, prot, flags, fd, 0);  // then wherever the kernel puts it
#ifdef MADV_HUGEPAGE
  if (p != MAP_FAILED) (void)::madvise(p, size, MADV_HUGEPAGE);  // best effort: without it, what the system gives
#endif
  return p;
}

// The file's `size` bytes read into fresh anonymous memory (transparent huge pages where the
// kernel gives them), read-only once read; the page cache drops each piece as it is read.
Result<const uint8_t*> read_into_memory(int fd, uint64_t size, const std::string& path) {
  void* p = map_huge_aligned(size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1);
  if (p == MAP_FAILED)
    return error_f("cannot allocate %llu bytes to read '%s' into: %s", static_cast<unsigned long long>(size),
                   path.c_str(), std::strerror(errno));
  constexpr uint64_t kPiece = uint64_t{64} << 20;
  uint8_t* dst = static_cast<uint8_t*>(p);
  for (uint64_t off = 0; off < size;) {
    const ssize_t got = ::pread(fd, dst + off, static_cast<size_t>(std::min(kPiece, size - off)), static_cast<off_t>(off));
    if (got < 0 && errno == EINTR) continue;
    if (got <= 0) {
      const std::string why = got == 0 ? "the file ended early (truncated while loading?)" : std::strerror(errno);
      ::munmap(p, size);
      return error_f("reading '%s' at byte %llu of %llu: %s", path.c_str(), static_cast<unsigned long long>(off),
                     static_cast<unsigned long long>(size), why.c_str());
    }
    (void)::posix_fadvise(fd, static_cast<off_t>(off), got, POSIX_FADV_DONTNEED);
    off += static_cast<uint64_t>(got);
  }
  (void)::mprotect(p, size, PROT_READ);
  return static_cast<const uint8_t*>(p);
}

}  // namespace

Result<std::unique_ptr<MappedFile>> MappedFile::open(const std::string& path, FileLoad load) {
  struct stat st {};
  DSV3_ASSIGN(const FileDescriptor fd, open_regular_file(path, &st));
  // A sparse file far larger than its allocated blocks is not a downloaded shard (a
  // preallocated placeholder or an interrupted copy) and would read as zeros.
  uint64_t size = static_cast<uint64_t>(st.st_size);
  uint64_t allocated = static_cast<uint64_t>(st.st_blocks) * 512;
  if (size > (uint64_t(1) << 30) && allocated < size / 16) {
    return error_f("'%s' is a sparse file (%llu bytes, %llu allocated): not a real download", path.c_str(),
                   static_cast<unsigned long long>(size), static_cast<unsigned long long>(allocated));
  }
  auto mf = std::unique_ptr<MappedFile>(new MappedFile());
  mf->path_ = path;
  mf->size_ = size;
  if (size > 0 && load == FileLoad::Read) {
    DSV3_ASSIGN(mf->data_, read_into_memory(fd.get(), size, path));
  } else if (size > 0) {
    void* p = map_huge_aligned(size, PROT_READ, MAP_SHARED, fd.get());
    if (p == MAP_FAILED)
      return error_f("mmap of '%s' (%llu bytes) failed: %s", path.c_str(), static_cast<unsigned long long>(size),
                     std::strerror(errno));
    mf->data_ = static_cast<const uint8_t*>(p);
    mf->slot_ = register_mapping(mf->data_, size, path);
  }
  return mf;  // the descriptor closes; the mapping keeps the file alive
}

MappedFile::~MappedFile() {
  if (slot_ >= 0) {
    g_slots[slot_].end.store(0);
    g_slots[slot_].begin.store(0);
  }
  if (data_) ::munmap(const_cast<uint8_t*>(data_), size_);
}

void HugePageUnmap::operator()(uint8_t* p) const {
  if (p) ::munmap(p, bytes);
}

HugePageBuffer allocate_huge_pages(uint64_t bytes) {
  if (bytes == 0) return HugePageBuffer(nullptr, HugePageUnmap{0});
  void* p = map_huge_aligned(bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1);
  if (p == MAP_FAILED) return HugePageBuffer(nullptr, HugePageUnmap{0});
  return HugePageBuffer(static_cast<uint8_t*>(p), HugePageUnmap{bytes});
}

void prefault_pages(const void* p, uint64_t bytes) {
  if (!p || bytes == 0) return;
  const uint64_t page = static_cast<uint64_t>(::sysconf(_SC_PAGESIZE));
  const uint64_t begin = reinterpret_cast<uintptr_t>(p) & ~(page - 1);
  const uint64_t end = reinterpret_cast<uintptr_t>(p) + bytes;
#ifdef MADV_POPULATE_READ
  // Fills the page tables in one call (and reads what is not in the page cache). Where it is
  // missing (EINVAL: a kernel before 5.14), the reads below do the same, a fault per page.
  (void)::madvise(reinterpret_cast<void*>(begin), end - begin, MADV_POPULATE_READ);
#endif
  // A read per page from user space even so: under a hypervisor that shadows the guest's page
  // tables, the first access to each page still costs a trip to the hypervisor after the
  // madvise (on this project's VMs ~1.6 us a page: 1.6 s for a 4 GB shard, which the first
  // request paid), while on a machine without one these reads cost ~40 ns a page.
  for (uint64_t a = begin; a < end; a += page) (void)*reinterpret_cast<const volatile uint8_t*>(a);
}

Status lock_pages(const void* p, uint64_t bytes) {
  if (!p || bytes == 0) return ok_status();
  const uint64_t page = static_cast<uint64_t>(::sysconf(_SC_PAGESIZE));
  const uint64_t begin = reinterpret_cast<uintptr_t>(p) & ~(page - 1);
  const uint64_t end = reinterpret_cast<uintptr_t>(p) + bytes;
  if (::mlock(reinterpret_cast<void*>(begin), end - begin) == 0) return ok_status();
  const int err = errno;
  std::string msg = std::string("mlock of ") + std::to_string(end - begin) + " bytes failed: " + std::strerror(err);
  struct rlimit lim {};
  if ((err == ENOMEM || err == EPERM) && ::getrlimit(RLIMIT_MEMLOCK, &lim) == 0 && lim.rlim_cur != RLIM_INFINITY)
    msg += " (the memory-lock limit is " + std::to_string(lim.rlim_cur >> 10) +
           " KB: raise it with 'ulimit -l', LimitMEMLOCK= in a systemd unit or --ulimit memlock= in docker, or "
           "run with CAP_IPC_LOCK)";
  return Error(msg);
}

void install_sigbus_reporter() {
  struct sigaction sa {};
  sa.sa_sigaction = sigbus_handler;
  sa.sa_flags = SA_SIGINFO;
  sigemptyset(&sa.sa_mask);
  sigaction(SIGBUS, &sa, nullptr);
}

Result<std::string> read_text_file(const std::string& path, uint64_t max_bytes) {
  struct stat st {};
  DSV3_ASSIGN(const FileDescriptor fd, open_regular_file(path, &st));
  if (static_cast<uint64_t>(st.st_size) > max_bytes)
    return error_f("'%s' is too large (%lld bytes, limit %llu)", path.c_str(), static_cast<long long>(st.st_size),
                   static_cast<unsigned long long>(max_bytes));
  std::string out(static_cast<size_t>(st.st_size), '\0');
  size_t done = 0;
  while (done < out.size()) {
    ssize_t n = ::read(fd.get(), out.data() + done, out.size() - done);
    if (n < 0) {
      if (errno == EINTR) continue;
      return error_f("read of '%s' failed: %s", path.c_str(), std::strerror(errno));
    }
    if (n == 0) break;
    done += static_cast<size_t>(n);
  }
  out.resize(done);
  return out;
}

}  // namespace dsv3
