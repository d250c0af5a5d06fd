// tokenizer.json (and, after a 0xFF byte, tokenizer_config.json) of an untrusted model
// directory: loading either fails with an error or gives a tokenizer that round-trips text.
#include <algorithm>

#include "fuzz_util.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace dsv3;
  std::string_view input = fuzz::as_text(data, size);
  std::string_view tokenizer_json = input, config_text;
  if (size_t cut = input.find('\xff'); cut != std::string_view::npos) {
    tokenizer_json = input.substr(0, cut);
    config_text = input.substr(cut + 1);
  }
  auto loaded = Tokenizer::from_strings(tokenizer_json, config_text, "fuzz");
  if (!loaded.ok()) return 0;
  const Tokenizer& t = *loaded.value();
  for (std::string_view text : {std::string_view("Hello, world! 123"), tokenizer_json.substr(0, 64)}) {
    std::vector<int32_t> ids = t.encode(text);
    auto back = t.decode(ids, /*skip_special_tokens=*/false);
    (void)back;
  }
  return 0;
}
