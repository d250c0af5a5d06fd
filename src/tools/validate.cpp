#include "tools/validate.h"

#include <set>

#include "base/result.h"

namespace dsv3 {

CheckpointValidation validate_checkpoint(const ModelConfig& config, const Checkpoint& ck) {
  CheckpointValidation v;
  WeightBinder binder(&ck, config);
  bind_model_weights(binder, config, /*with_mtp=*/config.num_nextn_predict_layers > 0);

  std::set<std::string> mtp_names;
  for (const TensorSpec& s : binder.specs())
    if (s.mtp) mtp_names.insert(s.name);
  std::vector<std::string> mtp_missing;
  for (const std::string& name : binder.missing()) (mtp_names.count(name) ? mtp_missing : v.missing).push_back(name);
  // A checkpoint without any MTP tensor is a complete main model (some exports drop the
  // module); a partly present module is a broken download.
  if (!mtp_names.empty() && mtp_missing.size() == mtp_names.size()) v.mtp_absent = true;
  else v.mtp_missing = std::move(mtp_missing);

  v.problems = binder.problems();
  for (const auto& [name, t] : ck.tensors())
    if (!binder.used().count(name)) v.unused.push_back(name);
  return v;
}

std::string CheckpointValidation::summary() const {
  std::string s;
  auto add = [&](size_t n, const char* what, const std::string& first) {
    if (n == 0) return;
    s += (s.empty() ? "" : "; ") + str_f("%zu %s (first: %s)", n, what, first.c_str());
  };
  add(missing.size(), "required tensor(s) missing", missing.empty() ? "" : missing[0]);
  add(mtp_missing.size(), "MTP tensor(s) missing", mtp_missing.empty() ? "" : mtp_missing[0]);
  add(problems.size(), "defective tensor(s)", problems.empty() ? "" : problems[0].message);
  return s;
}

}  // namespace dsv3
