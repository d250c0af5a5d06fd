#include "runtime/generate.h"

#include "runtime/session.h"

namespace dsv3 {

std::vector<int32_t> default_stop_tokens(const ModelConfig& config) {
  std::vector<int32_t> out;
  for (int64_t e : config.eos_token_ids) out.push_back(static_cast<int32_t>(e));
  return out;
}

Result<GenerationResult> generate(const Model& model, std::span<const int32_t> prompt, const GenerateOptions& options,
                                  const std::function<bool(int32_t)>& on_token) {
  Session session(model);
  return session.generate(prompt, options, on_token);
}

}  // namespace dsv3
