#pragma once
// Errors in OpenAI's shape: {"error": {"message", "type", "param", "code"}} with an HTTP
// status. Messages are bounded and valid UTF-8 (they never echo unbounded user text).

#include <optional>
#include <string>

#include "base/json.h"

namespace dsv3::server {

struct ApiError {
  int status = 400;
  std::string message;
  std::string type = "invalid_request_error";
  std::optional<std::string> param;
  std::optional<std::string> code;
  // Seconds a client should wait before it retries (the Retry-After header), for refusals
  // that pass, such as a full queue.
  std::optional<int> retry_after_seconds;

  Json to_json() const;
};

// An error of any status and type (no param).
ApiError api_error(int status, std::string message, std::string type, std::optional<std::string> code = std::nullopt);
// 400 invalid_request_error.
ApiError invalid_request(std::string message, std::optional<std::string> param = std::nullopt,
                         std::optional<std::string> code = std::nullopt);

// Truncates to `max_bytes` on a character boundary and replaces invalid UTF-8, for messages.
std::string bounded_text(const std::string& s, size_t max_bytes = 120);

}  // namespace dsv3::server
