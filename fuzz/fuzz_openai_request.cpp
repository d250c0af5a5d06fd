// The body of POST /v1/chat/completions and /v1/completions, as the server reads it: JSON
// within the server's depth limit, then the OpenAI parameters, then (chat) the prompt built
// with the shipped tokenizer and chat template. The first byte picks the route. Every body is
// a request or an ApiError; none crashes or runs away.
#include "base/json.h"
#include "fuzz_util.h"
#include "server/openai_request.h"
#include "server/prompt.h"

// The tokenizer loads once, before the first input (its load is not an input's time).
extern "C" int LLVMFuzzerInitialize(int*, char***) {
  (void)dsv3::fuzz::shipped_tokenizer();
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace dsv3;
  using namespace dsv3::server;
  if (size == 0) return 0;
  const bool chat = data[0] & 1;
  auto body = parse_json(fuzz::as_text(data + 1, size - 1), "request body", JsonLimits{64, true});
  if (!body.ok()) return 0;
  const Tokenizer& tokenizer = fuzz::shipped_tokenizer();
  const ServedModel model{"fuzz", tokenizer.vocab_size(), 4096};
  if (chat) {
    ChatRequest request;
    if (parse_chat_request(body.value(), model, &request)) return 0;
    ChatPrompt prompt;
    (void)build_chat_prompt(tokenizer, request, &prompt, model.context);
  } else {
    CompletionRequest request;
    if (parse_completion_request(body.value(), model, &request)) return 0;
    for (const CompletionPrompt& p : request.prompts)
      if (p.text) (void)encode_completion_prompt(tokenizer, *p.text);
  }
  return 0;
}
