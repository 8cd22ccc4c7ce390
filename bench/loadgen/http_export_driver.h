// Sends pre-encoded Zipkin JSON or Jaeger Thrift bodies (http_template.h) over HTTP/1.1
// keep-alive connections, as fast as the server acknowledges them or at a fixed rate, and
// counts what was acknowledged (any 2xx) the way RunLoad does for OTLP/gRPC.
//
// Each of options.connections threads drives one libcurl multi handle with its share of the
// options.concurrency requests in flight; every in-flight request has its own easy handle and
// so its own TCP connection, reused from request to request.
#pragma once

#include <string>
#include <vector>

#include "loadgen/export_driver.h"
#include "loadgen/http_template.h"

namespace tracery::bench {

// Codes in LoadResult.requests_failed_by_code: the HTTP status, or minus the CURLcode when no
// response came.
bool RunHttpLoad(const std::vector<HttpRequestGroup>& pool, HttpFormat format,
                 const LoadOptions& options, LoadResult& result, std::string& error);

}  // namespace tracery::bench
