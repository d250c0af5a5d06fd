// BAD_INPUTS F11: a weight file changed under a running process. The weights are mapped, not
// copied, so a shard truncated after loading makes the next read of a lost page raise SIGBUS;
// the process must then end with a message naming the file, not a bare "Bus error".

#include <gtest/gtest.h>

#include <linux/capability.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <string>

#include "base/mapped_file.h"
#include "base/memory_stats.h"

namespace {

std::string temp_file(const std::string& name, size_t bytes) {
  const std::string path = (std::filesystem::temp_directory_path() / (name + "-" + std::to_string(::getpid()))).string();
  std::ofstream(path, std::ios::binary) << std::string(bytes, 'w');
  return path;
}

}  // namespace

TEST(MappedFileDeathTest, ATruncatedFileEndsTheProcessNamingIt) {
  const std::string path = temp_file("dsv3-sigbus-shard.safetensors", 1 << 20);
  EXPECT_EXIT(
      {
        dsv3::install_sigbus_reporter();
        auto file = dsv3::MappedFile::open(path);
        if (!file.ok()) std::_Exit(3);
        if (::truncate(path.c_str(), 0) != 0) std::_Exit(4);
        // The last page is gone from the file: reading it faults.
        volatile uint8_t byte = (*file)->data()[(*file)->size() - 1];
        (void)byte;
        std::_Exit(5);  // not reached
      },
      testing::ExitedWithCode(1), "bus error reading a memory-mapped file '" + path + "'.*truncated");
  std::remove(path.c_str());
}

TEST(MappedFile, AFileReplacedByRenameLeavesTheMappingIntact) {
  // The other way a checkpoint changes: a new file renamed over the old one (what downloaders
  // and converters do). The mapping keeps the old file's pages: no effect on the process.
  const std::string path = temp_file("dsv3-renamed-shard.safetensors", 1 << 16);
  auto file = dsv3::MappedFile::open(path);
  ASSERT_TRUE(file.ok()) << file.error().message();
  const std::string replacement = temp_file("dsv3-replacement.safetensors", 10);
  ASSERT_EQ(std::rename(replacement.c_str(), path.c_str()), 0);
  EXPECT_EQ((*file)->size(), 1u << 16);
  EXPECT_EQ((*file)->data()[(1 << 16) - 1], 'w');
  std::remove(path.c_str());
}

namespace {

// Minor page faults of touching every page of [p, p + bytes). Not instrumented: under
// AddressSanitizer each checked read would also touch its shadow memory, whose first use
// faults too (4 MB of shadow for 32 MB read: 1024 faults that are not the mapping's).
__attribute__((no_sanitize("address"))) long faults_touching(const uint8_t* p, size_t bytes) {
  rusage before{}, after{};
  ::getrusage(RUSAGE_SELF, &before);
  unsigned sum = 0;
  for (size_t i = 0; i < bytes; i += 4096) sum += *reinterpret_cast<const volatile uint8_t*>(p + i);
  ::getrusage(RUSAGE_SELF, &after);
  EXPECT_EQ(sum, static_cast<unsigned>('w') * (bytes / 4096));
  return after.ru_minflt - before.ru_minflt;
}

}  // namespace

TEST(MappedFile, PrefaultedPagesAreReadWithoutPageFaults) {
  constexpr size_t kBytes = size_t{32} << 20;
  const std::string path = temp_file("dsv3-prefault.safetensors", kBytes);
  auto cold = dsv3::MappedFile::open(path);
  auto warm = dsv3::MappedFile::open(path);
  ASSERT_TRUE(cold.ok() && warm.ok());
  // Control: a fresh mapping faults as it is read (the kernel maps up to a few pages or one
  // large folio per fault, so at least 32 MB / 2 MB = 16 of them).
  const long cold_faults = faults_touching((*cold)->data(), kBytes);
  if (cold_faults < 8) GTEST_SKIP() << "this kernel maps a fresh file mapping in " << cold_faults << " faults";
  dsv3::prefault_pages((*warm)->data() + 100, kBytes - 100);  // an unaligned start is rounded down
  EXPECT_LE(faults_touching((*warm)->data(), kBytes), 2) << "cold mapping: " << cold_faults << " faults";
  std::remove(path.c_str());
}

namespace {

// AddressSanitizer intercepts mlock and makes it a no-op that succeeds.
bool mlock_is_intercepted() {
#if defined(__SANITIZE_ADDRESS__)
  return true;
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
  return true;
#else
  return false;
#endif
#else
  return false;
#endif
}

// This process's locked memory (VmLck in /proc/self/status), in KB; -1 where unknown.
long locked_kb() {
  std::ifstream in("/proc/self/status");
  std::string line;
  while (std::getline(in, line))
    if (line.rfind("VmLck:", 0) == 0) return std::stol(line.substr(6));
  return -1;
}

}  // namespace

TEST(MappedFile, LockedPagesCountAsLockedMemory) {
  if (mlock_is_intercepted()) GTEST_SKIP() << "AddressSanitizer makes mlock a no-op";
  constexpr size_t kBytes = size_t{4} << 20;  // within the default 8 MB limit of an unprivileged user
  const std::string path = temp_file("dsv3-mlock.safetensors", kBytes);
  {
    auto mf = dsv3::MappedFile::open(path);
    ASSERT_TRUE(mf.ok());
    const long before = locked_kb();
    if (before < 0) GTEST_SKIP() << "no VmLck in /proc/self/status";
    auto st = dsv3::lock_pages((*mf)->data() + 100, kBytes - 100);  // an unaligned start is rounded down
    ASSERT_TRUE(st.ok()) << st.error().message();
    EXPECT_GE(locked_kb() - before, static_cast<long>(kBytes >> 10));
    EXPECT_TRUE(dsv3::lock_pages(nullptr, 0).ok());
  }
  std::remove(path.c_str());
}

// Drops CAP_IPC_LOCK and sets the memory-lock limit to 0 (as for an unprivileged user or in
// a container), then locks the file's first MB: prints the error and exits 0 if it failed.
[[noreturn]] void lock_without_privilege(const std::string& path) {
  __user_cap_header_struct header{_LINUX_CAPABILITY_VERSION_3, 0};
  __user_cap_data_struct caps[2]{};
  if (::syscall(SYS_capget, &header, caps) == 0) {
    caps[0].effective &= ~(1u << CAP_IPC_LOCK);
    (void)::syscall(SYS_capset, &header, caps);
  }
  const rlimit zero{0, 0};
  ::setrlimit(RLIMIT_MEMLOCK, &zero);
  auto mf = dsv3::MappedFile::open(path);
  if (!mf.ok()) _exit(3);
  auto st = dsv3::lock_pages((*mf)->data(), 1 << 20);
  if (st.ok()) _exit(4);
  std::fprintf(stderr, "%s\n", st.error().message().c_str());
  _exit(0);
}

// Without CAP_IPC_LOCK and with a memory-lock limit of 0 (an unprivileged user, a container),
// locking fails, and the error says which limit and how to raise it.
TEST(MappedFileDeathTest, LockingBeyondTheLimitNamesTheLimit) {
  if (mlock_is_intercepted()) GTEST_SKIP() << "AddressSanitizer makes mlock a no-op";
  const std::string path = temp_file("dsv3-mlock-limit.safetensors", 1 << 20);
  EXPECT_EXIT(lock_without_privilege(path), ::testing::ExitedWithCode(0),
              "mlock of 1048576 bytes failed: .*memory-lock limit is 0 KB.*ulimit -l");
  std::remove(path.c_str());
}

TEST(MappedFile, ReadIntoMemoryHoldsTheFilesBytes) {
  const std::string path = temp_file("dsv3-read.safetensors", 0);
  // Three of the 64 MB pieces it reads at a time, the last one partial.
  std::string bytes((size_t{131} << 20) + 77, '\0');
  for (size_t i = 0; i < bytes.size(); ++i) bytes[i] = static_cast<char>((i * 2654435761u) >> 13);
  std::ofstream(path, std::ios::binary | std::ios::trunc) << bytes;
  auto read = dsv3::MappedFile::open(path, dsv3::FileLoad::Read);
  ASSERT_TRUE(read.ok()) << read.error().message();
  ASSERT_EQ((*read)->size(), bytes.size());
  EXPECT_EQ(std::string(reinterpret_cast<const char*>((*read)->data()), bytes.size()), bytes);
  // The copy is the process's own: the file changing afterwards does not reach it (no SIGBUS).
  std::ofstream(path, std::ios::binary | std::ios::trunc) << "x";
  EXPECT_EQ(static_cast<char>((*read)->data()[bytes.size() - 1]), bytes.back());
  // An empty file reads as empty; a directory is refused as for a mapping.
  std::ofstream(path, std::ios::binary | std::ios::trunc);
  auto empty = dsv3::MappedFile::open(path, dsv3::FileLoad::Read);
  ASSERT_TRUE(empty.ok());
  EXPECT_EQ((*empty)->size(), 0u);
  auto dir = dsv3::MappedFile::open(std::filesystem::temp_directory_path().string(), dsv3::FileLoad::Read);
  ASSERT_FALSE(dir.ok());
  EXPECT_NE(dir.error().message().find("not a regular file"), std::string::npos) << dir.error().message();
  std::remove(path.c_str());
}

TEST(MappedFile, MapsAndReadsAt2MbAlignedAddressesInHugePagesWhereGiven) {
  constexpr uint64_t kHuge = uint64_t{2} << 20;
  const std::string path = temp_file("dsv3-huge.safetensors", 0);
  std::string bytes(3 * kHuge + 4096 + 77, '\0');
  for (size_t i = 0; i < bytes.size(); ++i) bytes[i] = static_cast<char>((i * 2654435761u) >> 11);
  std::ofstream(path, std::ios::binary | std::ios::trunc) << bytes;
  for (dsv3::FileLoad load : {dsv3::FileLoad::Map, dsv3::FileLoad::Read}) {
    auto f = dsv3::MappedFile::open(path, load);
    ASSERT_TRUE(f.ok()) << f.error().message();
    const uint8_t* p = (*f)->data();
    // A 2 MB piece of the file is a 2 MB-aligned piece of memory: what a 2 MB page needs.
    EXPECT_EQ(reinterpret_cast<uintptr_t>(p) % kHuge, 0u) << "load " << static_cast<int>(load);
    EXPECT_EQ(std::string(reinterpret_cast<const char*>(p), bytes.size()), bytes);
    dsv3::prefault_pages(p, bytes.size());
    const dsv3::PageResidency r = dsv3::page_residency({{p, bytes.size()}});
    EXPECT_GE(r.resident_bytes, bytes.size() / 4096 * 4096) << "load " << static_cast<int>(load);
    EXPECT_LE(r.huge_bytes, r.resident_bytes);
    // The copy asked for transparent huge pages, which a system that has them gives to its
    // three whole 2 MB pieces (a file's page cache has them only where its filesystem keeps
    // large folios, and only for pages it reads from disk: not checked).
    const std::string mode = dsv3::transparent_huge_pages_mode();
    if (load == dsv3::FileLoad::Read && (mode == "always" || mode == "madvise"))
      EXPECT_GE(r.huge_bytes, kHuge) << "transparent huge pages: " << mode;
  }
  // Anonymous memory for buffers that stream like weights: the same alignment and pages.
  const dsv3::HugePageBuffer buf = dsv3::allocate_huge_pages(3 * kHuge + 5);
  ASSERT_NE(buf, nullptr);
  EXPECT_EQ(reinterpret_cast<uintptr_t>(buf.get()) % kHuge, 0u);
  for (uint64_t i = 0; i < 3 * kHuge + 5; i += 4096) EXPECT_EQ(buf.get()[i], 0) << i;
  std::memset(buf.get(), 1, 3 * kHuge + 5);
  const dsv3::PageResidency b = dsv3::page_residency({{buf.get(), 3 * kHuge + 5}});
  EXPECT_GE(b.resident_bytes, 3 * kHuge);
  const std::string thp = dsv3::transparent_huge_pages_mode();
  if (thp == "always" || thp == "madvise") EXPECT_GE(b.huge_bytes, kHuge) << "transparent huge pages: " << thp;
  EXPECT_EQ(dsv3::allocate_huge_pages(0), nullptr);
  // Ranges that overlap no mapping count nothing.
  const dsv3::PageResidency none = dsv3::page_residency({{reinterpret_cast<const void*>(uintptr_t{4096}), 4096}});
  EXPECT_EQ(none.resident_bytes, 0u);
  std::remove(path.c_str());
}
