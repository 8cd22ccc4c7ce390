#include "common/status.h"

namespace tracery {

std::string Status::ToString() const {
  const char* name = "ok";
  switch (code_) {
    case StatusCode::kOk: return "ok";
    case StatusCode::kInvalidArgument: name = "invalid argument"; break;
    case StatusCode::kNotFound: name = "not found"; break;
    case StatusCode::kUnauthenticated: name = "unauthenticated"; break;
    case StatusCode::kTooLarge: name = "too large"; break;
    case StatusCode::kUnsupportedMedia: name = "unsupported media type"; break;
    case StatusCode::kResourceExhausted: name = "resource exhausted"; break;
    case StatusCode::kUnavailable: name = "unavailable"; break;
    case StatusCode::kCorruption: name = "corruption"; break;
    case StatusCode::kIoError: name = "io error"; break;
    case StatusCode::kInternal: name = "internal"; break;
  }
  return std::string(name) + ": " + message_;
}

}  // namespace tracery
