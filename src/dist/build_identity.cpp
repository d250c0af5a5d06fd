#include "dist/build_identity.h"

#include <unistd.h>

#include <array>
#include <cstring>
#include <fstream>
#include <vector>

namespace dsv3 {
namespace {

// The fixed-size record every rank sends: ranks of different builds still agree on it.
struct IdentityRecord {
  std::array<char, 32> version{};
  uint64_t executable_bytes = 0;
  uint64_t executable_hash = 0;
  std::array<char, 64> host{};
};

void copy_text(const std::string& text, char* out, size_t size) {
  std::strncpy(out, text.c_str(), size - 1);
  out[size - 1] = '\0';
}

std::string describe(const IdentityRecord& r) {
  return str_f("dsv3 %s, executable of %llu bytes, hash %016llx", r.version.data(),
               static_cast<unsigned long long>(r.executable_bytes), static_cast<unsigned long long>(r.executable_hash));
}

}  // namespace

Result<BuildIdentity> this_build(const std::string& version) {
  BuildIdentity id;
  id.version = version;
  std::ifstream f("/proc/self/exe", std::ios::binary);
  if (!f) return Error("cannot read /proc/self/exe to identify this build");
  // FNV-1a over 8-byte words (a change anywhere in the file changes it; not a cryptographic hash).
  uint64_t h = 1469598103934665603ull;
  std::vector<char> buf(1 << 20);
  while (f) {
    f.read(buf.data(), static_cast<std::streamsize>(buf.size()));
    const size_t n = static_cast<size_t>(f.gcount());
    size_t i = 0;
    for (; i + 8 <= n; i += 8) {
      uint64_t w;
      std::memcpy(&w, buf.data() + i, 8);
      h = (h ^ w) * 1099511628211ull;
    }
    for (; i < n; ++i) h = (h ^ static_cast<unsigned char>(buf[i])) * 1099511628211ull;
    id.executable_bytes += n;
  }
  id.executable_hash = h;
  char host[256] = {};
  if (::gethostname(host, sizeof(host) - 1) == 0) id.host = host;
  return id;
}

Status check_same_build(Communicator& comm, const BuildIdentity& mine) {
  IdentityRecord me;
  copy_text(mine.version, me.version.data(), me.version.size());
  me.executable_bytes = mine.executable_bytes;
  me.executable_hash = mine.executable_hash;
  copy_text(mine.host, me.host.data(), me.host.size());
  std::vector<IdentityRecord> all(static_cast<size_t>(comm.size()));
  comm.all_gather(&me, sizeof(me), all.data());
  for (int r = 1; r < comm.size(); ++r) {
    const IdentityRecord& a = all[0];
    const IdentityRecord& b = all[r];
    if (std::strcmp(a.version.data(), b.version.data()) == 0 && a.executable_bytes == b.executable_bytes &&
        a.executable_hash == b.executable_hash)
      continue;
    return error_f("rank %d (on %s) runs a different dsv3 build than rank 0 (on %s): %s, rank 0: %s; install the "
                   "same build on every machine",
                   r, b.host.data(), a.host.data(), describe(b).c_str(), describe(a).c_str());
  }
  return {};
}

}  // namespace dsv3
