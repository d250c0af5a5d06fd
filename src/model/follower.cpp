// A model split across ranks (partition.h): the load that checks every rank, and the loop the
// ranks other than 0 run, mirroring each of rank 0's model calls on their own caches.

#include <array>
#include <cstring>
#include <fstream>
#include <map>
#include <sstream>

#include "base/log.h"
#include "model/model.h"
#include "model/step_message.h"

namespace dsv3 {
namespace {

// What must be the same on every rank: config.json, the checkpoint's index. (The build was
// compared at start, dist/build_identity.h.)
struct Fingerprint {
  std::array<char, 256> dir{};         // where this rank read them
  uint64_t config_hash = 0, index_hash = 0;
  uint8_t loaded = 0;                  // the rank's load succeeded
  std::array<char, 400> error{};       // else why
};

uint64_t fnv1a(const std::string& bytes) {
  uint64_t h = 1469598103934665603ull;
  for (unsigned char ch : bytes) h = (h ^ ch) * 1099511628211ull;
  return h;
}

// The file's contents' hash, 0 when it cannot be read (missing: a single-file checkpoint's index).
uint64_t file_hash(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  if (!f) return 0;
  std::ostringstream s;
  s << f.rdbuf();
  return fnv1a(s.str());
}

void copy_text(const std::string& text, char* out, size_t size) {
  std::strncpy(out, text.c_str(), size - 1);
  out[size - 1] = '\0';
}

Fingerprint fingerprint(const std::string& dir) {
  Fingerprint f;
  copy_text(dir, f.dir.data(), f.dir.size());
  f.config_hash = file_hash(dir + "/config.json");
  f.index_hash = file_hash(dir + "/model.safetensors.index.json");
  return f;
}

}  // namespace

Model::~Model() {
  if (leads_ranks()) {
    StepMessage unload;
    unload.kind = StepKind::Unload;
    broadcast_step(unload);
  }
}

void Model::quit_followers(Communicator& comm) {
  if (comm.size() == 1 || !comm.is_leader()) return;
  StepMessage quit;
  quit.kind = StepKind::Quit;
  std::vector<uint8_t> bytes = encode_step(quit);
  comm.broadcast_message(&bytes, 0, /*idle=*/false);
}

Result<std::unique_ptr<Model>> Model::load_share(const std::string& dir, const ModelOptions& options,
                                                 Communicator& comm) {
  Status kernels = kernels::apply_kernel_choice(options.kernels);
  Result<std::unique_ptr<Model>> model = kernels.ok() ? load_local(dir, options, comm) : Result<std::unique_ptr<Model>>(std::move(kernels).error());
  // Every rank learns every rank's outcome, so that all of them fail together (none is left
  // waiting for a step that never comes).
  Fingerprint mine = fingerprint(dir);
  mine.loaded = model.ok();
  if (!model.ok()) copy_text(model.error().message(), mine.error.data(), mine.error.size());
  std::vector<Fingerprint> all(static_cast<size_t>(comm.size()));
  comm.all_gather(&mine, sizeof(mine), all.data());
  for (int r = 1; r < comm.size(); ++r) {
    const Fingerprint& f = all[r];
    if (f.config_hash != all[0].config_hash)
      return error_f("rank %d: %s/config.json differs from rank 0's (%s/config.json): every machine needs the same "
                     "checkpoint",
                     r, f.dir.data(), all[0].dir.data());
    if (f.index_hash != all[0].index_hash)
      return error_f("rank %d: %s/model.safetensors.index.json differs from rank 0's (%s): every machine needs the "
                     "same checkpoint",
                     r, f.dir.data(), all[0].dir.data());
  }
  for (int r = 0; r < comm.size(); ++r)
    if (!all[r].loaded) return error_f("rank %d: %s", r, all[r].error.data());
  CacheJournal::instance().enable();
  return model;
}

std::vector<CommStats> Model::gather_comm_stats() const {
  if (!partition_.split()) return {comm_->stats()};
  if (leads_ranks()) {
    StepMessage stats;
    stats.kind = StepKind::Stats;
    broadcast_step(stats);
  }
  // Taken before the gather, so that the gather itself is not counted.
  const CommStats mine = comm_->stats();
  std::vector<CommStats> all(static_cast<size_t>(comm_->size()));
  std::vector<size_t> counts(all.size(), sizeof(CommStats));
  comm_->gather(&mine, counts, all.data(), 0);
  return all;
}

namespace {

// The other ranks' copies of rank 0's caches, by id.
class FollowerCaches {
 public:
  explicit FollowerCaches(int rank) : rank_(rank) {}
  void clear() { caches_.clear(); }

  // First the copies (their sources must still be here), then the frees, as rank 0 did them.
  Status apply(const StepMessage& m, int64_t row_dim, int64_t index_key_dim) {
    for (const StepSegment& s : m.segments) {
      const CacheRef& ref = s.cache;
      if (!ref.origin_source) continue;
      auto src = caches_.find(ref.origin_source);
      if (src == caches_.end())
        return error_f("rank %d: cache %llu is a copy of cache %llu, which this rank does not have", rank_,
                       static_cast<unsigned long long>(ref.id), static_cast<unsigned long long>(ref.origin_source));
      KVCache copy(ref.n_layers, row_dim, index_key_dim);
      copy.assign_prefix(src->second, ref.origin_rows);
      caches_.insert_or_assign(ref.id, std::move(copy));
    }
    for (uint64_t id : m.released) caches_.erase(id);
    return {};
  }

  // The cache `ref` names, with rank 0's length (rows past it dropped: rejected drafts).
  Result<KVCache*> get(const CacheRef& ref, int64_t row_dim, int64_t index_key_dim) {
    auto it = caches_.try_emplace(ref.id, ref.n_layers, row_dim, index_key_dim).first;
    KVCache& c = it->second;
    if (c.length() < ref.length || c.n_layers() != ref.n_layers)
      return error_f("rank %d: cache %llu has %lld rows in %lld layers, rank 0's %lld rows in %lld layers", rank_,
                     static_cast<unsigned long long>(ref.id), static_cast<long long>(c.length()),
                     static_cast<long long>(c.n_layers()), static_cast<long long>(ref.length),
                     static_cast<long long>(ref.n_layers));
    c.truncate(ref.length);
    return &c;
  }

 private:
  int rank_;
  std::map<uint64_t, KVCache> caches_;
};

// Runs one step message on a follower.
Status follow_step(const Model& model, const StepMessage& m, FollowerCaches& caches) {
  const int64_t row_dim = model.config().kv_cache_dim(), D = model.config().hidden_size;
  const int64_t index_key_dim = model.config().index_key_dim();
  DSV3_TRY(caches.apply(m, row_dim, index_key_dim));
  ForwardOutput out;
  switch (m.kind) {
    case StepKind::Forward: {
      std::vector<SequenceInput> inputs;
      for (const StepSegment& s : m.segments) {
        DSV3_ASSIGN(KVCache * cache, caches.get(s.cache, row_dim, index_key_dim));
        inputs.push_back({cache, s.tokens, static_cast<Logits>(s.logits)});
      }
      return model.forward(inputs, &out, m.want_hidden);
    }
    case StepKind::MtpStep: {
      std::vector<Model::MtpInput> inputs;
      int64_t row = 0;
      for (const StepSegment& s : m.segments) {
        DSV3_ASSIGN(KVCache * cache, caches.get(s.cache, row_dim, index_key_dim));
        inputs.push_back({cache, s.first_position, s.tokens, m.hidden.data() + row * D, static_cast<Logits>(s.logits)});
        row += static_cast<int64_t>(s.tokens.size());
      }
      return model.mtp_step(inputs, &out);
    }
    case StepKind::MtpForward: {
      if (m.segments.size() != 1) return Error("MTP pass message without its one sequence");
      DSV3_ASSIGN(KVCache * cache, caches.get(m.segments[0].cache, row_dim, index_key_dim));
      return model.mtp_forward(m.hidden.data(), m.segments[0].tokens, cache, nullptr);
    }
    case StepKind::Stats: model.gather_comm_stats(); return {};
    default: return {};
  }
}

}  // namespace

Status Model::follow(Communicator& comm, const std::string& own_dir) {
  std::unique_ptr<Model> model;
  FollowerCaches caches(comm.rank());
  for (;;) {
    std::vector<uint8_t> bytes;
    comm.broadcast_message(&bytes, 0, /*idle=*/true);
    DSV3_ASSIGN(StepMessage m, decode_step(bytes));
    switch (m.kind) {
      case StepKind::Quit: return {};
      case StepKind::Load: {
        ModelOptions options = load_options(m);
        options.comm = &comm;
        model.reset();
        caches.clear();
        auto loaded = load_share(own_dir.empty() ? m.dir : own_dir, options, comm);
        // A failed load is rank 0's error to report (it knows every rank's); wait for what comes next.
        if (loaded.ok()) model = std::move(loaded).value();
        break;
      }
      case StepKind::Unload:
        model.reset();
        caches.clear();
        break;
      default:
        if (!model) return error_f("rank %d: a step came with no model loaded", comm.rank());
        // A step that fails here would leave rank 0 waiting in a collective: end the job.
        if (Status st = follow_step(*model, m, caches); !st.ok()) return st;
    }
  }
}

}  // namespace dsv3
