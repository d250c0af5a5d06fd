// A chat template from an untrusted tokenizer_config.json, compiled and rendered on a fixed
// conversation: every template compiles or fails with an error, and every render finishes
// within the render limits (loops, recursion, string and list sizes) or fails with one.
#include "base/json.h"
#include "fuzz_util.h"
#include "tokenizer/chat_template.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace dsv3;
  auto compiled = ChatTemplate::compile(std::string(fuzz::as_text(data, size)));
  if (!compiled.ok()) return 0;
  static const Json messages = Json::parse(R"([
    {"role": "system", "content": "Be brief."},
    {"role": "user", "content": "Hi <｜User｜> {{ x }}"},
    {"role": "assistant", "content": "Hello.", "tool_calls": [{"type": "function",
      "function": {"name": "f", "arguments": "{\"a\": 1}"}}]},
    {"role": "tool", "content": "42"},
    {"role": "user", "content": "And?"}])");
  static const Json extra = Json::parse(R"({"bos_token": "<s>", "eos_token": "</s>"})");
  static const Json tools = Json::parse(R"({"tools": [{"type": "function", "function": {"name": "f"}}]})");
  // Smaller than the server's own limits, so that a fuzzing run spends its time on many
  // inputs rather than on a few legal but huge renders.
  ChatTemplate::Limits limits;
  limits.max_output_bytes = 1u << 20;
  limits.max_value_bytes = 1u << 20;
  limits.max_built_bytes = 16u << 20;
  // Loops cost ~60 us an iteration under the sanitizers, so the server's 10 million take minutes,
  // which libFuzzer's 1 s timeout reports as a hang (make test's fuzz-smoke did, on
  // "{% for a in range(3000) %}{% for b in range(3000) %}...").
  limits.max_loop_iterations = 2'000;
  auto rendered = compiled.value().render_marked(messages, /*add_generation_prompt=*/true, extra, tools, limits);
  if (rendered.ok() && !rendered.value().over_output_limit && rendered.value().text.size() > limits.max_output_bytes)
    std::abort();
  return 0;
}
