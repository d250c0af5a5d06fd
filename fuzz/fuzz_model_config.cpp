// A checkpoint's config.json: every byte string is a validated ModelConfig or an error.
#include "base/json.h"
#include "format/model_config.h"
#include "fuzz_util.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  auto json = dsv3::parse_json(dsv3::fuzz::as_text(data, size), "config.json");
  if (!json.ok()) return 0;
  auto config = dsv3::parse_model_config(json.value(), "config.json");
  (void)config;
  return 0;
}
