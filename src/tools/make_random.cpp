#include "tools/make_random.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <map>

#include "format/model_config.h"
#include "format/safetensors.h"
#include "tensor/dtype.h"
#include "tensor/fp8_quant.h"
#include "tensor/shape.h"

namespace dsv3 {
namespace fs = std::filesystem;

namespace {

// One tensor as written: its stored dtype and where its values come from.
struct OutTensor {
  std::string name;
  DType dtype;
  std::vector<int64_t> shape;
  RandomTensor plan;
  std::string scale_of;  // set on a weight_scale_inv tensor: the FP8 weight it scales
  int64_t block_rows = 128, block_cols = 128;
  uint64_t bytes() const { return shape_numel(shape) * static_cast<uint64_t>(dtype_size(dtype)); }
};

// Writes all of `data` or fails with errno.
Status write_all(FILE* f, const void* data, size_t n, const std::string& path) {
  if (n && std::fwrite(data, 1, n, f) != n) return error_f("write to '%s' failed: %s", path.c_str(), std::strerror(errno));
  return {};
}

class ShardWriter {
 public:
  ShardWriter(ThreadPool& pool, uint64_t seed) : pool_(pool), seed_(seed) {}

  // Streams one tensor's bytes: bands of rows drawn in parallel, written in order. FP8
  // weights leave their block scales in `scales` for their weight_scale_inv tensor.
  Status write_tensor(FILE* f, const std::string& path, const OutTensor& t,
                      std::map<std::string, std::vector<float>>& scales) {
    const int64_t rows = t.plan.rows, cols = t.plan.cols;
    if (!t.scale_of.empty()) {
      auto it = scales.find(t.scale_of);
      DSV3_CHECK(it != scales.end(), "scales of %s not computed", t.scale_of.c_str());
      Status s = write_all(f, it->second.data(), it->second.size() * sizeof(float), path);
      scales.erase(it);
      return s;
    }
    std::vector<float>* scales_out = t.dtype == DType::F8_E4M3 ? &scales[t.name] : nullptr;
    const int64_t band = t.dtype == DType::F8_E4M3 ? t.block_rows : 64;
    const int64_t n_bands = (rows + band - 1) / band;
    const int64_t window = std::max<int64_t>(1, static_cast<int64_t>(pool_.size()) * 2);
    const int64_t scale_cols = (cols + t.block_cols - 1) / t.block_cols;
    if (t.dtype == DType::F8_E4M3) scales_out->assign(static_cast<size_t>(n_bands * scale_cols), 0.0f);
    const int esize = dtype_size(t.dtype);
    std::vector<std::vector<float>> values(static_cast<size_t>(window));
    std::vector<std::vector<uint8_t>> bytes(static_cast<size_t>(window));
    for (int64_t b0 = 0; b0 < n_bands; b0 += window) {
      const int64_t nb = std::min(window, n_bands - b0);
      pool_.parallel_for(nb, [&](int64_t i) {
        const int64_t r0 = (b0 + i) * band, r1 = std::min(rows, r0 + band);
        auto& v = values[i];
        auto& out = bytes[i];
        v.resize(static_cast<size_t>((r1 - r0) * cols));
        out.resize(static_cast<size_t>((r1 - r0) * cols * esize));
        draw_random_rows(t.plan, seed_, r0, r1, v.data());
        switch (t.dtype) {
          case DType::F8_E4M3:
            quantize_fp8_band(v.data(), r1 - r0, cols, t.block_cols, out.data(),
                              scales_out->data() + (b0 + i) * scale_cols);
            break;
          case DType::BF16: {
            auto* o = reinterpret_cast<uint16_t*>(out.data());
            for (size_t k = 0; k < v.size(); ++k) o[k] = f32_to_bf16(v[k]);
            break;
          }
          default:
            std::memcpy(out.data(), v.data(), v.size() * sizeof(float));
        }
      });
      for (int64_t i = 0; i < nb; ++i) DSV3_TRY(write_all(f, bytes[i].data(), bytes[i].size(), path));
    }
    return {};
  }

 private:
  ThreadPool& pool_;
  uint64_t seed_;
};

Status write_text(const std::string& path, const std::string& text) {
  std::string tmp = path + ".tmp";
  FILE* f = std::fopen(tmp.c_str(), "wb");
  if (!f) return error_f("cannot create '%s': %s", tmp.c_str(), std::strerror(errno));
  Status s = write_all(f, text.data(), text.size(), tmp);
  if (std::fclose(f) != 0 && s.ok()) s = error_f("close of '%s' failed: %s", tmp.c_str(), std::strerror(errno));
  if (!s.ok()) return s;
  if (std::rename(tmp.c_str(), path.c_str()) != 0)
    return error_f("rename to '%s' failed: %s", path.c_str(), std::strerror(errno));
  return {};
}

}  // namespace

RandomTensor random_plan_for(const TensorSpec& spec) {
  RandomTensor p;
  p.seed_name = spec.shares_with.empty() ? spec.name : spec.shares_with;
  p.rows = spec.shape.size() == 2 ? spec.shape[0] : 1;
  p.cols = spec.shape.back();
  switch (spec.role) {
    case TensorRole::Linear: p.kind = RandomKind::Projection; break;
    case TensorRole::LinearBf16: p.kind = RandomKind::Matrix; break;
    case TensorRole::Embedding:
      // The input embedding is N(0, 1) as in the reference harness; an output head is a matrix.
      p.kind = p.seed_name.find("embed_tokens") != std::string::npos ? RandomKind::Embedding : RandomKind::Matrix;
      break;
    case TensorRole::Norm:
      // A LayerNorm's bias (V3.2's indexer k_norm) is centred on 0, its weight on 1.
      p.kind = spec.name.ends_with(".bias") ? RandomKind::Bias : RandomKind::Norm;
      break;
    case TensorRole::RouterBias: p.kind = RandomKind::Bias; break;
  }
  return p;
}

Status apply_config_overrides(OrderedJson& config, const std::vector<std::string>& sets) {
  for (const std::string& s : sets) {
    auto eq = s.find('=');
    if (eq == std::string::npos || eq == 0) return Error("--set '" + s + "': expected key=value");
    std::string key = s.substr(0, eq), value = s.substr(eq + 1);
    OrderedJson v;
    auto parsed = parse_ordered_json(value, "--set " + key);
    if (parsed.ok()) v = std::move(parsed).value();
    else v = value;
    OrderedJson* node = &config;
    size_t start = 0;
    for (;;) {
      size_t dot = key.find('.', start);
      std::string part = key.substr(start, dot == std::string::npos ? std::string::npos : dot - start);
      if (part.empty()) return Error("--set '" + s + "': empty key component");
      if (!node->is_object()) return Error("--set '" + s + "': '" + key.substr(0, start) + "' is not an object");
      if (dot == std::string::npos) {
        (*node)[part] = v;
        break;
      }
      if (!node->contains(part)) (*node)[part] = OrderedJson::object();
      node = &(*node)[part];
      start = dot + 1;
    }
  }
  return {};
}

Status make_random_checkpoint(const OrderedJson& config_in, const MakeRandomOptions& opt, ThreadPool& pool) {
  OrderedJson config = config_in;
  const bool fp8 = opt.dtype ? *opt.dtype == "fp8" : config.contains("quantization_config") &&
                                                          !config["quantization_config"].is_null();
  if (opt.dtype && *opt.dtype != "fp8" && *opt.dtype != "bf16")
    return Error("--dtype must be fp8 or bf16, got '" + opt.dtype->substr(0, 20) + "'");
  if (fp8 && (!config.contains("quantization_config") || config["quantization_config"].is_null())) {
    config["quantization_config"] = {{"activation_scheme", "dynamic"}, {"fmt", "e4m3"}, {"quant_method", "fp8"},
                                     {"weight_block_size", {128, 128}}};
  }
  if (!fp8) config.erase("quantization_config");
  DSV3_ASSIGN(ModelConfig c, parse_model_config(Json::parse(config.dump()), "config"));

  // Every tensor of the architecture, from the one tensor walk the loader uses.
  std::vector<TensorSpec> specs = model_tensor_specs(c);
  std::vector<std::vector<OutTensor>> shards(1);
  uint64_t shard_size = 0, total = 0;
  for (const TensorSpec& s : specs) {
    std::vector<OutTensor> group;
    OutTensor t{s.name, DType::BF16, s.shape, random_plan_for(s), "", 128, 128};
    if (s.role == TensorRole::RouterBias) t.dtype = DType::F32;
    if (s.role == TensorRole::Linear && fp8) {
      t.dtype = DType::F8_E4M3;
      t.block_rows = c.quantization_config->block_rows;
      t.block_cols = c.quantization_config->block_cols;
      OutTensor scale = t;
      scale.name = s.name.substr(0, s.name.size() - std::strlen("weight")) + "weight_scale_inv";
      scale.dtype = DType::F32;
      scale.shape = {(s.shape[0] + t.block_rows - 1) / t.block_rows, (s.shape[1] + t.block_cols - 1) / t.block_cols};
      scale.scale_of = s.name;
      group.push_back(t);
      group.push_back(scale);
    } else {
      group.push_back(t);
    }
    uint64_t bytes = 0;
    for (const auto& g : group) bytes += g.bytes();
    if (shard_size > 0 && shard_size + bytes > opt.shard_bytes) {
      shards.emplace_back();
      shard_size = 0;
    }
    for (auto& g : group) shards.back().push_back(std::move(g));
    shard_size += bytes;
    total += bytes;
  }

  std::error_code ec;
  fs::create_directories(opt.out_dir, ec);
  if (ec) return error_f("cannot create '%s': %s", opt.out_dir.c_str(), ec.message().c_str());

  const int n_shards = static_cast<int>(shards.size());
  OrderedJson weight_map = OrderedJson::object();
  ShardWriter writer(pool, opt.seed);
  auto started = std::chrono::steady_clock::now();
  uint64_t done = 0;
  std::map<std::string, std::vector<float>> scales;
  for (int si = 0; si < n_shards; ++si) {
    auto& tensors = shards[si];
    // Sorted by name: a weight's scale sorts after it, and both share the shard.
    std::sort(tensors.begin(), tensors.end(), [](const OutTensor& a, const OutTensor& b) { return a.name < b.name; });
    char fname[64];
    std::snprintf(fname, sizeof(fname), "model-%05d-of-%05d.safetensors", si + 1, n_shards);
    std::vector<TensorToWrite> header_list;
    for (const auto& t : tensors) header_list.push_back({t.name, t.dtype, t.shape});
    std::vector<uint64_t> offsets;
    std::string header = make_safetensors_header(header_list, {{"format", "pt"}}, &offsets);
    std::string path = opt.out_dir + "/" + fname, tmp = path + ".tmp";
    FILE* f = std::fopen(tmp.c_str(), "wb");
    if (!f) return error_f("cannot create '%s': %s", tmp.c_str(), std::strerror(errno));
    uint8_t len[8];
    for (int i = 0; i < 8; ++i) len[i] = static_cast<uint8_t>((header.size() >> (8 * i)) & 0xFF);
    Status st = write_all(f, len, 8, tmp);
    if (st.ok()) st = write_all(f, header.data(), header.size(), tmp);
    for (size_t i = 0; st.ok() && i < tensors.size(); ++i) {
      st = writer.write_tensor(f, tmp, tensors[i], scales).context("tensor '" + tensors[i].name + "'");
      done += tensors[i].bytes();
      weight_map[tensors[i].name] = fname;
      if (opt.progress) {
        double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
        std::fprintf(stderr, "\rmake-random: %s  %.2f / %.2f GB  %.0f MB/s   ", fname, done / 1e9, total / 1e9,
                     secs > 0 ? done / 1e6 / secs : 0.0);
      }
    }
    // The shard's pages leave the page cache once on disk: written in pieces, they were cached
    // in small folios, which a later load would map 4 KB at a time; read back from disk they
    // come in 2 MB folios where the filesystem has them (base/mapped_file.h). Decode on
    // moonlight-8l ran 1.2x faster so (docs/benchmarks.md, "Weights in 2 MB pages").
    if (st.ok() && std::ftell(f) >= (long{64} << 20) && std::fflush(f) == 0 && ::fdatasync(::fileno(f)) == 0)
      (void)::posix_fadvise(::fileno(f), 0, 0, POSIX_FADV_DONTNEED);
    if (std::fclose(f) != 0 && st.ok()) st = error_f("close of '%s' failed: %s", tmp.c_str(), std::strerror(errno));
    if (!st.ok()) {
      std::remove(tmp.c_str());
      return st;
    }
    if (std::rename(tmp.c_str(), path.c_str()) != 0)
      return error_f("rename to '%s' failed: %s", path.c_str(), std::strerror(errno));
  }
  if (opt.progress) std::fprintf(stderr, "\n");

  OrderedJson index = {{"metadata", {{"total_size", total}}}, {"weight_map", weight_map}};
  DSV3_TRY(write_text(opt.out_dir + "/model.safetensors.index.json", index.dump(2) + "\n"));
  if (!opt.tokenizer_dir.empty()) {
    for (const char* name : {"tokenizer.json", "tokenizer_config.json"}) {
      fs::copy_file(opt.tokenizer_dir + "/" + name, opt.out_dir + "/" + name, fs::copy_options::overwrite_existing, ec);
      if (ec) return error_f("cannot copy %s from '%s': %s", name, opt.tokenizer_dir.c_str(), ec.message().c_str());
    }
  }
  // config.json last: a directory without it is visibly incomplete.
  DSV3_TRY(write_text(opt.out_dir + "/config.json", config.dump(2) + "\n"));
  return {};
}

}  // namespace dsv3
