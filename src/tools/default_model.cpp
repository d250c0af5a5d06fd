#include "tools/default_model.h"

#include <lzma.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <memory>
#include <set>
#include <vector>

#include "base/json.h"
#include "base/mapped_file.h"

namespace dsv3 {
namespace fs = std::filesystem;

namespace {

constexpr const char* kCacheName = "default-v2";

struct FileCloser {
  void operator()(std::FILE* f) const { std::fclose(f); }
};
using File = std::unique_ptr<std::FILE, FileCloser>;

// Decompresses the .xz file `src` into `dst` (integrity checked by the format's CRC64).
Status decompress_xz(const std::string& src, const std::string& dst) {
  File in(std::fopen(src.c_str(), "rb"));
  if (!in) return error_f("cannot open '%s'", src.c_str());
  File out(std::fopen(dst.c_str(), "wb"));
  if (!out) return error_f("cannot create '%s'", dst.c_str());
  lzma_stream strm = LZMA_STREAM_INIT;
  if (lzma_stream_decoder(&strm, UINT64_MAX, LZMA_CONCATENATED) != LZMA_OK)
    return error_f("cannot start the xz decoder for '%s'", src.c_str());
  std::unique_ptr<lzma_stream, void (*)(lzma_stream*)> guard(&strm, lzma_end);
  std::vector<uint8_t> inbuf(1 << 20), outbuf(1 << 20);
  lzma_action action = LZMA_RUN;
  strm.next_out = outbuf.data();
  strm.avail_out = outbuf.size();
  for (;;) {
    if (strm.avail_in == 0 && action == LZMA_RUN) {
      strm.next_in = inbuf.data();
      strm.avail_in = std::fread(inbuf.data(), 1, inbuf.size(), in.get());
      if (std::ferror(in.get())) return error_f("cannot read '%s'", src.c_str());
      if (std::feof(in.get())) action = LZMA_FINISH;
    }
    const lzma_ret ret = lzma_code(&strm, action);
    if (strm.avail_out == 0 || ret == LZMA_STREAM_END) {
      const size_t n = outbuf.size() - strm.avail_out;
      if (std::fwrite(outbuf.data(), 1, n, out.get()) != n) return error_f("cannot write '%s'", dst.c_str());
      strm.next_out = outbuf.data();
      strm.avail_out = outbuf.size();
    }
    if (ret == LZMA_STREAM_END) break;
    if (ret != LZMA_OK)
      return error_f("'%s' is not a valid xz file (liblzma error %d): is the checkout complete?", src.c_str(),
                     static_cast<int>(ret));
  }
  if (std::fclose(out.release()) != 0) return error_f("cannot write '%s'", dst.c_str());
  return {};
}

Status copy_file(const std::string& src, const std::string& dst) {
  std::error_code ec;
  fs::copy_file(src, dst, ec);
  if (ec) return error_f("cannot copy '%s' to '%s': %s", src.c_str(), dst.c_str(), ec.message().c_str());
  return {};
}

// The shard files that model.safetensors.index.json names.
Result<std::set<std::string>> index_shards(const std::string& index_path) {
  DSV3_ASSIGN(std::string text, read_text_file(index_path, 64ull << 20));
  DSV3_ASSIGN(Json index, parse_json(text, index_path));
  if (!index.is_object() || !index.contains("weight_map") || !index["weight_map"].is_object())
    return error_f("%s: no weight_map", index_path.c_str());
  std::set<std::string> shards;
  for (const auto& [name, file] : index["weight_map"].items()) {
    if (!file.is_string()) return error_f("%s: weight_map['%s'] is not a file name", index_path.c_str(), name.c_str());
    const std::string f = file.get<std::string>();
    if (f.empty() || f.find('/') != std::string::npos || f[0] == '.')
      return error_f("%s: shard name '%s' is not a plain file name", index_path.c_str(), f.c_str());
    shards.insert(f);
  }
  return shards;
}

Status install_files(const std::string& assets_dir, const std::string& tokenizer_dir, const std::string& out_dir) {
  for (const char* name : {"config.json", "model.safetensors.index.json"})
    DSV3_TRY(copy_file(assets_dir + "/" + name, out_dir + "/" + name));
  DSV3_ASSIGN(auto shards, index_shards(assets_dir + "/model.safetensors.index.json"));
  for (const std::string& shard : shards)
    DSV3_TRY(decompress_xz(assets_dir + "/" + shard + ".xz", out_dir + "/" + shard));
  for (const char* name : {"tokenizer.json", "tokenizer_config.json"})
    DSV3_TRY(copy_file(tokenizer_dir + "/" + name, out_dir + "/" + name));
  return {};
}

}  // namespace

std::string default_model_dir() {
  if (const char* p = std::getenv("DSV3_DEFAULT_MODEL"); p && *p) return p;
  if (const char* x = std::getenv("XDG_CACHE_HOME"); x && *x) return std::string(x) + "/dsv3/" + kCacheName;
  const char* home = std::getenv("HOME");
  return std::string(home && *home ? home : "/tmp") + "/.cache/dsv3/" + kCacheName;
}

Status install_default_model(const std::string& assets_dir, const std::string& tokenizer_dir,
                             const std::string& out_dir) {
  std::error_code ec;
  if (fs::exists(out_dir, ec)) return error_f("cannot install the default model into '%s': it exists", out_dir.c_str());
  if (!fs::create_directories(out_dir, ec))
    return error_f("cannot create '%s': %s", out_dir.c_str(), ec.message().c_str());
  Status st = install_files(assets_dir, tokenizer_dir, out_dir);
  if (!st.ok()) fs::remove_all(out_dir, ec);
  return st;
}

Result<std::string> ensure_default_model(const std::string& assets_dir, const std::string& tokenizer_dir) {
  const std::string dir = default_model_dir();
  // Every run says so, not only the first: the output must never pass for a real model's.
  const char* what =
      "a tiny DeepSeek-V3-architecture model (16M parameters) trained for under an hour on the Brown corpus "
      "(1M words of 1961 American English): expect poor English, not answers. Use --model DIR for a real checkpoint.";
  if (fs::exists(dir + "/config.json")) {
    std::fprintf(stderr, "dsv3: no --model given: using the built-in default model in %s,\ndsv3: %s\n", dir.c_str(),
                 what);
    return dir;
  }
  if (assets_dir.empty() || tokenizer_dir.empty())
    return Error("the built-in default model's files (assets/default-model, assets/deepseek-v3-tokenizer) are not in "
                 "the source tree this dsv3 was built from; use --model DIR");
  std::fprintf(stderr, "dsv3: no --model given: installing the built-in default model in %s,\ndsv3: %s\n", dir.c_str(),
               what);
  // Install into a private temporary directory, then rename: concurrent first runs never
  // see a half-written model.
  std::error_code ec;
  fs::create_directories(fs::path(dir).parent_path(), ec);
  const std::string tmp = dir + ".tmp-" + std::to_string(::getpid());
  fs::remove_all(tmp, ec);
  Status st = install_default_model(assets_dir, tokenizer_dir, tmp);
  if (!st.ok()) return std::move(st).error().context("installing the default model");
  fs::rename(tmp, dir, ec);
  if (ec) {
    fs::remove_all(tmp, ec);
    if (!fs::exists(dir + "/config.json")) return error_f("cannot create the default model in '%s'", dir.c_str());
  }
  return dir;
}

}  // namespace dsv3
