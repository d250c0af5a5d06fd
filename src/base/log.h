#pragma once
// Minimal leveled logging to stderr. The level comes from DSV3_LOG (error|warn|info|debug) or
// set_log_level(); the default is warn so that commands print only what they produce.

#include <string>

namespace dsv3 {

enum class LogLevel { Error = 0, Warn = 1, Info = 2, Debug = 3 };

void set_log_level(LogLevel level);
LogLevel log_level();
[[gnu::format(printf, 2, 3)]] void log_at(LogLevel level, const char* fmt, ...);

}  // namespace dsv3

#define DSV3_LOG_ERROR(...) ::dsv3::log_at(::dsv3::LogLevel::Error, __VA_ARGS__)
#define DSV3_LOG_WARN(...) ::dsv3::log_at(::dsv3::LogLevel::Warn, __VA_ARGS__)
#define DSV3_LOG_INFO(...) ::dsv3::log_at(::dsv3::LogLevel::Info, __VA_ARGS__)
#define DSV3_LOG_DEBUG(...)                                                             \
  do {                                                                                  \
    if (::dsv3::log_level() >= ::dsv3::LogLevel::Debug) ::dsv3::log_at(::dsv3::LogLevel::Debug, __VA_ARGS__); \
  } while (0)
