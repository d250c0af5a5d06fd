#include "dist/communicator.h"

#include <cstdlib>
#include <cstring>

namespace dsv3 {

void LocalCommunicator::all_gather(const void* send, size_t bytes, void* recv) {
  if (bytes) std::memcpy(recv, send, bytes);
}

void LocalCommunicator::gather(const void* send, std::span<const size_t> counts, void* recv, int) {
  if (!counts.empty() && counts[0]) std::memcpy(recv, send, counts[0]);
}

void LocalCommunicator::abort(int code) { std::exit(code); }

bool launched_by_mpirun() {
  const char* size = std::getenv("OMPI_COMM_WORLD_SIZE");
  return size != nullptr && *size != '\0';
}

#ifndef DSV3_WITH_MPI
bool built_with_mpi() { return false; }

Result<std::unique_ptr<Communicator>> open_world(int*, char***) {
  if (launched_by_mpirun())
    return Error("started by mpirun, but this dsv3 was built without Open MPI (install libopenmpi-dev and rebuild)");
  return std::unique_ptr<Communicator>(new LocalCommunicator());
}
#endif

}  // namespace dsv3
