// The Communicator over Open MPI: MPI_COMM_WORLD, one rank per process. MPI's default error
// handler stays (MPI_ERRORS_ARE_FATAL): a failed collective or a lost peer ends the whole job
// through mpirun, which names the rank that died, rather than leaving ranks waiting.

#include <mpi.h>

#include <climits>
#include <cstdlib>
#include <optional>
#include <thread>

#include "dist/communicator.h"

namespace dsv3 {
namespace {

class MpiCommunicator final : public Communicator {
 public:
  MpiCommunicator() {
    MPI_Comm_rank(MPI_COMM_WORLD, &rank_);
    MPI_Comm_size(MPI_COMM_WORLD, &size_);
  }
  ~MpiCommunicator() override { MPI_Finalize(); }

  int rank() const override { return rank_; }
  int size() const override { return size_; }

  void all_reduce_sum(float* x, int64_t n) override {
    CollectiveTimer t(stats_, static_cast<uint64_t>(n) * sizeof(float));
    for (int64_t done = 0; done < n;) {
      const int count = static_cast<int>(std::min<int64_t>(n - done, INT_MAX));
      MPI_Allreduce(MPI_IN_PLACE, x + done, count, MPI_FLOAT, MPI_SUM, MPI_COMM_WORLD);
      done += count;
    }
  }

  void broadcast(void* data, size_t bytes, int root) override {
    CollectiveTimer t(stats_, rank_ == root ? bytes : 0);
    auto* p = static_cast<uint8_t*>(data);
    for (size_t done = 0; done < bytes;) {
      const int count = static_cast<int>(std::min<size_t>(bytes - done, INT_MAX));
      MPI_Bcast(p + done, count, MPI_BYTE, root, MPI_COMM_WORLD);
      done += static_cast<size_t>(count);
    }
  }

  void broadcast_message(std::vector<uint8_t>* msg, int root, bool idle) override {
    // The length goes by a non-blocking broadcast on every rank (MPI requires blocking and
    // non-blocking collectives not to be mixed), so that a follower between steps can poll it:
    // spinning for a while (the next step of a generation comes within milliseconds), then
    // sleeping between polls, up to 2 ms, instead of holding a core while the server is idle.
    uint64_t length = rank_ == root ? msg->size() : 0;
    // Counted with its wait: on a follower, the time rank 0 spends between steps.
    std::optional<CollectiveTimer> timer(std::in_place, stats_, rank_ == root ? sizeof(length) : 0);
    MPI_Request request;
    MPI_Ibcast(&length, 1, MPI_UINT64_T, root, MPI_COMM_WORLD, &request);
    if (idle && rank_ != root) {
      int done = 0;
      const auto start = std::chrono::steady_clock::now();
      for (int polls = 0; !done; ++polls) {
        MPI_Test(&request, &done, MPI_STATUS_IGNORE);
        if (!done && std::chrono::steady_clock::now() - start > std::chrono::milliseconds(50))
          std::this_thread::sleep_for(std::chrono::microseconds(polls < 1000 ? 200 : 2000));
      }
    } else {
      MPI_Wait(&request, MPI_STATUS_IGNORE);
    }
    timer.reset();
    if (rank_ != root) msg->resize(length);
    broadcast(msg->data(), length, root);
  }

  void abort(int code) override { MPI_Abort(MPI_COMM_WORLD, code); }

  void all_gather(const void* send, size_t bytes, void* recv) override {
    CollectiveTimer t(stats_, bytes);
    MPI_Allgather(send, static_cast<int>(bytes), MPI_BYTE, recv, static_cast<int>(bytes), MPI_BYTE, MPI_COMM_WORLD);
  }

  void gather(const void* send, std::span<const size_t> counts, void* recv, int root) override {
    CollectiveTimer t(stats_, counts[rank_]);
    std::vector<int> sizes(static_cast<size_t>(size_)), offsets(static_cast<size_t>(size_));
    int offset = 0;
    for (int r = 0; r < size_; ++r) {
      sizes[r] = static_cast<int>(counts[r]);
      offsets[r] = offset;
      offset += sizes[r];
    }
    MPI_Gatherv(send, sizes[rank_], MPI_BYTE, recv, sizes.data(), offsets.data(), MPI_BYTE, root, MPI_COMM_WORLD);
  }

 private:
  int rank_ = 0, size_ = 1;
};

}  // namespace

bool built_with_mpi() { return true; }

Result<std::unique_ptr<Communicator>> open_world(int* argc, char*** argv) {
  if (!launched_by_mpirun()) return std::unique_ptr<Communicator>(new LocalCommunicator());
  // A rank waiting in a collective polls. Yielding between polls lets whatever else is runnable
  // on its core go first: a peer rank when ranks share cores, or another program's work. On a
  // loaded 2-core machine it took 2 ranks x 1 thread from 3.3-3.6 to 4.0-5.2 tok/s
  // (docs/distributed.md); with a core to itself a yield returns at once. Open MPI turns it on
  // by itself only when it knows the node is oversubscribed; the user's own setting wins.
  ::setenv("OMPI_MCA_mpi_yield_when_idle", "1", /*overwrite=*/0);
  // Serialized: rank 0 calls from the main thread (loading) and the engine's thread (steps),
  // never from both at once.
  int provided = 0;
  if (MPI_Init_thread(argc, argv, MPI_THREAD_SERIALIZED, &provided) != MPI_SUCCESS)
    return Error("MPI_Init_thread failed");
  if (provided < MPI_THREAD_SERIALIZED) {
    MPI_Finalize();
    return Error("this Open MPI does not support MPI_THREAD_SERIALIZED, which dsv3 needs (its engine thread runs the steps)");
  }
  return std::unique_ptr<Communicator>(new MpiCommunicator());
}

}  // namespace dsv3
