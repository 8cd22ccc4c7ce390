// Status and Result<T>: errors are values (STYLE rule 2). A Status carries a code that the
// receivers map onto HTTP and gRPC status codes, and a message that names the failed input.
#pragma once

#include <optional>
#include <string>
#include <utility>
#include <variant>

namespace tracery {

enum class StatusCode {
  kOk = 0,
  kInvalidArgument,    // malformed input: HTTP 400, gRPC INVALID_ARGUMENT
  kNotFound,           // HTTP 404, gRPC NOT_FOUND
  kUnauthenticated,    // missing tenant: HTTP 401, gRPC UNAUTHENTICATED
  kTooLarge,           // HTTP 413, gRPC RESOURCE_EXHAUSTED
  kUnsupportedMedia,   // HTTP 415, gRPC INVALID_ARGUMENT
  kResourceExhausted,  // rate or memory limit: HTTP 429, gRPC RESOURCE_EXHAUSTED
  kUnavailable,        // shutting down, not ready: HTTP 503, gRPC UNAVAILABLE
  kCorruption,         // a stored file fails its checks
  kIoError,
  kInternal,
};

class [[nodiscard]] Status {
 public:
  Status() = default;
  Status(StatusCode code, std::string message) : code_(code), message_(std::move(message)) {}

  static Status Ok() { return Status(); }
  static Status InvalidArgument(std::string m) { return {StatusCode::kInvalidArgument, std::move(m)}; }
  static Status NotFound(std::string m) { return {StatusCode::kNotFound, std::move(m)}; }
  static Status Unauthenticated(std::string m) { return {StatusCode::kUnauthenticated, std::move(m)}; }
  static Status TooLarge(std::string m) { return {StatusCode::kTooLarge, std::move(m)}; }
  static Status UnsupportedMedia(std::string m) { return {StatusCode::kUnsupportedMedia, std::move(m)}; }
  static Status ResourceExhausted(std::string m) { return {StatusCode::kResourceExhausted, std::move(m)}; }
  static Status Unavailable(std::string m) { return {StatusCode::kUnavailable, std::move(m)}; }
  static Status Corruption(std::string m) { return {StatusCode::kCorruption, std::move(m)}; }
  static Status IoError(std::string m) { return {StatusCode::kIoError, std::move(m)}; }
  static Status Internal(std::string m) { return {StatusCode::kInternal, std::move(m)}; }

  bool ok() const { return code_ == StatusCode::kOk; }
  StatusCode code() const { return code_; }
  const std::string& message() const { return message_; }
  std::string ToString() const;

 private:
  StatusCode code_ = StatusCode::kOk;
  std::string message_;
};

// Result<T> holds either a value or a non-OK Status.
template <typename T>
class [[nodiscard]] Result {
 public:
  Result(T value) : value_(std::move(value)) {}  // NOLINT(google-explicit-constructor)
  Result(Status status) : status_(std::move(status)) {}  // NOLINT(google-explicit-constructor)

  bool ok() const { return value_.has_value(); }
  const Status& status() const { return status_; }
  T& value() & { return *value_; }
  const T& value() const& { return *value_; }
  T&& value() && { return std::move(*value_); }
  T* operator->() { return &*value_; }
  const T* operator->() const { return &*value_; }
  T& operator*() { return *value_; }

 private:
  std::optional<T> value_;
  Status status_;
};

#define TRACERY_RETURN_IF_ERROR(expr)        \
  do {                                       \
    ::tracery::Status status_ = (expr);      \
    if (!status_.ok()) return status_;       \
  } while (0)

}  // namespace tracery
