#include "tools/partial_file.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <algorithm>
#include <cstring>
#include <vector>

namespace dsv3 {

namespace {
constexpr size_t kStagingBytes = size_t(8) << 20;
constexpr size_t kDirectAlign = 4096;  // covers 512-byte and 4 KiB logical blocks
}  // namespace

Result<PartialFile> PartialFile::create(const std::string& final_path, bool direct_io) {
  PartialFile f;
  f.final_path_ = final_path;
  f.partial_path_ = final_path + kPartialSuffix;
  const int flags = O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC;
  if (direct_io) {
    f.fd_ = ::open(f.partial_path_.c_str(), flags | O_DIRECT, 0644);
    if (f.fd_ >= 0) {
      void* p = nullptr;
      if (::posix_memalign(&p, kDirectAlign, kStagingBytes) != 0) return Error("out of memory for the write buffer");
      f.staging_.reset(static_cast<uint8_t*>(p));
      f.direct_ = true;
    }
  }
  if (f.fd_ < 0) f.fd_ = ::open(f.partial_path_.c_str(), flags, 0644);  // no O_DIRECT here: buffered
  if (f.fd_ < 0) return error_f("cannot create '%s': %s", f.partial_path_.c_str(), std::strerror(errno));
  return f;
}

PartialFile::PartialFile(PartialFile&& o) noexcept
    : fd_(o.fd_),
      final_path_(std::move(o.final_path_)),
      partial_path_(std::move(o.partial_path_)),
      written_(o.written_),
      on_disk_(o.on_disk_),
      direct_(o.direct_),
      staging_(std::move(o.staging_)),
      staged_(o.staged_) {
  o.fd_ = -1;
  o.partial_path_.clear();
}

PartialFile::~PartialFile() { discard(); }

void PartialFile::discard() {
  if (fd_ >= 0) ::close(fd_);
  fd_ = -1;
  if (!partial_path_.empty()) ::unlink(partial_path_.c_str());
  partial_path_.clear();
}

Status PartialFile::stop_direct_io() {
  const int flags = ::fcntl(fd_, F_GETFL);
  if (flags < 0 || ::fcntl(fd_, F_SETFL, flags & ~O_DIRECT) != 0)
    return error_f("fcntl on '%s' failed: %s", partial_path_.c_str(), std::strerror(errno));
  direct_ = false;
  return {};
}

Status PartialFile::write_to_fd(const uint8_t* p, size_t n) {
  while (n > 0) {
    ssize_t w = ::write(fd_, p, n);
    if (w < 0 && errno == EINTR) continue;
    if (w < 0 && errno == EINVAL && direct_) {  // O_DIRECT accepted at open, refused at write
      DSV3_TRY(stop_direct_io());
      continue;
    }
    if (w < 0)
      return error_f("write to '%s' failed after %llu bytes: %s", partial_path_.c_str(),
                     static_cast<unsigned long long>(on_disk_), std::strerror(errno));
    if (w == 0) return error_f("write to '%s' made no progress", partial_path_.c_str());
    p += w;
    n -= static_cast<size_t>(w);
    on_disk_ += static_cast<uint64_t>(w);
    // A short direct write leaves the file offset unaligned: finish buffered.
    if (n > 0 && direct_) DSV3_TRY(stop_direct_io());
  }
  return {};
}

Status PartialFile::write(const void* data, size_t n) {
  DSV3_CHECK(fd_ >= 0, "write to a closed PartialFile");
  const auto* p = static_cast<const uint8_t*>(data);
  written_ += n;
  if (!staging_) return write_to_fd(p, n);
  while (n > 0) {
    const size_t take = std::min(n, kStagingBytes - staged_);
    std::memcpy(staging_.get() + staged_, p, take);
    staged_ += take;
    p += take;
    n -= take;
    if (staged_ == kStagingBytes) {
      DSV3_TRY(write_to_fd(staging_.get(), staged_));
      staged_ = 0;
    }
  }
  return {};
}

Status PartialFile::commit(bool durable) {
  DSV3_CHECK(fd_ >= 0, "commit of a closed PartialFile");
  if (staged_ > 0) {  // the tail is not a whole number of blocks: write it buffered
    if (direct_) DSV3_TRY(stop_direct_io());
    DSV3_TRY(write_to_fd(staging_.get(), staged_));
    staged_ = 0;
  }
  // Delayed write errors (ENOSPC, EIO on network or thin-provisioned storage) surface at
  // fsync or close, not at write: both are checked before the file gets its final name.
  if (durable && ::fsync(fd_) != 0)
    return error_f("fsync of '%s' failed: %s", partial_path_.c_str(), std::strerror(errno));
  const int fd = fd_;
  fd_ = -1;
  if (::close(fd) != 0) return error_f("close of '%s' failed: %s", partial_path_.c_str(), std::strerror(errno));
  if (::rename(partial_path_.c_str(), final_path_.c_str()) != 0)
    return error_f("rename of '%s' to '%s' failed: %s", partial_path_.c_str(), final_path_.c_str(), std::strerror(errno));
  partial_path_.clear();
  return {};
}

Status write_file_atomically(const std::string& path, const std::string& bytes, bool durable) {
  DSV3_ASSIGN(PartialFile f, PartialFile::create(path));
  DSV3_TRY(f.write(bytes.data(), bytes.size()));
  return f.commit(durable);
}

Status copy_file_atomically(const std::string& src, const std::string& dst, bool durable) {
  struct stat st {};
  if (::stat(src.c_str(), &st) != 0) return error_f("cannot open '%s': %s", src.c_str(), std::strerror(errno));
  if (!S_ISREG(st.st_mode)) return error_f("'%s' is not a regular file", src.c_str());
  const int in = ::open(src.c_str(), O_RDONLY | O_CLOEXEC | O_NONBLOCK);
  if (in < 0) return error_f("cannot open '%s': %s", src.c_str(), std::strerror(errno));
  auto out = PartialFile::create(dst);
  if (!out.ok()) {
    ::close(in);
    return std::move(out).error();
  }
  std::vector<uint8_t> buf(size_t(1) << 20);
  Status s;
  for (;;) {
    ssize_t n = ::read(in, buf.data(), buf.size());
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      s = error_f("read of '%s' failed: %s", src.c_str(), std::strerror(errno));
      break;
    }
    if (n == 0) break;
    s = out->write(buf.data(), static_cast<size_t>(n));
    if (!s.ok()) break;
  }
  ::close(in);
  if (!s.ok()) return s;
  return out->commit(durable);
}

Status sync_directory(const std::string& dir) {
  const int fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) return error_f("cannot open directory '%s': %s", dir.c_str(), std::strerror(errno));
  const int r = ::fsync(fd);
  const int e = errno;
  ::close(fd);
  if (r != 0 && e != EINVAL) return error_f("fsync of directory '%s' failed: %s", dir.c_str(), std::strerror(e));
  return {};
}

}  // namespace dsv3
