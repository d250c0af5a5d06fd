#include "runtime/request.h"

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

void RequestHandle::push(TokenOutput token) {
  {
    std::lock_guard<std::mutex> lock(mu_);
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
    reason_ = reason;
    error_ = std::move(error);
  }
  cv_.notify_all();
}

}  // namespace dsv3
