#pragma once
// The ranks of a run and the collectives the model needs between them (DeepSeek model.py's
// torch.distributed calls: all_reduce, all_gather, broadcast). One process is world size 1, where
// every collective is the identity; under `mpirun -np W` the ranks talk through Open MPI
// (mpi_communicator.cpp). Model code calls these without asking which one it has.

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "base/result.h"

namespace dsv3 {

// What this rank spent on collectives (dsv3 bench): counted by every call, whatever the size.
struct CommStats {
  uint64_t collectives = 0;
  uint64_t bytes_sent = 0;   // payload this rank contributed (not the transport's own traffic)
  double seconds = 0;        // wall time inside collectives, waiting for peers included
};

class Communicator {
 public:
  virtual ~Communicator() = default;
  virtual int rank() const = 0;
  virtual int size() const = 0;
  bool is_leader() const { return rank() == 0; }

  // x[0, n) summed over all ranks, on every rank.
  virtual void all_reduce_sum(float* x, int64_t n) = 0;
  // root's data[0, bytes) to every rank.
  virtual void broadcast(void* data, size_t bytes, int root) = 0;
  // A byte message of any length from root; on other ranks `msg` is replaced. With `idle`,
  // non-root ranks wait for it sleeping between polls (a follower between steps, a server with
  // no requests) instead of spinning on a core.
  virtual void broadcast_message(std::vector<uint8_t>* msg, int root, bool idle) = 0;
  // Every rank's `bytes` bytes, concatenated in rank order, on every rank.
  virtual void all_gather(const void* send, size_t bytes, void* recv) = 0;
  // Rank r's counts[r] bytes, concatenated in rank order into root's recv (others: recv unused).
  virtual void gather(const void* send, std::span<const size_t> counts, void* recv, int root) = 0;

  // Ends every rank of the run with `code` (a rank that cannot go on while others wait for it).
  virtual void abort(int code) = 0;

  const CommStats& stats() const { return stats_; }
  void reset_stats() { stats_ = {}; }

 protected:
  CommStats stats_;
};

// Counts one collective of `bytes` bytes into stats, timing it from construction to destruction.
class CollectiveTimer {
 public:
  CollectiveTimer(CommStats& stats, uint64_t bytes) : stats_(stats), start_(std::chrono::steady_clock::now()) {
    ++stats_.collectives;
    stats_.bytes_sent += bytes;
  }
  ~CollectiveTimer() {
    stats_.seconds += std::chrono::duration<double>(std::chrono::steady_clock::now() - start_).count();
  }

 private:
  CommStats& stats_;
  std::chrono::steady_clock::time_point start_;
};

// World size 1: every collective leaves the data as it is.
class LocalCommunicator final : public Communicator {
 public:
  int rank() const override { return 0; }
  int size() const override { return 1; }
  void all_reduce_sum(float*, int64_t) override {}
  void broadcast(void*, size_t, int) override {}
  void broadcast_message(std::vector<uint8_t>*, int, bool) override {}
  void all_gather(const void* send, size_t bytes, void* recv) override;
  void gather(const void* send, std::span<const size_t> counts, void* recv, int root) override;
  void abort(int code) override;
};

// True when this process was started by mpirun (Open MPI sets OMPI_COMM_WORLD_SIZE).
bool launched_by_mpirun();

// The world of this run: Open MPI's when started by mpirun, else world size 1 (without
// initializing MPI at all, so that one process behaves exactly as a build without it).
// Errors when started by mpirun in a build without MPI, or when MPI does not start.
Result<std::unique_ptr<Communicator>> open_world(int* argc, char*** argv);

// Whether this build can run across processes (found Open MPI at configure time).
bool built_with_mpi();

}  // namespace dsv3
