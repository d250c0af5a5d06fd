#pragma once
// Whole-checkpoint validation for inspect and convert: the loader's own checks (the one
// tensor walk of model/weights.h, MTP layers included), but every finding listed rather than
// the first 20, and classified so a report can say what is fatal.

#include <string>
#include <vector>

#include "format/checkpoint.h"
#include "format/model_config.h"
#include "model/weights.h"

namespace dsv3 {

struct CheckpointValidation {
  std::vector<std::string> missing;      // required main-model tensors absent (fatal)
  std::vector<std::string> mtp_missing;  // some, not all, MTP tensors absent (fatal: a broken module)
  bool mtp_absent = false;               // config declares MTP layers but none is stored (warning:
                                         // the model runs, without speculative decoding)
  std::vector<std::string> unused;       // stored but not part of the model (a warning, as in the loader)
  std::vector<BindProblem> problems;     // wrong shape or dtype, bad scales, non-finite small tensors (fatal)

  // True when dsv3 can load and run the main model (and the MTP module if stored).
  bool valid() const { return missing.empty() && mtp_missing.empty() && problems.empty(); }
  // One line per finding class, for errors (e.g. convert refusing an invalid input).
  std::string summary() const;
};

CheckpointValidation validate_checkpoint(const ModelConfig& config, const Checkpoint& checkpoint);

}  // namespace dsv3
