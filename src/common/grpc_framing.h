// The bytes of gRPC over HTTP/2 that are not HTTP/2 itself (gRPC's PROTOCOL-HTTP2.md): the
// Length-Prefixed-Message of a request body, grpc-timeout, grpc-encoding and its message
// compressions, and the encodings of grpc-message and grpc-status-details-bin. Pure functions,
// used by GrpcH2Server (common/grpc_h2_server.h).
#pragma once

#include <chrono>
#include <cstdint>
#include <string>
#include <string_view>

#include "common/status.h"

namespace tracery {

// gRPC status codes (the numbers are the protocol's).
enum class GrpcCode : int {
  kOk = 0,
  kCancelled = 1,
  kUnknown = 2,
  kInvalidArgument = 3,
  kDeadlineExceeded = 4,
  kNotFound = 5,
  kResourceExhausted = 8,
  kFailedPrecondition = 9,
  kUnimplemented = 12,
  kInternal = 13,
  kUnavailable = 14,
  kUnauthenticated = 16,
};

// One message of a unary request body: its compressed flag and bytes (a view into the body).
struct GrpcMessageView {
  bool compressed = false;
  std::string_view bytes;
};

// Checks a unary call's request body: one message, framed as a flag byte (0 or 1), a 4-byte
// big-endian length and that many bytes. `complete` says END_STREAM was seen; before it, only
// what is already wrong is reported (a bad flag, an announced length over the limit, bytes
// past the first message), so a bad stream is answered before it is all read, and ok means
// "keep reading". Errors: InvalidArgument naming the framing problem; TooLarge when the
// announced length exceeds `max_message_bytes`. On a complete, valid body `message` is set.
Status CheckUnaryGrpcBody(std::string_view body, bool complete, uint64_t max_message_bytes, GrpcMessageView* message);

// Parses grpc-timeout ("1S", "250m": at most 8 digits and a unit of H M S m u n).
bool ParseGrpcTimeout(std::string_view text, std::chrono::nanoseconds& timeout);

// Message encodings a server accepts (grpc-encoding); kUnknown for any other name.
enum class GrpcEncoding { kIdentity, kGzip, kDeflate, kZstd, kSnappy, kUnknown };
GrpcEncoding ParseGrpcEncoding(std::string_view name);  // absent header: call with "identity"
// The grpc-accept-encoding this implementation answers with.
inline constexpr std::string_view kGrpcAcceptEncoding = "identity,gzip,deflate,zstd,snappy";

// Decompresses one message: TooLarge past `max_output` bytes, InvalidArgument when the bytes
// are not valid in their encoding (naming it). gzip may hold several members; deflate is zlib
// (RFC 1950) as gRPC's "deflate" is; zstd may hold several frames; snappy is read in its
// framing format (what Go's gRPC snappy compressors send) or, without the stream identifier,
// as one raw block.
Result<std::string> DecompressGrpcMessage(std::string_view compressed, GrpcEncoding encoding, size_t max_output);

// grpc-message: UTF-8 text with bytes outside printable ASCII and '%' written as %XX.
std::string PercentEncodeGrpcMessage(std::string_view message);
std::string PercentDecodeGrpcMessage(std::string_view encoded);
// Binary metadata (-bin headers) as servers send it: base64 without padding.
std::string Base64Unpadded(std::string_view bytes);

}  // namespace tracery
