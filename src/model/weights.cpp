#include "model/weights.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <utility>

#include <sys/mman.h>
#include <unistd.h>

#include "base/mapped_file.h"
#include "base/thread_pool.h"
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
    case TensorRole::LinearBf16:
    case TensorRole::Embedding: return is_float_weight_dtype(t) || t == DType::I8 || t == DType::U8;
    case TensorRole::Norm:
    case TensorRole::RouterBias: return t == DType::F32 || t == DType::BF16 || t == DType::F16;
  }
  return false;
}

const char* role_dtypes(TensorRole role) {
  switch (role) {
    case TensorRole::Linear:
    case TensorRole::LinearBf16:
    case TensorRole::Embedding: return "F8_E4M3, BF16, F16, F32, or I8 / U8 (dsv3_int int8 / int4)";
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
  // A packed int4 tensor (U8) stores ceil(cols / 2) bytes per row.
  const TensorRef* peek = ck_ ? ck_->find(wname) : nullptr;
  const int64_t stored_cols = peek && peek->dtype == DType::U8 ? (cols + 1) / 2 : cols;
  const TensorRef* t =
      lookup(wname, {rows, stored_cols}, role, shares_with.empty() ? "" : checkpoint_name(shares_with + ".weight"));
  if (!t) return w;
  w.dtype = t->dtype;
  w.data = t->data;
  if (t->dtype == DType::I8 || t->dtype == DType::U8) {
    bind_group_scales(wname, w);
    return w;
  }
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

void WeightBinder::bind_group_scales(const std::string& wname, LinearWeight& w) {
  const std::string sname = wname + "_scale";
  const char* kind = w.is_int4() ? "U8 (int4)" : "I8 (int8)";
  const QuantizationConfig* q = config_.quantization_config ? &*config_.quantization_config : nullptr;
  if (!q || q->group_size <= 0) {
    problem(wname, "tensor '" + wname + "' is " + kind +
            " but config.json has no quantization_config with quant_method dsv3_int and a group_size");
    return;
  }
  w.group_size = q->group_size;
  const std::vector<int64_t> sshape = {w.rows, w.groups_per_row()};
  const TensorRef* s = ck_->find(sname);
  if (!s) {
    problem(sname, "tensor '" + wname + "' is " + kind + " but its scales '" + sname + "' are missing");
    return;
  }
  used_.insert(sname);
  if (s->dtype != DType::F16 || s->shape != sshape) {
    problem(sname, "tensor '" + sname + "': " + dtype_name(s->dtype) + " " + shape_string(s->shape) +
            ", expected F16 " + shape_string(sshape) + str_f(" (group_size %lld)", static_cast<long long>(w.group_size)));
    return;
  }
  // A NaN, infinite or negative scale corrupts its whole group: a cheap scan, 1/group_size of
  // the values.
  const auto* sc = reinterpret_cast<const uint16_t*>(s->data);
  for (uint64_t i = 0; i < s->numel(); ++i) {
    const float v = f16_to_f32(sc[i]);
    if (!std::isfinite(v) || v < 0.0f) {
      problem(sname, "tensor '" + sname + str_f("': scale %g at index %llu is not a finite number >= 0", v,
                                         static_cast<unsigned long long>(i)));
      return;
    }
  }
  w.group_scales = sc;
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
// What the walk binds with: the binder, the config, this rank's share and where copied
// column slices live.
struct BindContext {
  WeightBinder& b;
  const ModelConfig& c;
  const Partition& part;
  SliceStore& store;
};

// Drops the pages wholly inside [p, p + bytes) of a read-only file mapping from the resident set
// (they are read again from the file if touched).
void release_pages(const void* p, uint64_t bytes) {
  const uint64_t page = static_cast<uint64_t>(::sysconf(_SC_PAGESIZE));
  const uint64_t begin = (reinterpret_cast<uint64_t>(p) + page - 1) / page * page;
  const uint64_t end = (reinterpret_cast<uint64_t>(p) + bytes) / page * page;
  if (end > begin) ::madvise(reinterpret_cast<void*>(begin), end - begin, MADV_DONTNEED);
}

// A ColumnParallelLinear's share: rows [rows.begin, rows.end) of the stored weight, a view.
LinearWeight row_share(const LinearWeight& full, Range rows) {
  if (rows.begin == 0 && rows.end == full.rows) return full;
  if (!full.data) {
    LinearWeight w = full;
    w.rows = rows.size();
    return w;
  }
  return full.row_band(rows.begin, rows.size());
}

// A RowParallelLinear's share: columns [cols.begin, cols.end) of every row, copied out of the
// mapping (kernels read rows of `cols` contiguous elements), reading only those bytes. FP8 stays
// FP8 with its scale columns when the slice starts on a block boundary; otherwise (a small model
// whose heads are narrower than a block) it is dequantized to F32, exactly.
LinearWeight column_share(const LinearWeight& full, Range cols, SliceStore& store) {
  if (cols.begin == 0 && cols.end == full.cols) return full;
  LinearWeight w = full;
  w.cols = cols.size();
  w.first_row = 0;
  if (!full.data || (full.is_fp8() && !full.scale_inv)) return w;  // a defect the binder reports
  const int64_t rows = full.rows, n = cols.size();
  const bool fp8_blocks = full.is_fp8() && cols.begin % full.block_cols == 0;
  if (store.plan_only) {
    w.data = nullptr;
    if (full.is_fp8() && !fp8_blocks) w.dtype = DType::F32;
    store.bytes += w.bytes();
    return w;
  }
  // The stored tensor is not used past this copy: its pages leave this rank's resident set
  // (those wholly inside it; an edge page may hold a neighbour this rank reads).
  struct ReleaseAfterCopy {
    const LinearWeight& full;
    ~ReleaseAfterCopy() { release_pages(full.row_ptr(0), static_cast<uint64_t>(full.rows) * full.cols * dtype_size(full.dtype)); }
  } release{full};
  if (full.is_fp8() && !fp8_blocks) {
    float* out = store.allocate(static_cast<size_t>(rows * n));
    for (int64_t r = 0; r < rows; ++r)
      for (int64_t k = 0; k < n; ++k) out[r * n + k] = full.at(r, cols.begin + k);
    w.dtype = DType::F32;
    w.data = out;
    w.scale_inv = nullptr;
    w.block_rows = w.block_cols = 0;
    return w;
  }
  const size_t elem = dtype_size(full.dtype), row_bytes = static_cast<size_t>(n) * elem;
  auto* out = reinterpret_cast<uint8_t*>(store.allocate((rows * row_bytes + 3) / 4));
  for (int64_t r = 0; r < rows; ++r) std::memcpy(out + r * row_bytes, full.row_ptr(r) + cols.begin * elem, row_bytes);
  w.data = out;
  if (fp8_blocks) {
    // Scale columns of the blocks the slice covers, for every block row.
    const int64_t c0 = cols.begin / full.block_cols, sc = w.scale_cols(), block_rows = (rows + full.block_rows - 1) / full.block_rows;
    float* scales = store.allocate(static_cast<size_t>(block_rows * sc));
    for (int64_t br = 0; br < block_rows; ++br)
      std::memcpy(scales + br * sc, full.row_scales(br * full.block_rows) + c0, sizeof(float) * sc);
    w.scale_inv = scales;
  }
  return w;
}

// model.py MLP (or Expert) on this rank: w1, w3 ColumnParallel, w2 RowParallel over `inter`.
// An expert (the whole of `inter`) is not split.
MlpWeights bind_mlp(BindContext& x, const std::string& module, int64_t dim, int64_t inter, Range share) {
  MlpWeights m;
  m.w1 = row_share(x.b.linear(module + ".w1", inter, dim), share);
  m.w3 = row_share(x.b.linear(module + ".w3", inter, dim), share);
  m.w2 = column_share(x.b.linear(module + ".w2", dim, inter), share, x.store);
  return m;
}

MlaWeights bind_mla(BindContext& x, const std::string& attn) {
  const ModelConfig& c = x.c;
  WeightBinder& b = x.b;
  const int64_t dim = c.hidden_size, heads = c.num_attention_heads;
  const Range h = x.part.heads;
  auto head_rows = [&](int64_t per_head) { return Range{h.begin * per_head, h.end * per_head}; };
  MlaWeights a;
  if (c.has_q_lora()) {
    a.wq_a = b.linear(attn + ".wq_a", c.q_lora_rank, dim);
    a.q_norm = b.norm(attn + ".q_norm", c.q_lora_rank);
    a.wq_b = row_share(b.linear(attn + ".wq_b", heads * c.qk_head_dim(), c.q_lora_rank), head_rows(c.qk_head_dim()));
  } else {
    a.wq = row_share(b.linear(attn + ".wq", heads * c.qk_head_dim(), dim), head_rows(c.qk_head_dim()));
  }
  a.wkv_a = b.linear(attn + ".wkv_a", c.kv_lora_rank + c.qk_rope_head_dim, dim);
  a.kv_norm = b.norm(attn + ".kv_norm", c.kv_lora_rank);
  const int64_t kv_per_head = c.qk_nope_head_dim + c.v_head_dim;
  a.wkv_b = row_share(b.linear(attn + ".wkv_b", heads * kv_per_head, c.kv_lora_rank), head_rows(kv_per_head));
  a.wo = column_share(b.linear(attn + ".wo", dim, heads * c.v_head_dim), head_rows(c.v_head_dim), x.store);
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

MoeWeights bind_moe(BindContext& x, const std::string& ffn) {
  const ModelConfig& c = x.c;
  WeightBinder& b = x.b;
  const int64_t dim = c.hidden_size;
  MoeWeights m;
  m.gate.weight = b.linear(ffn + ".gate", c.n_routed_experts, dim, TensorRole::LinearBf16);
  if (c.has_router_bias()) m.gate.bias = b.bias(ffn + ".gate", c.n_routed_experts);
  // Routed experts: only this rank's are bound (the others' tensors are never looked up, so
  // their pages are never touched); the list keeps global indices.
  b.set_routed_expert(true);
  m.experts.resize(static_cast<size_t>(c.n_routed_experts));
  for (int64_t e = x.part.experts.begin; e < x.part.experts.end; ++e)
    m.experts[e] = bind_mlp(x, ffn + ".experts." + std::to_string(e), dim, c.moe_intermediate_size,
                            {0, c.moe_intermediate_size});
  b.set_routed_expert(false);
  if (c.n_shared_experts > 0)
    m.shared_experts =
        bind_mlp(x, ffn + ".shared_experts", dim, c.moe_intermediate_size * c.n_shared_experts, x.part.shared_inter);
  return m;
}

BlockWeights bind_block(BindContext& x, int64_t i) {
  const ModelConfig& c = x.c;
  WeightBinder& b = x.b;
  const std::string layer = "layers." + std::to_string(i);
  BlockWeights l;
  l.attn_norm = b.norm(layer + ".attn_norm", c.hidden_size);
  l.ffn_norm = b.norm(layer + ".ffn_norm", c.hidden_size);
  l.attn = bind_mla(x, layer + ".attn");
  if (c.is_moe_layer(i)) l.ffn = bind_moe(x, layer + ".ffn");
  else l.ffn = bind_mlp(x, layer + ".ffn", c.hidden_size, c.intermediate_size, x.part.dense_inter);
  return l;
}

// ParallelEmbedding / the vocabulary-parallel head: this rank's rows of a [vocab, dim] table.
LinearWeight bind_vocab_rows(BindContext& x, const std::string& module, const std::string& shares_with) {
  return row_share(x.b.linear(module, x.c.vocab_size, x.c.hidden_size, TensorRole::Embedding, shares_with),
                   x.part.vocab);
}

MtpWeights bind_mtp(BindContext& x, int64_t i) {
  const ModelConfig& c = x.c;
  WeightBinder& b = x.b;
  const std::string layer = "layers." + std::to_string(i);
  const int64_t dim = c.hidden_size;
  MtpWeights m;
  m.embed = bind_vocab_rows(x, layer + ".embed", /*shares_with=*/"embed");
  m.enorm = b.norm(layer + ".enorm", dim);
  m.hnorm = b.norm(layer + ".hnorm", dim);
  m.eh_proj = b.linear(layer + ".eh_proj", dim, 2 * dim, TensorRole::LinearBf16);
  m.block = bind_block(x, i);
  m.shared_head.norm = b.norm(layer + ".shared_head.norm", dim);
  m.shared_head.head = bind_vocab_rows(x, layer + ".shared_head.head", /*shares_with=*/c.tie_word_embeddings ? "embed" : "head");
  return m;
}

}  // namespace

float* SliceStore::allocate(size_t floats) {
  buffers.push_back(std::make_unique<float[]>(std::max<size_t>(floats, 1)));
  bytes += floats * sizeof(float);
  return buffers.back().get();
}

ModelWeights bind_model_weights(WeightBinder& b, const ModelConfig& c, bool with_mtp, const Partition* partition,
                                bool plan_only) {
  ModelWeights w;
  w.slices.plan_only = plan_only;
  const Partition whole = whole_model(c);
  BindContext x{b, c, partition ? *partition : whole, w.slices};
  w.embed = bind_vocab_rows(x, "embed", "");
  for (int64_t i = 0; i < c.num_hidden_layers; ++i) w.layers.push_back(bind_block(x, i));
  w.norm = b.norm("norm", c.hidden_size);
  w.head = c.tie_word_embeddings ? w.embed : bind_vocab_rows(x, "head", "");
  if (with_mtp) {
    b.set_mtp(true);
    for (int64_t k = 0; k < c.num_nextn_predict_layers; ++k) w.mtp.push_back(bind_mtp(x, c.num_hidden_layers + k));
    b.set_mtp(false);
  }
  return w;
}

void for_each_linear(const ModelWeights& w, const std::function<void(const LinearWeight&)>& fn) {
  std::set<std::pair<const void*, int64_t>> seen;  // (tensor, first row): shared views once
  auto visit = [&](const LinearWeight& l) {
    if (l.rows == 0 || l.cols == 0) return;
    if (l.data && !seen.insert({l.data, l.first_row}).second) return;
    fn(l);
  };
  auto mlp = [&](const MlpWeights& m) { visit(m.w1), visit(m.w2), visit(m.w3); };
  auto block = [&](const BlockWeights& b) {
    for (const LinearWeight* l : {&b.attn.wq, &b.attn.wq_a, &b.attn.wq_b, &b.attn.wkv_a, &b.attn.wkv_b, &b.attn.wo}) visit(*l);
    if (const MoeWeights* moe = std::get_if<MoeWeights>(&b.ffn)) {
      visit(moe->gate.weight);
      for (const MlpWeights& e : moe->experts) mlp(e);
      if (moe->shared_experts) mlp(*moe->shared_experts);
    } else {
      mlp(std::get<MlpWeights>(b.ffn));
    }
  };
  visit(w.embed);
  for (const BlockWeights& b : w.layers) block(b);
  visit(w.head);
  for (const MtpWeights& m : w.mtp) {
    visit(m.embed), visit(m.eh_proj), block(m.block), visit(m.shared_head.head);
  }
}

namespace {

// Where a weight's values lie in memory (its scales, a small separate array, not included).
std::pair<const uint8_t*, uint64_t> value_bytes(const LinearWeight& l) {
  return {l.row_ptr(0), static_cast<uint64_t>(l.rows) * static_cast<uint64_t>(l.row_bytes())};
}

}  // namespace

void prefault_weights(const ModelWeights& weights, ThreadPool& pool) {
  // Byte ranges of the weights, cut into pieces of at most kPiece for the threads to share.
  constexpr uint64_t kPiece = uint64_t{64} << 20;
  std::vector<std::pair<const uint8_t*, uint64_t>> pieces;
  for_each_linear(weights, [&](const LinearWeight& l) {
    if (!l.data) return;
    const auto [p, bytes] = value_bytes(l);
    for (uint64_t off = 0; off < bytes; off += kPiece) pieces.emplace_back(p + off, std::min(kPiece, bytes - off));
  });
  pool.parallel_for(static_cast<int64_t>(pieces.size()),
                    [&](int64_t i) { prefault_pages(pieces[static_cast<size_t>(i)].first, pieces[static_cast<size_t>(i)].second); });
}

Result<uint64_t> lock_weights(const ModelWeights& weights) {
  uint64_t locked = 0;
  Status status = ok_status();
  for_each_linear(weights, [&](const LinearWeight& l) {
    if (!l.data || !status.ok()) return;
    const auto [p, bytes] = value_bytes(l);
    status = lock_pages(p, bytes);
    if (status.ok()) locked += bytes;
  });
  if (!status.ok())
    return std::move(status).error().context("after " + std::to_string(locked >> 20) + " MB of weights locked");
  return locked;
}

std::vector<TensorSpec> model_tensor_specs(const ModelConfig& config) {
  WeightBinder b(nullptr, config);
  bind_model_weights(b, config, /*with_mtp=*/true);
  return b.specs();
}

}  // namespace dsv3
