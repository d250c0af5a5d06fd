#pragma once
// Errors from input are values: a fallible function returns Result<T> (or Status), and each
// caller on the way up adds context, so a failure deep in a shard reads
//   tensor 'model.layers.7.mlp.experts.3.up_proj.weight': byte range exceeds file (model-00002.safetensors)
// Invariants of the program itself are checked with DSV3_CHECK (never compiled out), not assert.

#include <cstdio>
#include <cstdlib>
#include <string>
#include <utility>
#include <variant>

namespace dsv3 {

class Error {
 public:
  explicit Error(std::string message) : message_(std::move(message)) {}
  const std::string& message() const { return message_; }
  // Prepends "context: " to the message, outermost context first.
  Error context(const std::string& ctx) const& { return Error(ctx + ": " + message_); }
  Error context(const std::string& ctx) && { return Error(ctx + ": " + std::move(message_)); }

 private:
  std::string message_;
};

template <typename T>
class [[nodiscard]] Result {
 public:
  Result(T value) : v_(std::move(value)) {}  // NOLINT: implicit by design
  Result(Error error) : v_(std::move(error)) {}  // NOLINT
  bool ok() const { return v_.index() == 0; }
  explicit operator bool() const { return ok(); }
  T& value() & { return std::get<0>(v_); }
  const T& value() const& { return std::get<0>(v_); }
  T&& value() && { return std::get<0>(std::move(v_)); }
  T& operator*() & { return value(); }
  const T& operator*() const& { return value(); }
  T* operator->() { return &value(); }
  const T* operator->() const { return &value(); }
  const Error& error() const& { return std::get<1>(v_); }
  Error&& error() && { return std::get<1>(std::move(v_)); }
  Result context(const std::string& ctx) && {
    if (ok()) return std::move(*this);
    return std::move(*this).error().context(ctx);
  }

 private:
  std::variant<T, Error> v_;
};

template <>
class [[nodiscard]] Result<void> {
 public:
  Result() = default;
  Result(Error error) : error_(std::move(error)), ok_(false) {}  // NOLINT
  bool ok() const { return ok_; }
  explicit operator bool() const { return ok_; }
  const Error& error() const& { return error_; }
  Error&& error() && { return std::move(error_); }
  Result context(const std::string& ctx) && {
    if (ok_) return {};
    return std::move(error_).context(ctx);
  }

 private:
  Error error_{""};
  bool ok_ = true;
};

using Status = Result<void>;

inline Status ok_status() { return {}; }

// Builds an Error from printf-style arguments.
[[gnu::format(printf, 1, 2)]] Error error_f(const char* fmt, ...);
// printf into a std::string.
[[gnu::format(printf, 1, 2)]] std::string str_f(const char* fmt, ...);

[[noreturn]] void check_failed(const char* file, int line, const char* expr, const std::string& msg);

}  // namespace dsv3

#define DSV3_CONCAT_INNER(a, b) a##b
#define DSV3_CONCAT(a, b) DSV3_CONCAT_INNER(a, b)

// Returns the error of a Status/Result expression from the enclosing function.
#define DSV3_TRY(expr)                                     \
  do {                                                     \
    auto&& dsv3_try_r_ = (expr);                           \
    if (!dsv3_try_r_.ok()) return std::move(dsv3_try_r_).error(); \
  } while (0)

// Like DSV3_TRY, adding context to the error.
#define DSV3_TRY_CTX(expr, ctx)                                          \
  do {                                                                   \
    auto&& dsv3_try_r_ = (expr);                                         \
    if (!dsv3_try_r_.ok()) return std::move(dsv3_try_r_).error().context(ctx); \
  } while (0)

#define DSV3_ASSIGN_IMPL(tmp, lhs, expr)             \
  auto tmp = (expr);                                 \
  if (!tmp.ok()) return std::move(tmp).error();      \
  lhs = std::move(tmp).value()

// `DSV3_ASSIGN(auto x, f());` declares x from a Result or returns its error.
#define DSV3_ASSIGN(lhs, expr) DSV3_ASSIGN_IMPL(DSV3_CONCAT(dsv3_assign_r_, __LINE__), lhs, expr)

// Invariant check, kept in release builds. Never used to validate user input.
#define DSV3_CHECK(cond, ...)                                                        \
  do {                                                                              \
    if (!(cond)) ::dsv3::check_failed(__FILE__, __LINE__, #cond, ::dsv3::str_f("" __VA_ARGS__)); \
  } while (0)
