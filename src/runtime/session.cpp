#include "runtime/session.h"

#include <algorithm>
#include <chrono>

#include "runtime/prefix_cache.h"

namespace dsv3 {

void Session::clear() {
  cache_.clear();
  cached_.clear();
}

Result<GenerationResult> Session::generate(std::span<const int32_t> prompt, const GenerateOptions& options,
                                           const std::function<bool(int32_t)>& on_token) {
  using Clock = std::chrono::steady_clock;
  if (prompt.empty()) return Error("the prompt is empty");
  DSV3_TRY(validate_sampling(options.sampling));
  const int64_t limit = model_.max_context();
  if (static_cast<int64_t>(prompt.size()) > limit)
    return error_f("the prompt has %zu tokens, more than the context limit of %lld", prompt.size(),
                   static_cast<long long>(limit));
  // Keep the longest cached prefix; at least one prompt token is fed to get logits.
  const size_t keep = std::min(static_cast<size_t>(common_prefix_length(cached_, prompt)), prompt.size() - 1);
  cache_.truncate(static_cast<int64_t>(keep));
  cached_.resize(keep);
  reused_ = static_cast<int64_t>(keep);

  GenerationResult result;
  result.prompt_tokens = static_cast<int64_t>(prompt.size());
  Sampler sampler(options.sampling);
  ForwardOutput out;
  auto feed = [&](std::span<const int32_t> tokens, bool no_logits = false) -> Status {
    SequenceInput in{&cache_, tokens, no_logits ? Logits::None : Logits::Last};
    Status st = model_.forward({&in, 1}, &out);
    if (!st.ok()) {  // the cache may hold part of the step: forget it
      clear();
      return st;
    }
    cached_.insert(cached_.end(), tokens.begin(), tokens.end());
    return {};
  };

  auto t0 = Clock::now();
  std::span<const int32_t> rest = prompt.subspan(keep);
  constexpr size_t kPrefillChunk = 512;
  for (; options.stop_requested && rest.size() > kPrefillChunk; rest = rest.subspan(kPrefillChunk)) {
    if (options.stop_requested()) {
      result.prefill_seconds = std::chrono::duration<double>(Clock::now() - t0).count();
      return result;
    }
    DSV3_TRY(feed(rest.first(kPrefillChunk), /*no_logits=*/true));
  }
  if (options.stop_requested && options.stop_requested()) return result;
  DSV3_TRY(feed(rest));
  auto t1 = Clock::now();
  result.prefill_seconds = std::chrono::duration<double>(t1 - t0).count();

  for (int64_t step = 0; step < options.max_new_tokens; ++step) {
    DSV3_ASSIGN(int32_t token, sampler.sample(out.logits.data(), model_.vocab_size()));
    result.tokens.push_back(token);
    const bool keep_going = !on_token || on_token(token);
    if (std::find(options.stop_tokens.begin(), options.stop_tokens.end(), token) != options.stop_tokens.end()) {
      result.finish = FinishReason::Stop;
      break;
    }
    if (!keep_going || step + 1 == options.max_new_tokens || cache_.length() + 1 > limit) break;
    const int32_t one[1] = {token};
    DSV3_TRY(feed(one));
  }
  result.decode_seconds = std::chrono::duration<double>(Clock::now() - t1).count();
  return result;
}

}  // namespace dsv3
