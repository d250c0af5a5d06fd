// Rendering of an InspectReport: text for people, JSON for programs.
//
// JSON schema (all sizes in bytes, counts in elements):
// {
//   "model_dir": str, "valid": bool (the exit code: true -> 0),
//   "config": {model_type, architectures[], vocab_size, hidden_size, num_hidden_layers, dense_layers,
//              moe_layers, num_nextn_predict_layers, num_attention_heads, q_lora_rank (null: plain
//              q_proj), kv_lora_rank, qk_nope_head_dim, qk_rope_head_dim, v_head_dim, intermediate_size,
//              moe_intermediate_size, n_routed_experts, n_shared_experts, num_experts_per_tok, n_group,
//              topk_group, scoring_func, topk_method, norm_topk_prob, routed_scaling_factor, rope_theta,
//              rope_scaling {type, factor, ...} | null, max_position_embeddings,
//              quantization_config {quant_method, fmt, weight_block_size} | null,
//              indexer {index_n_heads, index_head_dim, index_topk, scale_fmt} (V3.2 only)},
//   "parameters": {main, active_per_token, routed_experts, embedding, head, mtp_unique, mtp_with_shared},
//   "bytes": {dtypes_from: "checkpoint" | "config", by_dtype {DTYPE: n}, total, main, mtp,
//             decode_per_token, mtp_decode_per_token,
//             kv_cache_per_token {values, f32, bf16, mtp_f32, index_keys}},
//   "weights": {present, error (str | null), tensors, tensor_bytes, shards [{file, bytes, tensors}]},
//   "validation": null | {valid, missing[], mtp_missing[], mtp_absent, unused[], problems [{tensor, message}]},
//   "verify": null | {bytes_scanned, seconds, bad_tensors, cancelled,
//                     tensors [{name, dtype, elements, scanned, nan, inf, first_bad, max_abs}]}
// }

#include <cmath>

#include "tools/inspect.h"
#include "tools/progress.h"

namespace dsv3 {
namespace {

// 671.03B, 37.6M, 12.3k, 512.
std::string format_count(uint64_t n) {
  const double v = static_cast<double>(n);
  if (v >= 1e9) return str_f("%.2fB", v / 1e9);
  if (v >= 1e6) return str_f("%.2fM", v / 1e6);
  if (v >= 1e4) return str_f("%.1fk", v / 1e3);
  return std::to_string(n);
}

int64_t moe_layer_count(const ModelConfig& c) {
  int64_t n = 0;
  for (int64_t i = 0; i < c.num_hidden_layers; ++i) n += c.is_moe_layer(i);
  return n;
}

std::string join(const std::vector<std::string>& v, const char* sep) {
  std::string s;
  for (size_t i = 0; i < v.size(); ++i) s += (i ? sep : "") + v[i];
  return s;
}

void list_section(std::string& out, const char* title, const std::vector<std::string>& names) {
  if (names.empty()) return;
  out += str_f("  %s (%zu):\n", title, names.size());
  for (const auto& n : names) out += "    " + n + "\n";
}

}  // namespace

std::string format_inspect_text(const InspectReport& r) {
  const ModelConfig& c = r.config;
  const ModelFootprint& f = r.footprint;
  std::string o;
  auto line = [&](const char* key, const std::string& value) { o += str_f("%-11s %s\n", key, value.c_str()); };

  line("model", r.dir);
  line("family", c.model_type + (r.architectures.empty() ? "" : " (" + join(r.architectures, ", ") + ")"));
  const int64_t moe = moe_layer_count(c);
  line("layers", str_f("%lld (%lld dense, %lld MoE)", static_cast<long long>(c.num_hidden_layers),
                       static_cast<long long>(c.num_hidden_layers - moe), static_cast<long long>(moe)) +
                     (c.num_nextn_predict_layers > 0
                          ? str_f(" + %lld MTP layer(s)", static_cast<long long>(c.num_nextn_predict_layers))
                          : std::string(", no MTP")));
  line("hidden", str_f("%lld, vocab %lld, %lld attention heads, context %lld", static_cast<long long>(c.hidden_size),
                       static_cast<long long>(c.vocab_size), static_cast<long long>(c.num_attention_heads),
                       static_cast<long long>(c.max_position_embeddings)));
  line("attention", std::string("MLA, ") +
                        (c.has_q_lora() ? str_f("q_lora_rank %lld", static_cast<long long>(c.q_lora_rank))
                                        : std::string("plain q_proj")) +
                        str_f(", kv_lora_rank %lld, qk_nope %lld + qk_rope %lld, v %lld",
                              static_cast<long long>(c.kv_lora_rank), static_cast<long long>(c.qk_nope_head_dim),
                              static_cast<long long>(c.qk_rope_head_dim), static_cast<long long>(c.v_head_dim)));
  if (c.has_indexer())
    line("sparse", str_f("DeepSeek Sparse Attention: indexer of %lld heads x %lld, top %lld tokens per query%s",
                         static_cast<long long>(c.index_n_heads), static_cast<long long>(c.index_head_dim),
                         static_cast<long long>(c.index_topk), c.scale_fmt.empty() ? "" : (", scales " + c.scale_fmt).c_str()));
  if (c.n_routed_experts > 0) {
    line("experts", str_f("%lld routed (%lld per token), %lld shared, moe_intermediate %lld; dense intermediate %lld",
                          static_cast<long long>(c.n_routed_experts), static_cast<long long>(c.num_experts_per_tok),
                          static_cast<long long>(c.n_shared_experts), static_cast<long long>(c.moe_intermediate_size),
                          static_cast<long long>(c.intermediate_size)));
    std::string router = std::string(scoring_func_name(c.scoring_func)) + ", " + topk_method_name(c.topk_method);
    if (c.n_group > 1)
      router += str_f(", %lld groups keep %lld", static_cast<long long>(c.n_group), static_cast<long long>(c.topk_group));
    router += str_f("%s, x%g", c.norm_topk_prob ? ", normalized" : "", c.routed_scaling_factor);
    line("router", router);
  } else {
    line("experts", str_f("none (dense MLP, intermediate %lld)", static_cast<long long>(c.intermediate_size)));
  }
  if (c.rope_scaling) {
    const YarnRopeScaling& y = *c.rope_scaling;
    line("rope", str_f("yarn factor %g (original %lld, beta_fast %g, beta_slow %g, mscale %g / %g), theta %g", y.factor,
                       static_cast<long long>(y.original_max_position_embeddings), y.beta_fast, y.beta_slow, y.mscale,
                       y.mscale_all_dim, c.rope_theta));
  } else {
    line("rope", str_f("theta %g, no scaling", c.rope_theta));
  }
  if (c.quantization_config)
    line("quant", str_f("%s %s, %lldx%lld block scales", c.quantization_config->quant_method.c_str(),
                        c.quantization_config->fmt.c_str(), static_cast<long long>(c.quantization_config->block_rows),
                        static_cast<long long>(c.quantization_config->block_cols)));
  else
    line("quant", "none (weights as stored, BF16 in exports)");

  o += "\nparameters\n";
  const ParamCounts& p = f.params;
  o += str_f("  main model              %10s\n", format_count(p.main).c_str());
  o += str_f("  active per token        %10s  (routed experts at %lld of %lld)\n", format_count(p.active_per_token).c_str(),
             static_cast<long long>(c.num_experts_per_tok), static_cast<long long>(c.n_routed_experts));
  o += str_f("  routed experts          %10s\n", format_count(p.routed_experts).c_str());
  o += str_f("  embedding / head        %10s / %s\n", format_count(p.embedding).c_str(), format_count(p.head).c_str());
  if (c.num_nextn_predict_layers > 0)
    o += str_f("  MTP module              %10s unique, %s counting its copies of embedding and head\n",
               format_count(p.mtp_unique).c_str(), format_count(p.mtp_with_shared).c_str());

  o += str_f("\nbytes (%s)\n", f.dtypes_from_checkpoint ? "as stored" : "assumed from the config: weights absent");
  for (const auto& [dtype, bytes] : f.bytes_by_dtype) o += str_f("  %-8s %12s\n", dtype.c_str(), format_bytes(bytes).c_str());
  o += str_f("  total    %12s\n", format_bytes(f.total_bytes).c_str());
  o += str_f("  weight bytes read per decoded token: %s (main model)", format_bytes(f.decode_bytes_per_token).c_str());
  if (c.num_nextn_predict_layers > 0)
    o += str_f(", + %s per MTP draft token", format_bytes(f.mtp_decode_bytes_per_token).c_str());
  o += "\n";
  o += str_f("  KV cache per token: %s in BF16, %s as dsv3 keeps it (float32): %lld layers x %lld values\n",
             format_bytes(f.kv_bytes_per_token_bf16).c_str(), format_bytes(f.kv_bytes_per_token_f32).c_str(),
             static_cast<long long>(c.num_hidden_layers), static_cast<long long>(c.kv_cache_dim()));
  if (c.has_indexer())
    o += str_f("    of which the sparse-attention indexer's keys: %s (%lld layers x %lld FP8 bytes + a float32 scale);"
               " each query attends to %lld tokens\n",
               format_bytes(f.index_key_bytes_per_token).c_str(), static_cast<long long>(c.num_hidden_layers),
               static_cast<long long>(c.index_key_dim()), static_cast<long long>(c.index_topk));

  o += "\nweights\n";
  if (!r.weights_present) {
    o += "  absent: config.json only (no model.safetensors.index.json or model.safetensors); counts come from the config\n";
  } else if (!r.weights_error.empty()) {
    o += "  UNREADABLE: " + r.weights_error + "\n";
  } else {
    o += str_f("  %zu shard(s), %zu tensors, %s\n", r.shards.size(), r.tensor_count, format_bytes(r.tensor_bytes).c_str());
    for (const ShardSummary& s : r.shards)
      o += str_f("    %-40s %10s  %zu tensors\n", s.file.c_str(), format_bytes(s.bytes).c_str(), s.tensors);
  }

  if (r.validation) {
    const CheckpointValidation& v = *r.validation;
    o += "\nvalidation\n";
    if (v.valid()) o += "  ok: every tensor the config requires is present with the expected shape and a usable dtype\n";
    list_section(o, "MISSING", v.missing);
    list_section(o, "MISSING from the MTP module", v.mtp_missing);
    if (!v.problems.empty()) {
      o += str_f("  DEFECTS (%zu):\n", v.problems.size());
      for (const BindProblem& b : v.problems) o += "    " + b.message + "\n";
    }
    if (v.mtp_absent)
      o += "  warning: config.json declares MTP layers but none of their tensors is stored (no speculative decoding)\n";
    list_section(o, "unused (ignored by the loader)", v.unused);
  }
  if (r.verify) {
    const ValueScanReport& s = *r.verify;
    o += str_f("\nverify (every value, %s in %.1f s)\n", format_bytes(s.bytes_scanned).c_str(), s.seconds);
    if (s.cancelled) o += "  INTERRUPTED: not every tensor was scanned\n";
    size_t scanned = 0;
    for (const TensorValueScan& t : s.tensors) {
      scanned += t.scanned;
      if (t.ok()) continue;
      o += str_f("  NON-FINITE %s (%s): %llu NaN, %llu Inf of %llu values, first at index %lld\n", t.name.c_str(),
                 dtype_name(t.dtype), static_cast<unsigned long long>(t.nan), static_cast<unsigned long long>(t.inf),
                 static_cast<unsigned long long>(t.elements), static_cast<long long>(t.first_bad));
    }
    if (s.bad_tensors == 0 && !s.cancelled)
      o += str_f("  ok: %zu float tensors scanned, no NaN or Inf (per-tensor details with --json)\n", scanned);
    else
      o += str_f("  %zu of %zu float tensors hold NaN/Inf\n", s.bad_tensors, scanned);
  }
  o += std::string("\nresult: ") + (r.ok() ? "ok" : "INVALID") + "\n";
  return o;
}

Json inspect_to_json(const InspectReport& r) {
  const ModelConfig& c = r.config;
  const ModelFootprint& f = r.footprint;
  Json cfg = {{"model_type", c.model_type},
              {"architectures", r.architectures},
              {"vocab_size", c.vocab_size},
              {"hidden_size", c.hidden_size},
              {"num_hidden_layers", c.num_hidden_layers},
              {"dense_layers", c.num_hidden_layers - moe_layer_count(c)},
              {"moe_layers", moe_layer_count(c)},
              {"num_nextn_predict_layers", c.num_nextn_predict_layers},
              {"num_attention_heads", c.num_attention_heads},
              {"q_lora_rank", c.has_q_lora() ? Json(c.q_lora_rank) : Json(nullptr)},
              {"kv_lora_rank", c.kv_lora_rank},
              {"qk_nope_head_dim", c.qk_nope_head_dim},
              {"qk_rope_head_dim", c.qk_rope_head_dim},
              {"v_head_dim", c.v_head_dim},
              {"intermediate_size", c.intermediate_size},
              {"moe_intermediate_size", c.moe_intermediate_size},
              {"n_routed_experts", c.n_routed_experts},
              {"n_shared_experts", c.n_shared_experts},
              {"num_experts_per_tok", c.num_experts_per_tok},
              {"n_group", c.n_group},
              {"topk_group", c.topk_group},
              {"scoring_func", scoring_func_name(c.scoring_func)},
              {"topk_method", topk_method_name(c.topk_method)},
              {"norm_topk_prob", c.norm_topk_prob},
              {"routed_scaling_factor", c.routed_scaling_factor},
              {"rope_theta", c.rope_theta},
              {"max_position_embeddings", c.max_position_embeddings}};
  if (c.has_indexer())
    cfg["indexer"] = {{"index_n_heads", c.index_n_heads}, {"index_head_dim", c.index_head_dim},
                      {"index_topk", c.index_topk}, {"scale_fmt", c.scale_fmt.empty() ? Json(nullptr) : Json(c.scale_fmt)}};
  if (c.rope_scaling) {
    const YarnRopeScaling& y = *c.rope_scaling;
    cfg["rope_scaling"] = {{"type", "yarn"}, {"factor", y.factor}, {"original_max_position_embeddings", y.original_max_position_embeddings},
                           {"beta_fast", y.beta_fast}, {"beta_slow", y.beta_slow}, {"mscale", y.mscale},
                           {"mscale_all_dim", y.mscale_all_dim}};
  } else {
    cfg["rope_scaling"] = nullptr;
  }
  if (c.quantization_config)
    cfg["quantization_config"] = {{"quant_method", c.quantization_config->quant_method},
                                  {"fmt", c.quantization_config->fmt},
                                  {"weight_block_size", {c.quantization_config->block_rows, c.quantization_config->block_cols}}};
  else
    cfg["quantization_config"] = nullptr;

  const ParamCounts& p = f.params;
  Json params = {{"main", p.main},           {"active_per_token", p.active_per_token}, {"routed_experts", p.routed_experts},
                 {"embedding", p.embedding}, {"head", p.head},                         {"mtp_unique", p.mtp_unique},
                 {"mtp_with_shared", p.mtp_with_shared}};
  Json by_dtype = Json::object();
  for (const auto& [dtype, bytes] : f.bytes_by_dtype) by_dtype[dtype] = bytes;
  Json bytes = {{"dtypes_from", f.dtypes_from_checkpoint ? "checkpoint" : "config"},
                {"by_dtype", by_dtype},
                {"total", f.total_bytes},
                {"main", f.main_bytes},
                {"mtp", f.mtp_bytes},
                {"decode_per_token", f.decode_bytes_per_token},
                {"mtp_decode_per_token", f.mtp_decode_bytes_per_token},
                {"kv_cache_per_token",
                 {{"values", f.kv_values_per_token}, {"f32", f.kv_bytes_per_token_f32}, {"bf16", f.kv_bytes_per_token_bf16},
                  {"mtp_f32", f.mtp_kv_bytes_per_token_f32}, {"index_keys", f.index_key_bytes_per_token}}}};
  Json shards = Json::array();
  for (const ShardSummary& s : r.shards) shards.push_back({{"file", s.file}, {"bytes", s.bytes}, {"tensors", s.tensors}});
  Json weights = {{"present", r.weights_present},
                  {"error", r.weights_error.empty() ? Json(nullptr) : Json(r.weights_error)},
                  {"tensors", r.tensor_count},
                  {"tensor_bytes", r.tensor_bytes},
                  {"shards", shards}};

  Json out = {{"model_dir", r.dir}, {"valid", r.ok()}, {"config", cfg}, {"parameters", params},
              {"bytes", bytes},     {"weights", weights}};
  out["validation"] = nullptr;
  if (r.validation) {
    const CheckpointValidation& v = *r.validation;
    Json problems = Json::array();
    for (const BindProblem& b : v.problems) problems.push_back({{"tensor", b.tensor}, {"message", b.message}});
    out["validation"] = {{"valid", v.valid()}, {"missing", v.missing}, {"mtp_missing", v.mtp_missing},
                         {"mtp_absent", v.mtp_absent}, {"unused", v.unused}, {"problems", problems}};
  }
  out["verify"] = nullptr;
  if (r.verify) {
    const ValueScanReport& s = *r.verify;
    Json tensors = Json::array();
    for (const TensorValueScan& t : s.tensors)
      tensors.push_back({{"name", t.name}, {"dtype", dtype_name(t.dtype)}, {"elements", t.elements}, {"scanned", t.scanned},
                         {"nan", t.nan}, {"inf", t.inf}, {"first_bad", t.first_bad},
                         {"max_abs", std::isfinite(t.max_abs) ? Json(t.max_abs) : Json(nullptr)}});
    out["verify"] = {{"bytes_scanned", s.bytes_scanned}, {"seconds", s.seconds}, {"bad_tensors", s.bad_tensors},
                     {"cancelled", s.cancelled}, {"tensors", tensors}};
  }
  return out;
}

}  // namespace dsv3
