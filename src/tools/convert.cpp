#include "tools/convert.h"

#include <algorithm>
#include <chrono>
#include <filesystem>
#include <map>
#include <set>

#include "base/json.h"
#include "base/mapped_file.h"
#include "format/checkpoint.h"
#include "format/model_config.h"
#include "tools/page_release.h"
#include "tools/partial_file.h"
#include "tools/validate.h"

namespace dsv3 {
namespace fs = std::filesystem;

namespace {

constexpr const char* kIndex = "model.safetensors.index.json";
constexpr const char* kConfig = "config.json";

bool ends_with(const std::string& s, const std::string& suffix) {
  return s.size() >= suffix.size() && s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
}

// Top-level files of the model directory that are not weights: copied as they are.
void classify_model_files(const std::string& dir, const std::set<std::string>& shard_files,
                          std::vector<std::string>* copy, std::vector<std::string>* skipped) {
  std::error_code ec;
  for (const auto& e : fs::directory_iterator(dir, ec)) {
    const std::string name = e.path().filename().string();
    if (name == kConfig || name == kIndex || shard_files.count(name) || ends_with(name, kPartialSuffix)) continue;
    std::error_code ec2;
    if (ends_with(name, ".safetensors")) skipped->push_back(name + " (weights not in the index)");
    else if (e.is_directory(ec2)) skipped->push_back(name + "/ (directory)");
    else if (e.is_regular_file(ec2)) copy->push_back(name);
    else skipped->push_back(name + " (not a regular file)");
  }
  std::sort(copy->begin(), copy->end());
  std::sort(skipped->begin(), skipped->end());
}

// Steps 1-2 of the protocol in convert.h.
Status prepare_out_dir(const std::string& model_dir, const std::string& out_dir, const std::set<std::string>& will_write) {
  std::error_code ec;
  if (fs::exists(out_dir, ec) && fs::equivalent(out_dir, model_dir, ec))
    return Error("--out '" + out_dir + "' is the model directory: write the converted checkpoint elsewhere");
  fs::create_directories(out_dir, ec);
  if (ec) return error_f("cannot create '%s': %s", out_dir.c_str(), ec.message().c_str());
  if (!fs::is_directory(out_dir, ec)) return Error("--out '" + out_dir + "' is not a directory");
  std::vector<std::string> stale;
  for (const auto& e : fs::directory_iterator(out_dir, ec)) {
    const std::string name = e.path().filename().string();
    if (ends_with(name, kPartialSuffix)) {
      stale.push_back(name);
      continue;
    }
    if (!will_write.count(name))
      return Error("--out '" + out_dir + "' holds '" + name +
                   "', which convert would not write: use an empty directory (or a previous convert output of this model)");
  }
  if (ec) return error_f("cannot list '%s': %s", out_dir.c_str(), ec.message().c_str());
  // A previous complete output turns visibly incomplete before anything of it is replaced.
  for (const char* name : {kConfig, kIndex}) {
    fs::remove(out_dir + "/" + name, ec);
    if (ec) return error_f("cannot remove '%s/%s': %s", out_dir.c_str(), name, ec.message().c_str());
  }
  for (const std::string& name : stale) {
    fs::remove(out_dir + "/" + name, ec);
    if (ec) return error_f("cannot remove stale '%s/%s': %s", out_dir.c_str(), name.c_str(), ec.message().c_str());
  }
  return {};
}

}  // namespace

Result<ConvertSummary> convert_checkpoint(const ConvertOptions& opt, ThreadPool& pool) {
  const auto t0 = std::chrono::steady_clock::now();
  ConvertSummary sum;
  std::error_code ec;
  if (fs::exists(opt.out_dir, ec) && fs::equivalent(opt.out_dir, opt.model_dir, ec))
    return Error("--out '" + opt.out_dir + "' is the model directory: write the converted checkpoint elsewhere");
  DSV3_ASSIGN(std::string config_text, read_text_file(opt.model_dir + "/" + kConfig, 16ull << 20));
  DSV3_ASSIGN(OrderedJson config_json, parse_ordered_json(config_text, opt.model_dir + "/" + kConfig));
  DSV3_ASSIGN(ModelConfig config, load_model_config(opt.model_dir));
  DSV3_ASSIGN(auto ck, Checkpoint::open(opt.model_dir));
  CheckpointValidation v = validate_checkpoint(config, *ck);
  if (!v.valid())
    return Error("input checkpoint '" + opt.model_dir + "' is not valid: " + v.summary() +
                 " ('dsv3 inspect --model " + opt.model_dir + "' lists every defect)");
  DSV3_ASSIGN(ConvertPlan plan, plan_conversion(config, *ck, opt.target, opt.int_options));
  for (const auto& shard : ck->shards()) drop_all_mapped_pages(shard->file());

  const bool has_index = fs::exists(opt.model_dir + "/" + kIndex);
  std::set<std::string> shard_files;
  for (const PlannedShard& s : plan.shards) shard_files.insert(s.file);
  std::vector<std::string> copy_files;
  classify_model_files(opt.model_dir, shard_files, &copy_files, &sum.skipped);
  std::set<std::string> will_write = shard_files;
  will_write.insert(copy_files.begin(), copy_files.end());
  will_write.insert(kConfig);
  if (has_index) will_write.insert(kIndex);
  // Shard names may contain a directory part only if the index says so; keep it flat.
  for (const std::string& f : shard_files)
    if (f.find('/') != std::string::npos) return Error("shard '" + f + "' is in a subdirectory: not supported by convert");
  DSV3_TRY(prepare_out_dir(opt.model_dir, opt.out_dir, will_write));

  if (opt.on_start) opt.on_start(plan.input_bytes);
  for (const PlannedShard& s : plan.shards)
    DSV3_TRY(write_planned_shard(s, *ck, opt.out_dir + "/" + s.file, pool, opt.stream));

  auto cancelled = [&] { return opt.stream.cancel && opt.stream.cancel->load(); };
  for (const std::string& name : copy_files) {
    if (cancelled()) return Error("interrupted");
    DSV3_TRY(copy_file_atomically(opt.model_dir + "/" + name, opt.out_dir + "/" + name, opt.stream.durable));
  }
  if (has_index) {
    std::map<std::string, std::string> weight_map;
    for (const PlannedShard& s : plan.shards)
      for (const PlannedTensor& t : s.tensors) weight_map[t.name] = s.file;
    OrderedJson index = {{"metadata", {{"total_size", plan.output_bytes}}}, {"weight_map", weight_map}};
    DSV3_TRY(write_file_atomically(opt.out_dir + "/" + kIndex, index.dump(2) + "\n", opt.stream.durable));
  }
  if (opt.target == ConvertTarget::Bf16) {
    config_json.erase("quantization_config");
  } else if (opt.target == ConvertTarget::Int8 || opt.target == ConvertTarget::Int4) {
    // Names the format (docs/formats.md) so that the checkpoint explains itself; each tensor's
    // format is its stored dtype (I8 int8, U8 int4, F8_E4M3, BF16, ...).
    OrderedJson q = {{"quant_method", "dsv3_int"},
                     {"group_size", opt.int_options.group_size},
                     {"scale_dtype", "float16"},
                     {"symmetric", true},
                     {"default", opt.target == ConvertTarget::Int8 ? "int8" : "int4"},
                     {"rules", opt.rules_text},
                     {"layout", "I8 [out, in] int8 | U8 [out, ceil(in/2)] int4, low nibble = even column, two's "
                                "complement; '{weight}_scale' F16 [out, ceil(in/group_size)]; w = q * scale"}};
    if (plan.fp8_left) {
      q["fmt"] = "e4m3";
      q["weight_block_size"] = {plan.block_rows, plan.block_cols};
      q["activation_scheme"] = "dynamic";
    }
    config_json["quantization_config"] = q;
  } else if (!config.quantization_config) {
    config_json["quantization_config"] = {{"activation_scheme", "dynamic"},
                                          {"fmt", "e4m3"},
                                          {"quant_method", "fp8"},
                                          {"weight_block_size", {plan.block_rows, plan.block_cols}}};
  }
  if (cancelled()) return Error("interrupted");
  DSV3_TRY(write_file_atomically(opt.out_dir + "/" + kConfig, config_json.dump(2) + "\n", opt.stream.durable));
  if (opt.stream.durable) DSV3_TRY(sync_directory(opt.out_dir));

  sum.shards = plan.shards.size();
  sum.converted = plan.converted;
  sum.copied = plan.copied;
  sum.scales_dropped = plan.scales_dropped;
  sum.scales_added = plan.scales_added;
  sum.input_bytes = plan.input_bytes;
  sum.output_bytes = plan.output_bytes;
  sum.buffer_bound = stream_buffer_bound(opt.stream, pool);
  sum.copied_files = std::move(copy_files);
  sum.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  return sum;
}

}  // namespace dsv3
