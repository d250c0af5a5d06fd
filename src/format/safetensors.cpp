#include "format/safetensors.h"

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>

#include "base/json.h"
#include "tensor/shape.h"

namespace dsv3 {

uint64_t TensorInfo::numel() const { return shape_numel(shape); }

namespace {

std::string short_name(const std::string& name) {
  std::string s = name.size() > 120 ? name.substr(0, 120) + "..." : name;
  if (find_invalid_utf8(s)) return "(non-UTF-8 name)";
  return s;
}

Result<TensorInfo> parse_entry(const std::string& name, const Json& v) {
  std::string where = "tensor '" + short_name(name) + "'";
  if (!v.is_object()) return Error(where + ": header entry is not an object");
  for (auto it = v.begin(); it != v.end(); ++it) {
    if (it.key() != "dtype" && it.key() != "shape" && it.key() != "data_offsets")
      return Error(where + ": unexpected field '" + short_name(it.key()) + "' in header entry");
  }
  TensorInfo t;
  t.name = name;
  auto dt = v.find("dtype");
  if (dt == v.end() || !dt->is_string()) return Error(where + ": missing or non-string 'dtype'");
  auto parsed = dtype_from_name(dt->get<std::string>());
  if (!parsed) return Error(where + ": unknown dtype " + json_snippet(*dt));
  t.dtype = *parsed;

  auto sh = v.find("shape");
  if (sh == v.end() || !sh->is_array()) return Error(where + ": missing or non-array 'shape'");
  for (const auto& d : *sh) {
    if (!d.is_number_unsigned() && !(d.is_number_integer() && d.get<int64_t>() >= 0))
      return Error(where + ": shape entry " + json_snippet(d) + " is not a non-negative integer");
    uint64_t u = d.get<uint64_t>();
    if (u > kMaxDimension) return Error(where + ": shape entry " + std::to_string(u) + " exceeds 2^48");
    t.shape.push_back(static_cast<int64_t>(u));
  }
  auto off = v.find("data_offsets");
  if (off == v.end() || !off->is_array() || off->size() != 2)
    return Error(where + ": 'data_offsets' must be an array of two integers");
  for (int i = 0; i < 2; ++i) {
    const auto& o = (*off)[i];
    if (!o.is_number_unsigned() && !(o.is_number_integer() && o.get<int64_t>() >= 0))
      return Error(where + ": data_offsets entry " + json_snippet(o) + " is not a non-negative integer");
  }
  t.begin = (*off)[0].get<uint64_t>();
  t.end = (*off)[1].get<uint64_t>();
  if (t.end < t.begin) return Error(where + ": invalid data_offsets (end before begin)");

  // Expected byte size, with overflow checks at every step: a shape such as [2, 2^63] must
  // fail here rather than wrap into a small size that passes the range checks.
  uint64_t numel = 1;
  for (int64_t d : t.shape) {
    if (__builtin_mul_overflow(numel, static_cast<uint64_t>(d), &numel))
      return Error(where + ": shape product overflows 64 bits");
  }
  uint64_t bytes;
  if (__builtin_mul_overflow(numel, static_cast<uint64_t>(dtype_size(t.dtype)), &bytes))
    return Error(where + ": byte size overflows 64 bits");
  if (t.end - t.begin != bytes)
    return Error(where + str_f(": data_offsets span %llu bytes but shape x dtype needs %llu",
                               static_cast<unsigned long long>(t.end - t.begin),
                               static_cast<unsigned long long>(bytes)));
  return t;
}

}  // namespace

Result<std::vector<TensorInfo>> SafetensorsFile::parse_header(const std::string& header, uint64_t data_size,
                                                              std::map<std::string, std::string>* metadata) {
  if (auto bad = find_invalid_utf8(header))
    return error_f("header is not valid UTF-8 (at byte offset %llu of the file)",
                   static_cast<unsigned long long>(*bad + 8));
  DSV3_ASSIGN(Json j, parse_json(header, "header (starts at byte offset 8)", JsonLimits{16, true}));
  if (!j.is_object()) return Error("header is not a JSON object");
  std::vector<TensorInfo> tensors;
  tensors.reserve(j.size());
  for (auto it = j.begin(); it != j.end(); ++it) {
    if (it.key() == "__metadata__") {
      if (!it->is_object()) return Error("'__metadata__' is not an object");
      for (auto m = it->begin(); m != it->end(); ++m) {
        if (!m->is_string()) return Error("'__metadata__' value for '" + short_name(m.key()) + "' is not a string");
        if (metadata) (*metadata)[m.key()] = m->get<std::string>();
      }
      continue;
    }
    DSV3_ASSIGN(TensorInfo t, parse_entry(it.key(), *it));
    tensors.push_back(std::move(t));
  }
  // The byte ranges must tile [0, data_size) exactly: no gap (nothing hidden between
  // tensors), no overlap (no two tensors aliasing the same bytes), nothing past the end and
  // no trailing bytes. Zero-size tensors may share an offset with a neighbour.
  std::vector<const TensorInfo*> order;
  order.reserve(tensors.size());
  for (const auto& t : tensors) order.push_back(&t);
  std::sort(order.begin(), order.end(), [](const TensorInfo* a, const TensorInfo* b) {
    return a->begin != b->begin ? a->begin < b->begin : a->end < b->end;
  });
  uint64_t cursor = 0;
  for (const TensorInfo* t : order) {
    if (t->begin > cursor)
      return error_f("tensor '%s': gap in the data area (bytes %llu..%llu belong to no tensor)",
                     short_name(t->name).c_str(), static_cast<unsigned long long>(cursor),
                     static_cast<unsigned long long>(t->begin));
    if (t->begin < cursor && t->end > t->begin)
      return error_f("tensor '%s': byte range [%llu, %llu) overlaps the previous tensor", short_name(t->name).c_str(),
                     static_cast<unsigned long long>(t->begin), static_cast<unsigned long long>(t->end));
    cursor = std::max(cursor, t->end);
  }
  if (cursor > data_size)
    return error_f("tensor data ends at byte %llu of the data area but the file holds only %llu bytes of data "
                   "(truncated file?)",
                   static_cast<unsigned long long>(cursor), static_cast<unsigned long long>(data_size));
  if (cursor < data_size)
    return error_f("%llu trailing bytes after the last tensor (data area is %llu bytes, tensors end at %llu)",
                   static_cast<unsigned long long>(data_size - cursor), static_cast<unsigned long long>(data_size),
                   static_cast<unsigned long long>(cursor));
  return tensors;
}

Result<std::unique_ptr<SafetensorsFile>> SafetensorsFile::open(const std::string& path, FileLoad load) {
  DSV3_ASSIGN(auto file, MappedFile::open(path, load));
  auto st = std::unique_ptr<SafetensorsFile>(new SafetensorsFile());
  const uint64_t size = file->size();
  if (size >= 7 && std::memcmp(file->data(), "version", 7) == 0)
    return error_f("'%s' looks like a git-lfs pointer, not safetensors (fetch the real file with 'git lfs pull')",
                   path.c_str());
  if (size < 8) return error_f("header too small: '%s' has %llu bytes", path.c_str(), static_cast<unsigned long long>(size));
  uint64_t n = 0;
  for (int i = 7; i >= 0; --i) n = (n << 8) | file->data()[i];
  if (n > kMaxSafetensorsHeader)
    return error_f("'%s': header length %llu exceeds the 100 MB limit (HeaderTooLarge)", path.c_str(),
                   static_cast<unsigned long long>(n));
  if (n > size - 8)
    return error_f("'%s': header length %llu runs past the end of the %llu-byte file (InvalidHeaderLength)",
                   path.c_str(), static_cast<unsigned long long>(n), static_cast<unsigned long long>(size));
  std::string header(reinterpret_cast<const char*>(file->data()) + 8, n);
  auto tensors = parse_header(header, size - 8 - n, &st->metadata_);
  if (!tensors.ok()) return std::move(tensors).error().context("'" + path + "'");
  st->tensors_ = std::move(tensors).value();
  for (size_t i = 0; i < st->tensors_.size(); ++i) st->by_name_[st->tensors_[i].name] = i;
  st->data_start_ = 8 + n;
  st->file_ = std::move(file);
  return st;
}

const TensorInfo* SafetensorsFile::find(const std::string& name) const {
  auto it = by_name_.find(name);
  return it == by_name_.end() ? nullptr : &tensors_[it->second];
}

std::string make_safetensors_header(const std::vector<TensorToWrite>& tensors,
                                    const std::map<std::string, std::string>& metadata,
                                    std::vector<uint64_t>* offsets) {
  // Keys are written in the order given; callers sort them.
  nlohmann::ordered_json h = nlohmann::ordered_json::object();
  if (!metadata.empty()) {
    nlohmann::ordered_json m = nlohmann::ordered_json::object();
    for (const auto& [k, v] : metadata) m[k] = v;
    h["__metadata__"] = m;
  }
  uint64_t off = 0;
  offsets->clear();
  for (const auto& t : tensors) {
    uint64_t bytes = shape_numel(t.shape) * static_cast<uint64_t>(dtype_size(t.dtype));
    nlohmann::ordered_json e = nlohmann::ordered_json::object();
    e["dtype"] = dtype_name(t.dtype);
    e["shape"] = t.shape;
    e["data_offsets"] = {off, off + bytes};
    h[t.name] = e;
    offsets->push_back(off);
    off += bytes;
  }
  offsets->push_back(off);
  std::string s = h.dump();
  s.append((8 - s.size() % 8) % 8, ' ');
  return s;
}

Status write_safetensors_file(const std::string& path, const std::vector<TensorData>& tensors,
                              const std::map<std::string, std::string>& metadata) {
  std::vector<TensorToWrite> infos;
  for (const auto& t : tensors) infos.push_back(t.info);
  std::vector<uint64_t> offsets;
  std::string header = make_safetensors_header(infos, metadata, &offsets);
  std::string tmp = path + ".tmp";
  FILE* f = std::fopen(tmp.c_str(), "wb");
  if (!f) return error_f("cannot create '%s': %s", tmp.c_str(), std::strerror(errno));
  uint8_t len[8];
  for (int i = 0; i < 8; ++i) len[i] = static_cast<uint8_t>((header.size() >> (8 * i)) & 0xFF);
  bool ok = std::fwrite(len, 1, 8, f) == 8 && std::fwrite(header.data(), 1, header.size(), f) == header.size();
  for (size_t i = 0; ok && i < tensors.size(); ++i) {
    size_t n = offsets[i + 1] - offsets[i];
    ok = n == 0 || std::fwrite(tensors[i].data, 1, n, f) == n;
  }
  int saved = errno;
  if (std::fclose(f) != 0 && ok) {
    ok = false;
    saved = errno;
  }
  if (!ok) {
    std::remove(tmp.c_str());
    return error_f("write to '%s' failed: %s", path.c_str(), std::strerror(saved));
  }
  if (std::rename(tmp.c_str(), path.c_str()) != 0)
    return error_f("rename to '%s' failed: %s", path.c_str(), std::strerror(errno));
  return {};
}

}  // namespace dsv3
