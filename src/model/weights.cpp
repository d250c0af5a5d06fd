#include "model/weights.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <utility>

#include "tensor/shape.h"

namespace dsv3 {

namespace {

// model.py's name -> the checkpoint's, component by component. The module names are
// DeepSeek's inference/convert.py `mapping`, in its order, read backwards (convert.py maps
// checkpoint -> model.py; its lm_head -> head is checkpoint_name's, as lm_head is the one
// tensor outside "model."). The rest are what convert.py renames by string replacement: the
// containers self_attn and mlp, the parameters weight_scale_inv and e_score_correction_bias.
// A component not listed keeps its spelling.
constexpr std::pair<std::string_view, std::string_view> kCheckpointNames[] = {
    {"embed", "embed_tokens"},
    {"attn_norm", "input_layernorm"},
    {"ffn_norm", "post_attention_layernorm"},
    {"wq", "q_proj"},
    {"wq_a", "q_a_proj"},
    {"q_norm", "q_a_layernorm"},
    {"wq_b", "q_b_proj"},
    {"wkv_a", "kv_a_proj_with_mqa"},
    {"kv_norm", "kv_a_layernorm"},
    {"wkv_b", "kv_b_proj"},
    {"wo", "o_proj"},
    {"gate", "gate"},
    {"w1", "gate_proj"},
    {"w2", "down_proj"},
    {"w3", "up_proj"},
    {"norm", "norm"},
    {"attn", "self_attn"},
    {"ffn", "mlp"},
    {"scale", "weight_scale_inv"},
    {"bias", "e_score_correction_bias"},
};

std::string_view checkpoint_component(std::string_view component) {
  for (const auto& [model_py, checkpoint] : kCheckpointNames)
    if (component == model_py) return checkpoint;
  return component;
}

// Converts a small stored vector to float32 (norm weights, biases).
std::vector<float> to_f32(const TensorRef& t) {
  std::vector<float> out(t.numel());
  for (size_t i = 0; i < out.size(); ++i) {
    switch (t.dtype) {
      case DType::F32: { float f; std::memcpy(&f, t.data + 4 * i, 4); out[i] = f; break; }
      case DType::BF16: { uint16_t h; std::memcpy(&h, t.data + 2 * i, 2); out[i] = bf16_to_f32(h); break; }
      case DType::F16: { uint16_t h; std::memcpy(&h, t.data + 2 * i, 2); out[i] = f16_to_f32(h); break; }
      default: out[i] = 0;
    }
  }
  return out;
}

bool dtype_ok(TensorRole role, DType t) {
  switch (role) {
    case TensorRole::Linear:
    case TensorRole::LinearBf16: return is_float_weight_dtype(t);
    case TensorRole::Embedding: return is_float_weight_dtype(t);
    case TensorRole::Norm:
    case TensorRole::RouterBias: return t == DType::F32 || t == DType::BF16 || t == DType::F16;
  }
  return false;
}

const char* role_dtypes(TensorRole role) {
  switch (role) {
    case TensorRole::Linear:
    case TensorRole::LinearBf16:
    case TensorRole::Embedding: return "F8_E4M3, BF16, F16 or F32";
    default: return "F32, BF16 or F16";
  }
}

}  // namespace

std::string checkpoint_name(std::string_view model_name) {
  std::string out;
  // convert.py maps the indexer's module names to themselves; only its string replacement of
  // weight_scale_inv by scale applies there.
  bool in_indexer = false;
  for (size_t begin = 0; begin <= model_name.size();) {
    const size_t end = std::min(model_name.find('.', begin), model_name.size());
    const std::string_view component = model_name.substr(begin, end - begin);
    if (begin == 0) {
      // Transformer.head is lm_head, the one tensor outside "model." (the MTP layer's
      // shared_head.head is not the first component and keeps its name).
      out = component == "head" ? "lm_head" : "model." + std::string(checkpoint_component(component));
    } else {
      out += '.';
      out += in_indexer && component != "scale" ? component : checkpoint_component(component);
      in_indexer = in_indexer || component == "indexer";
    }
    begin = end + 1;
  }
  return out;
}

WeightBinder::WeightBinder(const Checkpoint* checkpoint, const ModelConfig& config) : ck_(checkpoint), config_(config) {}

const TensorRef* WeightBinder::lookup(const std::string& name, const std::vector<int64_t>& shape, TensorRole role,
                                     const std::string& shares_with) {
  specs_.push_back({name, shape, role, mtp_, routed_expert_, shares_with});
  if (!ck_) return nullptr;
  const TensorRef* t = ck_->find(name);
  if (!t) {
    missing_.push_back(name);
    return nullptr;
  }
  used_.insert(name);
  if (!dtype_ok(role, t->dtype)) {
    problem(name, "tensor '" + name + "': dtype " + dtype_name(t->dtype) + " is not supported here (expected " +
            role_dtypes(role) + ")");
    return nullptr;
  }
  if (t->shape != shape) {
    problem(name, "tensor '" + name + "': shape " + shape_string(t->shape) + " does not match the config, expected " +
            shape_string(shape));
    return nullptr;
  }
  return t;
}

LinearWeight WeightBinder::linear(const std::string& module, int64_t rows, int64_t cols, TensorRole role,
                                  const std::string& shares_with) {
  LinearWeight w;
  w.rows = rows;
  w.cols = cols;
  const std::string wname = checkpoint_name(module + ".weight");
  const std::string sname = checkpoint_name(module + ".scale");
  const TensorRef* t =
      lookup(wname, {rows, cols}, role, shares_with.empty() ? "" : checkpoint_name(shares_with + ".weight"));
  if (!t) return w;
  w.dtype = t->dtype;
  w.data = t->data;
  if (t->dtype != DType::F8_E4M3) {
    if (ck_->find(sname)) used_.insert(sname);
    return w;
  }
  // FP8: block scales, block size from quantization_config (128x128 when the config has none).
  w.block_rows = config_.quantization_config ? config_.quantization_config->block_rows : 128;
  w.block_cols = config_.quantization_config ? config_.quantization_config->block_cols : 128;
  const TensorRef* s = ck_->find(sname);
  std::vector<int64_t> sshape = {(rows + w.block_rows - 1) / w.block_rows, (cols + w.block_cols - 1) / w.block_cols};
  if (!s) {
    problem(sname, "tensor '" + wname + "' is F8_E4M3 but '" + sname +
            "' is missing (FP8 weights need their block scales; is this a partial download?)");
    return w;
  }
  used_.insert(sname);
  if (s->dtype != DType::F32) {
    problem(sname, "tensor '" + sname + "': dtype " + dtype_name(s->dtype) + ", expected F32");
    return w;
  }
  if (s->shape != sshape) {
    problem(sname, "tensor '" + sname + "': shape " + shape_string(s->shape) + ", expected " + shape_string(sshape) +
            str_f(" for a [%lld, %lld] weight in %lldx%lld blocks", static_cast<long long>(rows),
                  static_cast<long long>(cols), static_cast<long long>(w.block_rows),
                  static_cast<long long>(w.block_cols)));
    return w;
  }
  // Scales must be finite and positive (a NaN, infinite, zero or negative scale corrupts
  // every value of its block): a cheap scan, 1/16384 of the weight bytes.
  const float* sc = reinterpret_cast<const float*>(s->data);
  for (uint64_t i = 0; i < s->numel(); ++i) {
    if (!std::isfinite(sc[i]) || sc[i] <= 0.0f) {
      problem(sname, "tensor '" + sname + str_f("': scale %g at index %llu is not a finite positive number", sc[i],
                                         static_cast<unsigned long long>(i)));
      return w;
    }
  }
  w.scale_inv = sc;
  return w;
}

std::vector<float> WeightBinder::norm(const std::string& module, int64_t dim) {
  return vector_f32(checkpoint_name(module + ".weight"), dim, TensorRole::Norm, 1.0f);
}

std::vector<float> WeightBinder::bias(const std::string& module, int64_t dim) {
  return vector_f32(checkpoint_name(module + ".bias"), dim, TensorRole::RouterBias, 0.0f);
}

std::vector<float> WeightBinder::layer_norm_bias(const std::string& module, int64_t dim) {
  return vector_f32(checkpoint_name(module + ".bias"), dim, TensorRole::Norm, 0.0f);
}

std::vector<float> WeightBinder::vector_f32(const std::string& name, int64_t dim, TensorRole role, float fallback) {
  const TensorRef* t = lookup(name, {dim}, role);
  if (!t) return std::vector<float>(static_cast<size_t>(dim), fallback);
  std::vector<float> v = to_f32(*t);
  for (size_t i = 0; i < v.size(); ++i)
    if (!std::isfinite(v[i])) {
      problem(name, "tensor '" + name + str_f("': value at index %zu is not finite", i));
      break;
    }
  return v;
}

Status WeightBinder::finish() const {
  if (missing_.empty() && problems_.empty()) return {};
  std::string msg;
  if (!missing_.empty()) {
    msg += str_f("%zu required tensor(s) missing: ", missing_.size());
    for (size_t i = 0; i < missing_.size() && i < 20; ++i) msg += (i ? ", " : "") + missing_[i];
    if (missing_.size() > 20) msg += str_f(", ... and %zu more", missing_.size() - 20);
  }
  for (size_t i = 0; i < problems_.size() && i < 20; ++i) msg += (msg.empty() ? "" : "; ") + problems_[i].message;
  if (problems_.size() > 20) msg += str_f("; ... and %zu more problems", problems_.size() - 20);
  return Error(msg);
}

namespace {

// Binding order is walk order: the order in which missing tensors are reported.
MlpWeights bind_mlp(WeightBinder& b, const std::string& module, int64_t dim, int64_t inter) {
  MlpWeights m;
  m.w1 = b.linear(module + ".w1", inter, dim);
  m.w3 = b.linear(module + ".w3", inter, dim);
  m.w2 = b.linear(module + ".w2", dim, inter);
  return m;
}

MlaWeights bind_mla(WeightBinder& b, const ModelConfig& c, const std::string& attn) {
  const int64_t dim = c.hidden_size, heads = c.num_attention_heads;
  MlaWeights a;
  if (c.has_q_lora()) {
    a.wq_a = b.linear(attn + ".wq_a", c.q_lora_rank, dim);
    a.q_norm = b.norm(attn + ".q_norm", c.q_lora_rank);
    a.wq_b = b.linear(attn + ".wq_b", heads * c.qk_head_dim(), c.q_lora_rank);
  } else {
    a.wq = b.linear(attn + ".wq", heads * c.qk_head_dim(), dim);
  }
  a.wkv_a = b.linear(attn + ".wkv_a", c.kv_lora_rank + c.qk_rope_head_dim, dim);
  a.kv_norm = b.norm(attn + ".kv_norm", c.kv_lora_rank);
  a.wkv_b = b.linear(attn + ".wkv_b", heads * (c.qk_nope_head_dim + c.v_head_dim), c.kv_lora_rank);
  a.wo = b.linear(attn + ".wo", dim, heads * c.v_head_dim);
  if (c.has_indexer()) {
    const std::string ix = attn + ".indexer";
    a.indexer.wq_b = b.linear(ix + ".wq_b", c.index_n_heads * c.index_head_dim, c.q_lora_rank);
    a.indexer.wk = b.linear(ix + ".wk", c.index_head_dim, dim);
    a.indexer.k_norm = b.norm(ix + ".k_norm", c.index_head_dim);
    a.indexer.k_norm_bias = b.layer_norm_bias(ix + ".k_norm", c.index_head_dim);
    a.indexer.weights_proj = b.linear(ix + ".weights_proj", c.index_n_heads, dim, TensorRole::LinearBf16);
  }
  return a;
}

MoeWeights bind_moe(WeightBinder& b, const ModelConfig& c, const std::string& ffn) {
  const int64_t dim = c.hidden_size;
  MoeWeights m;
  m.gate.weight = b.linear(ffn + ".gate", c.n_routed_experts, dim, TensorRole::LinearBf16);
  if (c.has_router_bias()) m.gate.bias = b.bias(ffn + ".gate", c.n_routed_experts);
  b.set_routed_expert(true);
  for (int64_t e = 0; e < c.n_routed_experts; ++e)
    m.experts.push_back(bind_mlp(b, ffn + ".experts." + std::to_string(e), dim, c.moe_intermediate_size));
  b.set_routed_expert(false);
  if (c.n_shared_experts > 0)
    m.shared_experts = bind_mlp(b, ffn + ".shared_experts", dim, c.moe_intermediate_size * c.n_shared_experts);
  return m;
}

BlockWeights bind_block(WeightBinder& b, const ModelConfig& c, int64_t i) {
  const std::string layer = "layers." + std::to_string(i);
  BlockWeights l;
  l.attn_norm = b.norm(layer + ".attn_norm", c.hidden_size);
  l.ffn_norm = b.norm(layer + ".ffn_norm", c.hidden_size);
  l.attn = bind_mla(b, c, layer + ".attn");
  if (c.is_moe_layer(i)) l.ffn = bind_moe(b, c, layer + ".ffn");
  else l.ffn = bind_mlp(b, layer + ".ffn", c.hidden_size, c.intermediate_size);
  return l;
}

MtpWeights bind_mtp(WeightBinder& b, const ModelConfig& c, int64_t i) {
  const std::string layer = "layers." + std::to_string(i);
  const int64_t dim = c.hidden_size;
  MtpWeights m;
  m.embed = b.linear(layer + ".embed", c.vocab_size, dim, TensorRole::Embedding, /*shares_with=*/"embed");
  m.enorm = b.norm(layer + ".enorm", dim);
  m.hnorm = b.norm(layer + ".hnorm", dim);
  m.eh_proj = b.linear(layer + ".eh_proj", dim, 2 * dim, TensorRole::LinearBf16);
  m.block = bind_block(b, c, i);
  m.shared_head.norm = b.norm(layer + ".shared_head.norm", dim);
  m.shared_head.head = b.linear(layer + ".shared_head.head", c.vocab_size, dim, TensorRole::Embedding,
                                /*shares_with=*/c.tie_word_embeddings ? "embed" : "head");
  return m;
}

}  // namespace

ModelWeights bind_model_weights(WeightBinder& b, const ModelConfig& c, bool with_mtp) {
  ModelWeights w;
  w.embed = b.linear("embed", c.vocab_size, c.hidden_size, TensorRole::Embedding);
  for (int64_t i = 0; i < c.num_hidden_layers; ++i) w.layers.push_back(bind_block(b, c, i));
  w.norm = b.norm("norm", c.hidden_size);
  w.head = c.tie_word_embeddings ? w.embed : b.linear("head", c.vocab_size, c.hidden_size, TensorRole::Embedding);
  if (with_mtp) {
    b.set_mtp(true);
    for (int64_t k = 0; k < c.num_nextn_predict_layers; ++k) w.mtp.push_back(bind_mtp(b, c, c.num_hidden_layers + k));
    b.set_mtp(false);
  }
  return w;
}

std::vector<TensorSpec> model_tensor_specs(const ModelConfig& config) {
  WeightBinder b(nullptr, config);
  bind_model_weights(b, config, /*with_mtp=*/true);
  return b.specs();
}

}  // namespace dsv3
