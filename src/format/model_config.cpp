#include "format/model_config.h"

#include <cmath>

#include "base/mapped_file.h"

namespace dsv3 {

const char* scoring_func_name(ScoringFunc f) { return f == ScoringFunc::Sigmoid ? "sigmoid" : "softmax"; }
const char* topk_method_name(TopkMethod m) {
  switch (m) {
    case TopkMethod::Greedy: return "greedy";
    case TopkMethod::GroupLimitedGreedy: return "group_limited_greedy";
    case TopkMethod::NoauxTc: return "noaux_tc";
  }
  return "?";
}

double ModelConfig::softmax_scale() const {
  double scale = 1.0 / std::sqrt(static_cast<double>(qk_head_dim()));
  if (rope_scaling && rope_scaling->factor > 1.0) {
    double m = 0.1 * rope_scaling->mscale_all_dim * std::log(rope_scaling->factor) + 1.0;
    scale *= m * m;
  }
  return scale;
}

namespace {

// Reads fields of one JSON object, collecting the first error with the field's name.
class FieldReader {
 public:
  FieldReader(const Json& obj, std::string prefix) : obj_(obj), prefix_(std::move(prefix)) {}

  bool has(const char* key) const { return obj_.contains(key) && !obj_.at(key).is_null(); }
  bool present(const char* key) const { return obj_.contains(key); }

  // Required integer in [lo, hi].
  int64_t integer(const char* key, int64_t lo, int64_t hi) {
    if (!present(key)) return fail(key, "required field is missing"), 0;
    return int_value(key, lo, hi);
  }
  // Optional integer (absent or null gives `dflt`).
  int64_t integer_or(const char* key, int64_t dflt, int64_t lo, int64_t hi) {
    if (!has(key)) return dflt;
    return int_value(key, lo, hi);
  }
  double number(const char* key) {
    if (!present(key)) return fail(key, "required field is missing"), 0.0;
    return num_value(key);
  }
  double number_or(const char* key, double dflt) { return has(key) ? num_value(key) : dflt; }
  std::string string(const char* key) {
    if (!present(key)) return fail(key, "required field is missing"), std::string();
    const Json& v = obj_.at(key);
    if (!v.is_string()) return fail(key, "expected a string, got " + json_snippet(v)), std::string();
    return v.get<std::string>();
  }
  bool boolean(const char* key) {
    if (!present(key)) return fail(key, "required field is missing"), false;
    const Json& v = obj_.at(key);
    if (!v.is_boolean()) return fail(key, "expected true or false, got " + json_snippet(v)), false;
    return v.get<bool>();
  }
  bool boolean_or(const char* key, bool dflt) {
    if (!has(key)) return dflt;
    return boolean(key);
  }
  void fail(const std::string& key, const std::string& why) {
    if (!error_) error_ = Error(prefix_ + "field '" + key + "': " + why);
  }
  const std::optional<Error>& error() const { return error_; }

 private:
  int64_t int_value(const char* key, int64_t lo, int64_t hi) {
    const Json& v = obj_.at(key);
    if (!v.is_number_integer() && !v.is_number_unsigned())
      return fail(key, "expected an integer, got " + json_snippet(v)), 0;
    if (v.is_number_unsigned() && v.get<uint64_t>() > static_cast<uint64_t>(hi))
      return fail(key, str_f("value %s is out of range [%lld, %lld]", json_snippet(v).c_str(),
                             static_cast<long long>(lo), static_cast<long long>(hi))), 0;
    int64_t x = v.get<int64_t>();
    if (x < lo || x > hi)
      return fail(key, str_f("value %lld is out of range [%lld, %lld]", static_cast<long long>(x),
                             static_cast<long long>(lo), static_cast<long long>(hi))), 0;
    return x;
  }
  double num_value(const char* key) {
    const Json& v = obj_.at(key);
    if (!v.is_number()) return fail(key, "expected a number, got " + json_snippet(v)), 0.0;
    double d = v.get<double>();
    if (!std::isfinite(d)) return fail(key, "not a finite number"), 0.0;
    return d;
  }
  const Json& obj_;
  std::string prefix_;
  std::optional<Error> error_;
};

constexpr int64_t kMaxDim = int64_t(1) << 20;  // any single model dimension
constexpr int64_t kMaxCount = 1 << 16;          // layers, heads, experts

}  // namespace

Result<ModelConfig> parse_model_config(const Json& j, const std::string& where) {
  if (!j.is_object()) return Error(where + ": not a JSON object");
  ModelConfig c;
  FieldReader r(j, where + ": ");
  c.model_type = r.string("model_type");
  if (r.error()) return *r.error();
  if (c.model_type != "deepseek_v3" && c.model_type != "deepseek_v2" && c.model_type != "deepseek_v32")
    return Error(where + ": unsupported architecture: model_type '" + json_snippet(j["model_type"], 40) +
                 "' (supported: deepseek_v3, deepseek_v2, deepseek_v32)");

  c.vocab_size = r.integer("vocab_size", 1, int64_t(1) << 24);
  c.hidden_size = r.integer("hidden_size", 1, kMaxDim);
  c.num_hidden_layers = r.integer("num_hidden_layers", 1, kMaxCount);
  c.num_nextn_predict_layers = r.integer_or("num_nextn_predict_layers", 0, 0, 16);
  c.num_attention_heads = r.integer("num_attention_heads", 1, kMaxCount);
  if (!r.present("q_lora_rank")) r.fail("q_lora_rank", "required field is missing (null for a plain q_proj)");
  c.q_lora_rank = r.integer_or("q_lora_rank", 0, 0, kMaxDim);
  c.kv_lora_rank = r.integer("kv_lora_rank", 1, kMaxDim);
  c.qk_nope_head_dim = r.integer("qk_nope_head_dim", 1, kMaxDim);
  c.qk_rope_head_dim = r.integer("qk_rope_head_dim", 2, kMaxDim);
  c.v_head_dim = r.integer("v_head_dim", 1, kMaxDim);
  c.intermediate_size = r.integer("intermediate_size", 1, kMaxDim);
  c.rms_norm_eps = r.number("rms_norm_eps");
  c.rope_theta = r.number("rope_theta");
  c.max_position_embeddings = r.integer("max_position_embeddings", 1, int64_t(1) << 31);
  c.tie_word_embeddings = r.boolean_or("tie_word_embeddings", false);
  c.moe_layer_freq = r.integer_or("moe_layer_freq", 1, 1, kMaxCount);
  c.first_k_dense_replace = r.integer_or("first_k_dense_replace", 0, 0, kMaxCount);

  if (!r.present("n_routed_experts")) r.fail("n_routed_experts", "required field is missing (null for a dense model)");
  c.n_routed_experts = r.integer_or("n_routed_experts", 0, 1, kMaxCount);
  if (c.n_routed_experts > 0) {
    c.num_experts_per_tok = r.integer("num_experts_per_tok", 1, kMaxCount);
    c.moe_intermediate_size = r.integer("moe_intermediate_size", 1, kMaxDim);
    c.n_shared_experts = r.integer_or("n_shared_experts", 0, 0, kMaxCount);
    c.routed_scaling_factor = r.number("routed_scaling_factor");
    c.norm_topk_prob = r.boolean("norm_topk_prob");
    std::string scoring = r.string("scoring_func");
    if (scoring == "sigmoid") c.scoring_func = ScoringFunc::Sigmoid;
    else if (scoring == "softmax") c.scoring_func = ScoringFunc::Softmax;
    else if (!r.error()) r.fail("scoring_func", "unknown value '" + json_snippet(j["scoring_func"], 40) + "' (sigmoid or softmax)");
    std::string method = r.string("topk_method");
    if (method == "greedy") c.topk_method = TopkMethod::Greedy;
    else if (method == "group_limited_greedy") c.topk_method = TopkMethod::GroupLimitedGreedy;
    else if (method == "noaux_tc") c.topk_method = TopkMethod::NoauxTc;
    else if (!r.error())
      r.fail("topk_method", "unknown value '" + json_snippet(j["topk_method"], 40) + "' (greedy, group_limited_greedy or noaux_tc)");
    // Groups: absent or null means one group, except for group_limited_greedy, which is
    // meaningless without them.
    if (c.topk_method == TopkMethod::GroupLimitedGreedy) {
      c.n_group = r.integer("n_group", 1, kMaxCount);
      c.topk_group = r.integer("topk_group", 1, kMaxCount);
    } else {
      c.n_group = r.integer_or("n_group", 1, 1, kMaxCount);
      c.topk_group = r.integer_or("topk_group", 1, 1, kMaxCount);
    }
  }
  if (c.model_type == "deepseek_v32") {
    c.index_n_heads = r.integer("index_n_heads", 1, kMaxCount);
    c.index_head_dim = r.integer("index_head_dim", 1, kMaxDim);
    c.index_topk = r.integer("index_topk", 1, int64_t(1) << 31);
  }
  if (r.has("scale_fmt")) c.scale_fmt = r.string("scale_fmt");
  if (r.error()) return *r.error();

  // rope_scaling (or the newer spelling rope_parameters); "type" or "rope_type".
  const char* rope_key = j.contains("rope_scaling") ? "rope_scaling" : (j.contains("rope_parameters") ? "rope_parameters" : nullptr);
  if (rope_key && !j.at(rope_key).is_null()) {
    const Json& rs = j.at(rope_key);
    std::string rk = rope_key;
    if (!rs.is_object()) return Error(where + ": field '" + rk + "': expected an object");
    FieldReader rr(rs, where + ": " + rk + ".");
    std::string type;
    if (rs.contains("type")) type = rr.string("type");
    else if (rs.contains("rope_type")) type = rr.string("rope_type");
    else return Error(where + ": field '" + rk + ".type': required field is missing");
    if (rr.error()) return *rr.error();
    if (type == "yarn") {
      YarnRopeScaling y;
      y.factor = rr.number("factor");
      y.original_max_position_embeddings = rr.integer("original_max_position_embeddings", 1, int64_t(1) << 31);
      y.beta_fast = rr.number_or("beta_fast", 32.0);
      y.beta_slow = rr.number_or("beta_slow", 1.0);
      y.mscale = rr.number_or("mscale", 1.0);
      y.mscale_all_dim = rr.number_or("mscale_all_dim", y.mscale);
      if (rr.error()) return *rr.error();
      if (!(y.factor > 0)) return Error(where + ": field '" + rk + ".factor': must be > 0");
      if (!(y.beta_fast > 0) || !(y.beta_slow > 0))
        return Error(where + ": field '" + rk + ".beta_fast/beta_slow': must be > 0");
      c.rope_scaling = y;
    } else if (type != "default" && type != "none") {
      return Error(where + ": field '" + rk + ".type': unsupported rope scaling '" + json_snippet(Json(type), 40) +
                   "' (this family uses yarn)");
    }
  }

  if (j.contains("quantization_config") && !j.at("quantization_config").is_null()) {
    const Json& q = j.at("quantization_config");
    if (!q.is_object()) return Error(where + ": field 'quantization_config': expected an object");
    FieldReader qr(q, where + ": quantization_config.");
    QuantizationConfig qc;
    qc.quant_method = qr.string("quant_method");
    qc.fmt = q.contains("fmt") ? qr.string("fmt") : "e4m3";
    qc.activation_scheme = q.contains("activation_scheme") ? qr.string("activation_scheme") : "dynamic";
    if (q.contains("scale_fmt") && !q.at("scale_fmt").is_null()) qc.scale_fmt = qr.string("scale_fmt");
    if (qr.error()) return *qr.error();
    if (qc.quant_method != "fp8")
      return Error(where + ": field 'quantization_config.quant_method': unsupported '" + json_snippet(Json(qc.quant_method), 40) + "' (fp8)");
    if (qc.fmt != "e4m3")
      return Error(where + ": field 'quantization_config.fmt': unsupported '" + json_snippet(Json(qc.fmt), 40) + "' (e4m3)");
    auto bs = q.find("weight_block_size");
    if (bs == q.end() || !bs->is_array() || bs->size() != 2)
      return Error(where + ": field 'quantization_config.weight_block_size': expected [rows, cols]");
    auto r0 = json_as_int((*bs)[0], "quantization_config.weight_block_size[0]");
    auto r1 = json_as_int((*bs)[1], "quantization_config.weight_block_size[1]");
    if (!r0.ok()) return std::move(r0).error().context(where);
    if (!r1.ok()) return std::move(r1).error().context(where);
    if (*r0 < 1 || *r1 < 1 || *r0 > 65536 || *r1 > 65536)
      return Error(where + ": field 'quantization_config.weight_block_size': sizes must be in [1, 65536]");
    qc.block_rows = *r0;
    qc.block_cols = *r1;
    c.quantization_config = qc;
  }

  if (j.contains("bos_token_id") && !j["bos_token_id"].is_null()) {
    auto b = json_as_int(j["bos_token_id"], "bos_token_id");
    if (!b.ok()) return std::move(b).error().context(where);
    c.bos_token_id = *b;
  }
  if (j.contains("eos_token_id") && !j["eos_token_id"].is_null()) {
    const Json& e = j["eos_token_id"];
    if (e.is_array()) {
      for (const auto& x : e) {
        auto v = json_as_int(x, "eos_token_id");
        if (!v.ok()) return std::move(v).error().context(where);
        c.eos_token_ids.push_back(*v);
      }
    } else {
      auto v = json_as_int(e, "eos_token_id");
      if (!v.ok()) return std::move(v).error().context(where);
      c.eos_token_ids.push_back(*v);
    }
  }

  // Consistency: no division by zero or impossible routing downstream.
  auto bad = [&](const std::string& field, const std::string& why) { return Error(where + ": field '" + field + "': " + why); };
  if (!(c.rms_norm_eps > 0)) return bad("rms_norm_eps", "must be > 0");
  if (!(c.rope_theta > 1)) return bad("rope_theta", "must be > 1");
  if (c.qk_rope_head_dim % 2 != 0) return bad("qk_rope_head_dim", "must be even (rotary pairs)");
  if (c.n_routed_experts > 0) {
    if (c.n_routed_experts % c.n_group != 0)
      return bad("n_group", str_f("n_routed_experts (%lld) is not divisible by n_group (%lld)",
                                  static_cast<long long>(c.n_routed_experts), static_cast<long long>(c.n_group)));
    if (c.topk_group > c.n_group)
      return bad("topk_group", str_f("%lld exceeds n_group (%lld)", static_cast<long long>(c.topk_group),
                                     static_cast<long long>(c.n_group)));
    if (c.num_experts_per_tok > c.n_routed_experts)
      return bad("num_experts_per_tok", str_f("%lld exceeds n_routed_experts (%lld)",
                                              static_cast<long long>(c.num_experts_per_tok),
                                              static_cast<long long>(c.n_routed_experts)));
    int64_t per_group = c.n_routed_experts / c.n_group;
    if (c.n_group > 1 && c.num_experts_per_tok > c.topk_group * per_group)
      return bad("num_experts_per_tok", "exceeds the experts in the topk_group kept groups");
    if (c.n_group > 1 && c.has_router_bias() && per_group < 2)
      return bad("n_group", "noaux_tc scores groups by their top-2 experts: need at least 2 experts per group");
    if (!(c.routed_scaling_factor > 0)) return bad("routed_scaling_factor", "must be > 0");
  }
  if (c.scale_fmt.empty() && c.quantization_config) c.scale_fmt = c.quantization_config->scale_fmt;
  if (!c.scale_fmt.empty() && c.scale_fmt != "ue8m0")
    return bad("scale_fmt", "unsupported '" + json_snippet(Json(c.scale_fmt), 40) + "' (ue8m0, or null)");
  if (c.has_indexer()) {
    // The indexer quantizes each key and each query head as one 128-value FP8 block with one
    // scale (kernel.py act_quant and fp8_index), after a Hadamard rotation of the whole head.
    if (c.index_head_dim != 128)
      return bad("index_head_dim", str_f("%lld is not supported: the indexer keeps one FP8 scale per 128-value key (128)",
                                         static_cast<long long>(c.index_head_dim)));
    if (c.index_head_dim < c.qk_rope_head_dim)
      return bad("index_head_dim", "is smaller than qk_rope_head_dim (the indexer ropes its first qk_rope_head_dim values)");
    if (!c.has_q_lora()) return bad("q_lora_rank", "deepseek_v32's indexer reads the query latent: q_lora_rank must be set");
  }
  for (int64_t e : c.eos_token_ids)
    if (e < 0 || e >= c.vocab_size) return bad("eos_token_id", "outside [0, vocab_size)");
  if (c.bos_token_id && (*c.bos_token_id < 0 || *c.bos_token_id >= c.vocab_size))
    return bad("bos_token_id", "outside [0, vocab_size)");
  return c;
}

Result<ModelConfig> load_model_config(const std::string& dir) {
  std::string path = dir + "/config.json";
  DSV3_ASSIGN(std::string text, read_text_file(path, 16ull << 20));
  DSV3_ASSIGN(Json j, parse_json(text, path));
  return parse_model_config(j, path);
}

}  // namespace dsv3
