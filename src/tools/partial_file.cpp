#include "tools/partial_file.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <vector>

namespace dsv3 {

Result<PartialFile> PartialFile::create(const std::string& final_path) {
  PartialFile f;
  f.final_path_ = final_path;
  f.partial_path_ = final_path + kPartialSuffix;
  f.fd_ = ::open(f.partial_path_.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (f.fd_ < 0) return error_f("cannot create '%s': %s", f.partial_path_.c_str(), std::strerror(errno));
  return f;
}

PartialFile::PartialFile(PartialFile&& o) noexcept
    : fd_(o.fd_), final_path_(std::move(o.final_path_)), partial_path_(std::move(o.partial_path_)), written_(o.written_) {
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

Status PartialFile::write(const void* data, size_t n) {
  DSV3_CHECK(fd_ >= 0, "write to a closed PartialFile");
  const auto* p = static_cast<const uint8_t*>(data);
  while (n > 0) {
    ssize_t w = ::write(fd_, p, n);
    if (w < 0) {
      if (errno == EINTR) continue;
      return error_f("write to '%s' failed after %llu bytes: %s", partial_path_.c_str(),
                     static_cast<unsigned long long>(written_), std::strerror(errno));
    }
    if (w == 0) return error_f("write to '%s' made no progress", partial_path_.c_str());
    p += w;
    n -= static_cast<size_t>(w);
    written_ += static_cast<uint64_t>(w);
  }
  return {};
}

Status PartialFile::commit(bool durable) {
  DSV3_CHECK(fd_ >= 0, "commit of a closed PartialFile");
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
