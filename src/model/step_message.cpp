#include "model/step_message.h"

#include <cstring>
#include <type_traits>

#include "model/model.h"

namespace dsv3 {
namespace {

class Writer {
 public:
  template <typename T>
  void put(const T& v) {
    static_assert(std::is_trivially_copyable_v<T>);
    const auto* p = reinterpret_cast<const uint8_t*>(&v);
    out.insert(out.end(), p, p + sizeof(T));
  }
  template <typename T>
  void put_array(const std::vector<T>& v) {
    put<uint64_t>(v.size());
    const auto* p = reinterpret_cast<const uint8_t*>(v.data());
    out.insert(out.end(), p, p + v.size() * sizeof(T));
  }
  std::vector<uint8_t> out;
};

class Reader {
 public:
  explicit Reader(std::span<const uint8_t> in) : in_(in) {}
  template <typename T>
  bool get(T* v) {
    if (in_.size() - pos_ < sizeof(T)) return false;
    std::memcpy(v, in_.data() + pos_, sizeof(T));
    pos_ += sizeof(T);
    return true;
  }
  template <typename T>
  bool get_array(std::vector<T>* v) {
    uint64_t n = 0;
    if (!get(&n) || n > (in_.size() - pos_) / sizeof(T)) return false;
    v->resize(n);
    std::memcpy(v->data(), in_.data() + pos_, n * sizeof(T));
    pos_ += n * sizeof(T);
    return true;
  }
  bool done() const { return pos_ == in_.size(); }

 private:
  std::span<const uint8_t> in_;
  size_t pos_ = 0;
};

}  // namespace

std::vector<uint8_t> encode_step(const StepMessage& m) {
  Writer w;
  w.put(m.kind);
  w.put_array(m.released);
  w.put<uint64_t>(m.segments.size());
  for (const StepSegment& s : m.segments) {
    w.put(s.cache);
    w.put(s.first_position);
    w.put_array(s.tokens);
    w.put(s.logits);
  }
  w.put_array(m.hidden);
  w.put(m.want_hidden);
  w.put_array(std::vector<char>(m.dir.begin(), m.dir.end()));
  w.put(m.threads);
  w.put(m.load_mtp);
  w.put(m.attention);
  w.put(m.max_context);
  w.put(m.prefault);
  w.put(m.lock_memory);
  w.put(m.read_into_memory);
  w.put(m.isa);
  w.put(m.math);
  w.put(m.amx);
  return std::move(w.out);
}

Result<StepMessage> decode_step(std::span<const uint8_t> bytes) {
  Reader r(bytes);
  StepMessage m;
  uint64_t segments = 0;
  bool ok = r.get(&m.kind) && r.get_array(&m.released) && r.get(&segments) && segments <= bytes.size();
  for (uint64_t i = 0; ok && i < segments; ++i) {
    StepSegment& s = m.segments.emplace_back();
    ok = r.get(&s.cache) && r.get(&s.first_position) && r.get_array(&s.tokens) && r.get(&s.logits);
  }
  std::vector<char> dir;
  ok = ok && r.get_array(&m.hidden) && r.get(&m.want_hidden) && r.get_array(&dir) && r.get(&m.threads) &&
       r.get(&m.load_mtp) && r.get(&m.attention) && r.get(&m.max_context) && r.get(&m.prefault) && r.get(&m.lock_memory) && r.get(&m.read_into_memory) && r.get(&m.isa) && r.get(&m.math) && r.get(&m.amx) && r.done();
  if (!ok || m.kind > StepKind::Quit)
    return error_f("malformed step message from rank 0 (%zu bytes): are all ranks the same dsv3 build?", bytes.size());
  m.dir.assign(dir.begin(), dir.end());
  return m;
}

namespace {

template <typename T>
int8_t optional_code(const std::optional<T>& v) {
  return v ? static_cast<int8_t>(*v) : int8_t{-1};
}

template <typename T>
std::optional<T> from_code(int8_t code) {
  if (code < 0) return std::nullopt;
  return static_cast<T>(code);
}

}  // namespace

StepMessage load_step(const std::string& dir, const ModelOptions& options) {
  StepMessage load;
  load.kind = StepKind::Load;
  load.dir = dir;
  load.threads = options.threads;
  load.load_mtp = options.load_mtp;
  load.attention = static_cast<uint8_t>(options.attention);
  load.max_context = options.max_context;
  load.prefault = options.prefault;
  load.lock_memory = options.lock_memory;
  load.read_into_memory = options.read_into_memory;
  load.isa = optional_code(options.kernels.isa);
  load.math = optional_code(options.kernels.math);
  load.amx = optional_code(options.kernels.amx);
  return load;
}

ModelOptions load_options(const StepMessage& load) {
  ModelOptions options;
  options.threads = load.threads;
  options.load_mtp = load.load_mtp;
  options.attention = static_cast<AttentionImpl>(load.attention);
  options.max_context = load.max_context;
  options.prefault = load.prefault;
  options.lock_memory = load.lock_memory;
  options.read_into_memory = load.read_into_memory;
  options.kernels.isa = from_code<kernels::Isa>(load.isa);
  options.kernels.math = from_code<kernels::MatmulMath>(load.math);
  options.kernels.amx = from_code<kernels::AmxMode>(load.amx);
  return options;
}

}  // namespace dsv3
