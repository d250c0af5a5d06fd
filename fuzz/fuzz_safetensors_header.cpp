// A safetensors file's JSON header, as read from an untrusted checkpoint: parse_header must
// answer every byte string with tensors that lie inside the data area, or an error.
#include <map>

#include "format/safetensors.h"
#include "fuzz_util.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace dsv3;
  constexpr uint64_t kDataSize = 1u << 20;  // the data area the header must fit in
  std::map<std::string, std::string> metadata;
  auto parsed = SafetensorsFile::parse_header(std::string(fuzz::as_text(data, size)), kDataSize, &metadata);
  if (!parsed.ok()) return 0;
  for (const TensorInfo& t : parsed.value()) {
    // What the loader relies on once the header is accepted.
    if (t.begin > t.end || t.end > kDataSize) std::abort();
  }
  return 0;
}
