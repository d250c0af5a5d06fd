#pragma once
// Whether every rank of a run executes the same dsv3: ranks of different builds would exchange
// step messages and tensors of different layouts, or compute the same step differently. At
// start, before anything else crosses the network, every rank hashes its own executable and
// the ranks compare.

#include <cstdint>
#include <string>

#include "base/result.h"
#include "dist/communicator.h"

namespace dsv3 {

struct BuildIdentity {
  std::string version;       // the release, e.g. "0.1.0"
  uint64_t executable_bytes = 0;
  uint64_t executable_hash = 0;  // of the whole executable file, as it is on this machine
  std::string host;
};

// This process's identity: `version` and its executable (/proc/self/exe).
Result<BuildIdentity> this_build(const std::string& version);

// Every rank's identity against rank 0's (a collective: every rank calls it, and every rank gets
// the same answer). The error names the first rank that differs, its host and both builds.
Status check_same_build(Communicator& comm, const BuildIdentity& mine);

}  // namespace dsv3
