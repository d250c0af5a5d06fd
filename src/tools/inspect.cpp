#include "tools/inspect.h"

#include <sys/stat.h>

#include <cerrno>
#include <cstring>

#include "base/mapped_file.h"

namespace dsv3 {
namespace {

bool exists(const std::string& path) {
  struct stat st {};
  return ::stat(path.c_str(), &st) == 0;
}

// A config string shown to the user: at most 80 bytes, cut on a UTF-8 boundary.
std::string bounded_text(std::string s) {
  if (s.size() <= 80) return s;
  s.resize(80);
  while (!s.empty() && find_invalid_utf8(s)) s.pop_back();
  return s + "...";
}

}  // namespace

bool InspectReport::ok() const {
  if (!weights_present) return true;
  if (!weights_error.empty()) return false;
  if (validation && !validation->valid()) return false;
  if (verify && (verify->bad_tensors > 0 || verify->cancelled)) return false;
  return true;
}

Result<InspectReport> inspect_model(const std::string& dir, const InspectOptions& options) {
  InspectReport r;
  r.dir = dir;
  struct stat st {};
  if (::stat(dir.c_str(), &st) != 0) return error_f("model directory '%s': %s", dir.c_str(), std::strerror(errno));
  if (!S_ISDIR(st.st_mode)) return error_f("model path '%s' is not a directory", dir.c_str());
  DSV3_ASSIGN(r.config, load_model_config(dir));
  // architectures is informational (like auto_map, never acted upon); parse_model_config validated the file.
  {
    DSV3_ASSIGN(std::string text, read_text_file(dir + "/config.json", 16ull << 20));
    DSV3_ASSIGN(Json j, parse_json(text, dir + "/config.json"));
    if (auto a = j.find("architectures"); a != j.end() && a->is_array())
      for (const auto& v : *a)
        if (v.is_string() && r.architectures.size() < 8) r.architectures.push_back(bounded_text(v.get<std::string>()));
  }

  for (int64_t group : {32, 64, 128})
    for (const WeightMix& mix : standard_mixes()) r.mixes.emplace_back(group, compute_footprint(r.config, mix, group));

  r.weights_present = exists(dir + "/model.safetensors.index.json") || exists(dir + "/model.safetensors");
  if (!r.weights_present) {
    r.footprint = compute_footprint(r.config, nullptr);
    return r;
  }
  auto opened = Checkpoint::open(dir);
  if (!opened.ok()) {
    r.weights_error = opened.error().message();
    r.footprint = compute_footprint(r.config, nullptr);
    return r;
  }
  std::unique_ptr<Checkpoint> ck = std::move(opened).value();
  r.footprint = compute_footprint(r.config, ck.get());
  for (const auto& shard : ck->shards()) {
    std::string file = shard->path().substr(dir.size() + 1);  // opened as dir + "/" + file
    r.shards.push_back({file, shard->file().size(), shard->tensors().size()});
  }
  for (const auto& [name, t] : ck->tensors()) {
    ++r.tensor_count;
    r.tensor_bytes += t.nbytes;
  }
  r.validation = validate_checkpoint(r.config, *ck);
  if (options.verify) {
    DSV3_CHECK(options.pool != nullptr, "inspect --verify needs a thread pool");
    if (options.verify_started) options.verify_started(r.tensor_bytes);
    r.verify = scan_checkpoint_values(*ck, *options.pool, options.verify_progress, options.cancel);
  }
  return r;
}

}  // namespace dsv3
