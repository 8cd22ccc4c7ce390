// Private to src/exporter: one attempt at sending an encoded ExportTraceServiceRequest, over
// OTLP/gRPC (grpc_transport.cpp) or OTLP/HTTP protobuf (http_transport.cpp). The retry loop
// around attempts, the counters and the tenant rules live in otlp_exporter.cpp.
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

#include "common/status.h"
#include "exporter/otlp_exporter.h"

namespace tracery::exporter::detail {

// What one attempt came to. `status` is OK, or an error whose message names the endpoint
// and what the server said.
struct Attempt {
  Status status;
  bool retryable = false;
  std::chrono::nanoseconds retry_after{0};  // server's hint (RetryInfo, Retry-After); 0: none
  uint64_t rejected_spans = 0;              // partial success of an OK answer
  std::string rejected_message;
};

// Thread-safe: Send may be called from many threads at once.
class Transport {
 public:
  virtual ~Transport() = default;
  // `tenant` is sent as X-Scope-OrgID when not empty. Bounded by options.timeout.
  virtual Attempt Send(const std::string& tenant, std::string_view request) = 0;
};

// Fail with InvalidArgument, naming the exporter, on a bad endpoint or unreadable TLS file.
Result<std::unique_ptr<Transport>> MakeGrpcTransport(const ExporterOptions& options);
Result<std::unique_ptr<Transport>> MakeHttpTransport(const ExporterOptions& options);

// gzip (RFC 1952) of `data`, for OTLP/HTTP's Content-Encoding: gzip.
std::string GzipCompress(std::string_view data);
// ExportTraceServiceResponse{partial_success=1{rejected_spans=1, error_message=2}}; a
// malformed response counts as a plain success (the data was accepted).
void ReadPartialSuccess(std::string_view response, Attempt& attempt);
// google.rpc.Status{code=1, message=2, details=3}: the message, and the delay of a
// google.rpc.RetryInfo detail (0 when absent).
std::string StatusMessage(std::string_view encoded_status);
std::chrono::nanoseconds RetryInfoDelay(std::string_view encoded_status);
// Reads a whole file; the error names the exporter's config key.
Result<std::string> ReadTlsFile(const std::string& path, const ExporterOptions& options, const char* key);

}  // namespace tracery::exporter::detail
