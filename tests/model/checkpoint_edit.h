#pragma once
// Builds defective checkpoints for tests: copies a checkpoint's tensors into a single
// model.safetensors in a new directory, letting a callback drop, retype, reshape or corrupt
// tensors on the way.

#include <cstring>
#include <filesystem>
#include <functional>
#include <string>
#include <vector>

#include "format/checkpoint.h"
#include "format/safetensors.h"
#include "test_util.h"

namespace dsv3::test {

struct EditableTensor {
  std::string name;
  DType dtype;
  std::vector<int64_t> shape;
  std::vector<uint8_t> bytes;
};

// edit(t) returns false to drop the tensor. `extra` tensors are appended.
inline void rewrite_checkpoint(const std::string& src, const std::string& dst,
                               const std::function<bool(EditableTensor&)>& edit,
                               std::vector<EditableTensor> extra = {}) {
  auto ck = Checkpoint::open(src).value();
  std::vector<EditableTensor> tensors;
  for (const auto& [name, t] : ck->tensors()) {
    EditableTensor e{name, t.dtype, t.shape, std::vector<uint8_t>(t.data, t.data + t.nbytes)};
    if (edit(e)) tensors.push_back(std::move(e));
  }
  for (auto& e : extra) tensors.push_back(std::move(e));
  std::vector<TensorData> out;
  for (const auto& e : tensors) out.push_back({{e.name, e.dtype, e.shape}, e.bytes.data()});
  std::filesystem::create_directories(dst);
  ASSERT_TRUE(write_safetensors_file(dst + "/model.safetensors", out).ok());
  std::filesystem::copy_file(src + "/config.json", dst + "/config.json",
                             std::filesystem::copy_options::overwrite_existing);
}

}  // namespace dsv3::test
