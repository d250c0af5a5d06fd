// BPE encoding and incremental decoding with the shipped DeepSeek-V3 tokenizer, on any bytes
// (model output and user text alike). Checks the documented contracts (tokenizer.h): the
// tokens of encode_ordinary(s) hold exactly the bytes of s for every s, decode(encode(s)) == s
// for valid UTF-8 s (decode is lossy on invalid UTF-8, as HF's), and the incremental decoder's pieces
// concatenate to decode() of the same ids, for ids the input picks.
#include "base/json.h"
#include "fuzz_util.h"
#include "tokenizer/incremental_decoder.h"

// The tokenizer loads once, before the first input (its load is not an input's time).
extern "C" int LLVMFuzzerInitialize(int*, char***) {
  (void)dsv3::fuzz::shipped_tokenizer();
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace dsv3;
  const Tokenizer& t = fuzz::shipped_tokenizer();
  std::string_view text = fuzz::as_text(data, size);

  std::vector<int32_t> ids = t.encode_ordinary(text);
  std::string bytes;
  for (int32_t id : ids) bytes += t.token_bytes(id);
  if (bytes != text) std::abort();
  auto back = t.decode(ids, /*skip_special_tokens=*/false);
  if (!back.ok() || find_invalid_utf8(back.value())) std::abort();
  if (!find_invalid_utf8(text) && back.value() != text) std::abort();
  (void)t.encode(text, /*add_bos=*/true);  // with added tokens: must not fail or crash

  // Ids from the input's bytes, three at a time (any id in the vocabulary).
  std::vector<int32_t> picked;
  for (size_t i = 0; i + 3 <= size; i += 3) {
    int32_t id = static_cast<int32_t>((data[i] | data[i + 1] << 8 | data[i + 2] << 16) % t.vocab_size());
    if (t.has_id(id)) picked.push_back(id);
  }
  for (bool skip : {false, true}) {
    IncrementalDecoder dec(t, skip);
    std::string pieces;
    for (int32_t id : picked) pieces += dec.push(id);
    pieces += dec.flush();
    auto whole = t.decode(picked, skip);
    if (!whole.ok()) std::abort();
    // The decoder's contract: what it emits is decode() of the ids made valid UTF-8 (equal
    // to it whenever decode() gives valid UTF-8).
    if (!find_invalid_utf8(whole.value()) && pieces != whole.value()) std::abort();
    if (find_invalid_utf8(pieces)) std::abort();
  }
  return 0;
}
