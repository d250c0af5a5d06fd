#pragma once
// Tensor shapes as safetensors stores them: dimensions, outermost first (row-major).

#include <cstdint>
#include <span>
#include <string>

namespace dsv3 {

// Number of elements: the product of the dimensions (1 for a scalar's empty shape). Parsing
// rejects negative dimensions and products that overflow before a shape gets here.
inline uint64_t shape_numel(std::span<const int64_t> shape) {
  uint64_t n = 1;
  for (int64_t d : shape) n *= static_cast<uint64_t>(d);
  return n;
}

// "[7168, 2048]", for messages.
inline std::string shape_string(std::span<const int64_t> shape) {
  std::string out = "[";
  for (size_t i = 0; i < shape.size(); ++i) out += (i ? ", " : "") + std::to_string(shape[i]);
  return out + "]";
}

}  // namespace dsv3
