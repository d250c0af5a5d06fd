#include "runtime/request.h"

#include <cmath>

namespace dsv3 {

const char* finish_reason_name(FinishReason r) {
  switch (r) {
    case FinishReason::Stop: return "stop";
    case FinishReason::Length: return "length";
    case FinishReason::Cancelled: return "cancelled";
    case FinishReason::Failed: return "failed";
  }
  return "?";
}

Status validate_request(std::span<const int32_t> prompt, const RequestParams& params, int64_t vocab_size,
                        int64_t max_context, RequestField* field) {
  RequestField unused;
  RequestField& f = field ? *field : unused;
  f = RequestField::Prompt;
  if (prompt.empty()) return Error("the prompt is empty");
  for (int32_t t : prompt)
    if (t < 0 || t >= vocab_size)
      return error_f("token id %d is outside the vocabulary [0, %lld)", t, static_cast<long long>(vocab_size));
  if (static_cast<int64_t>(prompt.size()) > max_context)
    return error_f("the prompt has %zu tokens, more than the context limit of %lld", prompt.size(),
                   static_cast<long long>(max_context));
  f = RequestField::MaxNewTokens;
  if (params.max_new_tokens < 0) return Error("max_new_tokens must not be negative");
  f = RequestField::Sampling;
  DSV3_TRY(validate_sampling(params.sampling));
  f = RequestField::LogitBias;
  for (const auto& [id, bias] : params.sampling.logit_bias)
    if (id < 0 || id >= vocab_size || !std::isfinite(bias))
      return error_f("logit_bias: token %d with bias %g is outside the vocabulary or not finite", id,
                     static_cast<double>(bias));
  return {};
}

RequestUpdate RequestHandle::wait(std::chrono::milliseconds timeout) {
  std::unique_lock<std::mutex> lock(mu_);
  cv_.wait_for(lock, timeout,
               [&] { return !pending_.empty() || !pending_prompt_.empty() || (finished_ && !finish_reported_); });
  RequestUpdate u;
  u.prompt.swap(pending_prompt_);
  u.tokens.swap(pending_);
  if (finished_) {
    u.finished = true;
    u.finish = reason_;
    u.error = error_;
    finish_reported_ = true;
  }
  return u;
}

RequestTiming RequestHandle::timing() const {
  std::lock_guard<std::mutex> lock(mu_);
  auto seconds = [](Clock::time_point a, Clock::time_point b) {
    return a == Clock::time_point() || b == Clock::time_point() ? 0.0 : std::chrono::duration<double>(b - a).count();
  };
  const Clock::time_point prefill_end = first_token_ != Clock::time_point() ? first_token_ : finished_at_;
  return {seconds(submitted_, admitted_), seconds(admitted_, prefill_end), seconds(first_token_, finished_at_)};
}

void RequestHandle::mark_admitted() {
  std::lock_guard<std::mutex> lock(mu_);
  admitted_ = Clock::now();
}

void RequestHandle::push(TokenOutput token) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (first_token_ == Clock::time_point()) first_token_ = Clock::now();
    pending_.push_back(std::move(token));
  }
  cv_.notify_all();
}

void RequestHandle::push_prompt(std::vector<TokenOutput> scored) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    for (auto& t : scored) pending_prompt_.push_back(std::move(t));
  }
  cv_.notify_all();
}

void RequestHandle::finish(FinishReason reason, std::string error) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (finished_) return;
    finished_ = true;
    finished_at_ = Clock::now();
    reason_ = reason;
    error_ = std::move(error);
  }
  cv_.notify_all();
}

RequestResult wait_for_result(RequestHandle& handle, const std::function<void(const TokenOutput&)>& on_token,
                              const std::function<bool()>& cancel_if) {
  RequestResult r;
  for (;;) {
    RequestUpdate u = handle.wait(std::chrono::milliseconds(50));
    for (auto& t : u.prompt) r.prompt.push_back(std::move(t));
    for (auto& t : u.tokens) {
      if (on_token) on_token(t);
      r.tokens.push_back(std::move(t));
    }
    if (u.finished) {
      r.finish = u.finish;
      r.error = std::move(u.error);
      break;
    }
    if (cancel_if && cancel_if()) handle.cancel();
  }
  r.timing = handle.timing();
  r.cached_tokens = handle.cached_tokens();
  return r;
}

}  // namespace dsv3
