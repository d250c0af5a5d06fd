// model.safetensors.index.json of an untrusted checkpoint directory: Checkpoint::open reads it
// from a file, so each input is written to a scratch directory that also holds one real
// shard (tiny-v2's), so that indexes naming it get past the file checks.
#include <unistd.h>

#include <filesystem>
#include <fstream>

#include "format/checkpoint.h"
#include "fuzz_util.h"

namespace fs = std::filesystem;

static const fs::path& scratch_dir() {
  static const fs::path dir = [] {
    char tmpl[] = "/tmp/dsv3-fuzz-index-XXXXXX";
    fs::path d = ::mkdtemp(tmpl);
    fs::path fixture = fs::path(DSV3_SOURCE_DIR) / "tests/fixtures/tiny-v2";
    fs::copy_file(fixture / "model-00001-of-00001.safetensors", d / "model-00001-of-00001.safetensors");
    fs::copy_file(fixture / "config.json", d / "config.json");
    std::atexit([] { std::error_code ec; fs::remove_all(scratch_dir(), ec); });
    return d;
  }();
  return dir;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const fs::path& dir = scratch_dir();
  {
    std::ofstream out(dir / "model.safetensors.index.json", std::ios::binary | std::ios::trunc);
    out.write(reinterpret_cast<const char*>(data), static_cast<std::streamsize>(size));
  }
  auto opened = dsv3::Checkpoint::open(dir.string());
  (void)opened;
  return 0;
}
