#include "format/checkpoint.h"

#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <climits>
#include <cstdlib>
#include <cstring>

#include "base/json.h"
#include "base/log.h"
#include "tensor/shape.h"

namespace dsv3 {

uint64_t TensorRef::numel() const { return shape_numel(shape); }

namespace {

bool file_exists(const std::string& p) {
  struct stat st {};
  return ::stat(p.c_str(), &st) == 0;
}

std::string real_path(const std::string& p) {
  char buf[PATH_MAX];
  if (!::realpath(p.c_str(), buf)) return {};
  return buf;
}

bool is_within(const std::string& path, const std::string& root) {
  return path.size() > root.size() && path.compare(0, root.size(), root) == 0 && path[root.size()] == '/';
}

std::string bounded(const std::string& s) {
  std::string t = s.size() > 100 ? s.substr(0, 100) + "..." : s;
  if (find_invalid_utf8(t)) return "(non-UTF-8 name)";
  for (char& c : t)
    if (static_cast<unsigned char>(c) < 0x20) c = '?';
  return t;
}

}  // namespace

Status check_shard_path(const std::string& dir, const std::string& file) {
  auto escape = [&](const char* why) {
    return error_f("shard path '%s' escapes model directory (%s)", bounded(file).c_str(), why);
  };
  if (file.empty()) return escape("empty name");
  if (file.find('\0') != std::string::npos) return escape("NUL byte");
  if (file.find('\\') != std::string::npos) return escape("backslash");
  if (file[0] == '/') return escape("absolute path");
  size_t start = 0;
  while (start <= file.size()) {
    size_t slash = file.find('/', start);
    std::string part = file.substr(start, slash == std::string::npos ? std::string::npos : slash - start);
    if (part == "..") return escape("'..' component");
    if (slash == std::string::npos) break;
    start = slash + 1;
  }
  std::string full = dir + "/" + file;
  std::string root = real_path(dir);
  std::string target = real_path(full);
  if (root.empty() || target.empty()) return ok_status();  // missing file: reported by the opener
  if (is_within(target, root)) return ok_status();
  // HuggingFace hub cache: <repo>/snapshots/<rev>/<file> -> <repo>/blobs/<sha>.
  std::string parent = real_path(root + "/..");
  std::string repo = real_path(root + "/../..");
  if (!parent.empty() && !repo.empty() && parent.size() > 10 &&
      parent.compare(parent.size() - 10, 10, "/snapshots") == 0 && is_within(target, repo + "/blobs"))
    return ok_status();
  return escape("symlink target outside the directory");
}

Result<std::unique_ptr<Checkpoint>> Checkpoint::open(const std::string& dir, ShardOpening opening, FileLoad load) {
  auto ck = std::unique_ptr<Checkpoint>(new Checkpoint());
  ck->dir_ = dir;
  ck->load_ = load;
  struct stat st {};
  if (::stat(dir.c_str(), &st) != 0) return error_f("model directory '%s': %s", dir.c_str(), std::strerror(errno));
  if (!S_ISDIR(st.st_mode)) return error_f("model path '%s' is not a directory", dir.c_str());

  std::string index_path = dir + "/model.safetensors.index.json";
  ck->have_index_ = file_exists(index_path);
  uint64_t declared_total = 0;
  bool have_total = false;
  if (ck->have_index_) {
    DSV3_ASSIGN(std::string text, read_text_file(index_path, 256ull << 20));
    DSV3_ASSIGN(Json index, parse_json(text, index_path));
    if (!index.is_object()) return error_f("%s: not a JSON object", index_path.c_str());
    auto wm = index.find("weight_map");
    if (wm == index.end() || !wm->is_object()) return error_f("%s: missing object 'weight_map'", index_path.c_str());
    std::map<std::string, size_t> shard_number;
    for (auto it = wm->begin(); it != wm->end(); ++it) {
      if (!it->is_string())
        return error_f("%s: weight_map entry for '%s' is not a string", index_path.c_str(), bounded(it.key()).c_str());
      std::string f = it->get<std::string>();
      auto ok = check_shard_path(dir, f);
      if (!ok.ok()) return std::move(ok).error().context(index_path);
      auto [pos, added] = shard_number.emplace(f, ck->shard_files_.size());
      if (added) {
        ck->shard_files_.push_back(f);
        ck->indexed_.emplace_back();
      }
      ck->shard_of_[it.key()] = pos->second;
      ck->indexed_[pos->second].push_back(it.key());
    }
    if (auto md = index.find("metadata"); md != index.end() && md->is_object()) {
      if (auto ts = md->find("total_size"); ts != md->end() && ts->is_number_unsigned()) {
        declared_total = ts->get<uint64_t>();
        have_total = true;
      }
    }
  } else if (file_exists(dir + "/model.safetensors")) {
    ck->shard_files_.push_back("model.safetensors");
    ck->indexed_.emplace_back();
  } else {
    return error_f("model directory '%s' has neither model.safetensors.index.json nor model.safetensors", dir.c_str());
  }
  ck->shards_.resize(ck->shard_files_.size());

  // Without an index there is no telling where a tensor is: the one file opens now.
  if (opening == ShardOpening::OnFirstUse && ck->have_index_) return ck;
  for (size_t s = 0; s < ck->shard_files_.size(); ++s) DSV3_TRY(ck->open_shard(s));
  if (ck->have_index_ && have_total) {
    uint64_t tensor_bytes = 0;
    for (const auto& [name, t] : ck->tensors_) tensor_bytes += t.nbytes;
    if (declared_total != tensor_bytes)
      DSV3_LOG_WARN("%s: metadata.total_size is %llu but the shards hold %llu bytes of tensors", index_path.c_str(),
                    static_cast<unsigned long long>(declared_total), static_cast<unsigned long long>(tensor_bytes));
  }
  return ck;
}

Status Checkpoint::open_shard(size_t s) const {
  const std::string& file = shard_files_[s];
  DSV3_ASSIGN(auto shard, SafetensorsFile::open(dir_ + "/" + file, load_));
  // Checked whole before any of it is added: a shard that fails leaves no tensor behind.
  std::map<std::string, TensorRef> found;
  std::vector<std::unique_ptr<uint8_t[], AlignedDelete>> copies;
  uint64_t copied = 0;
  for (const TensorInfo& t : shard->tensors()) {
    if (have_index_) {
      auto it = shard_of_.find(t.name);
      if (it == shard_of_.end()) {
        DSV3_LOG_WARN("tensor '%s' in %s is not listed in the index; ignored", bounded(t.name).c_str(), file.c_str());
        continue;
      }
      if (it->second != s)
        return error_f("tensor '%s' is in %s but the index places it in %s", bounded(t.name).c_str(), file.c_str(),
                       shard_files_[it->second].c_str());
    }
    if (tensors_.count(t.name) || found.count(t.name))
      return error_f("tensor '%s' appears in two shards (second: %s)", bounded(t.name).c_str(), file.c_str());
    TensorRef ref;
    ref.dtype = t.dtype;
    ref.shape = t.shape;
    ref.data = shard->data(t);
    ref.nbytes = t.end - t.begin;
    ref.shard = static_cast<int>(s);
    // Misaligned for its element size (the format does not align data offsets): keep an
    // aligned copy so kernels never do an unaligned typed load.
    int esize = dtype_size(t.dtype);
    if (ref.nbytes > 0 && reinterpret_cast<uintptr_t>(ref.data) % esize != 0) {
      auto copy = std::unique_ptr<uint8_t[], AlignedDelete>(
          static_cast<uint8_t*>(::operator new[](ref.nbytes, std::align_val_t(64))));
      std::memcpy(copy.get(), ref.data, ref.nbytes);
      ref.data = copy.get();
      copied += ref.nbytes;
      copies.push_back(std::move(copy));
      DSV3_LOG_INFO("tensor '%s' is misaligned in %s; using an aligned copy", bounded(t.name).c_str(), file.c_str());
    }
    found.emplace(t.name, std::move(ref));
  }
  for (const std::string& name : indexed_[s])
    if (!found.count(name))
      return error_f("tensor '%s' is listed in the index for %s but that shard does not contain it",
                     bounded(name).c_str(), file.c_str());
  for (auto& [name, ref] : found) {
    auto pos = tensors_.emplace(name, std::move(ref)).first;
    pos->second.name = &pos->first;
  }
  for (auto& c : copies) aligned_copies_.push_back(std::move(c));
  copied_bytes_ += copied;
  shards_[s] = std::move(shard);
  return {};
}

const TensorRef* Checkpoint::find(const std::string& name) const {
  auto it = tensors_.find(name);
  if (it != tensors_.end()) return &it->second;
  auto where = shard_of_.find(name);
  if (where == shard_of_.end() || shards_[where->second] || !shard_error_.ok()) return nullptr;
  if (Status opened = open_shard(where->second); !opened.ok()) {
    shard_error_ = std::move(opened);
    return nullptr;
  }
  it = tensors_.find(name);
  return it == tensors_.end() ? nullptr : &it->second;
}

std::vector<std::string> Checkpoint::opened_shard_paths() const {
  std::vector<std::string> paths;
  for (const auto& s : shards_)
    if (s) paths.push_back(s->path());
  std::sort(paths.begin(), paths.end());
  return paths;
}

uint64_t Checkpoint::total_file_bytes() const {
  uint64_t n = 0;
  for (const auto& s : shards_)
    if (s) n += s->file().size();
  return n;
}

PageResidency Checkpoint::page_residency() const {
  std::vector<MemoryRange> files;
  for (const auto& s : shards_)
    if (s) files.push_back({s->file().data(), s->file().size()});
  return dsv3::page_residency(files);
}

}  // namespace dsv3
