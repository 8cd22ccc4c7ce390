// Sends a pool of request templates to an OTLP/gRPC endpoint as fast as it accepts them, or
// at a fixed rate of spans per second (so that runs to be compared do the same work).
//
// Each connection is one channel with its own completion queue and one thread; the thread
// keeps its share of the in-flight requests outstanding (async unary calls through the
// generic stub, so the pre-encoded bytes go out without a protobuf round trip) and starts
// a new one whenever one completes.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "loadgen/request_template.h"

namespace tracery::bench {

struct LoadOptions {
  std::string endpoint = "127.0.0.1:4317";
  int concurrency = 8;           // requests in flight, over all connections
  int connections = 1;
  std::string tenant;            // sent as x-scope-orgid when not empty
  double duration_seconds = 0;   // stop starting requests after this long (0: no limit)
  uint64_t max_traces = 0;       // stop once this many traces were sent (0: no limit)
  double spans_per_second = 0;   // fixed send rate, paced per request (0: as fast as acknowledged)
  double timeout_seconds = 30;   // per request
  bool keep_acknowledged_ids = false;
  uint64_t id_salt = 0;
  // OTLP/gRPC over TLS when tls_ca_file is set: PEM root CA the server's certificate must
  // chain to, and for mutual TLS the client's certificate and key.
  std::string tls_ca_file;
  std::string tls_cert_file;
  std::string tls_key_file;
};

struct LoadResult {
  uint64_t requests_ok = 0;
  std::map<int, uint64_t> requests_failed_by_code;  // grpc::StatusCode -> count
  std::map<int, std::string> first_error_by_code;   // one message per code, for the report
  uint64_t spans_sent = 0;
  uint64_t spans_acknowledged = 0;  // in OK responses, minus partial-success rejections
  uint64_t spans_rejected = 0;      // partial_success.rejected_spans
  uint64_t retries = 0;             // requests sent again after RESOURCE_EXHAUSTED / UNAVAILABLE
  uint64_t traces_sent = 0;
  uint64_t traces_acknowledged = 0;
  uint64_t request_bytes_sent = 0;
  uint64_t request_bytes_acknowledged = 0;
  double elapsed_seconds = 0;
  std::vector<TraceId> acknowledged_trace_ids;  // only with keep_acknowledged_ids
};

// Adds the counts of one connection's `part` to `total`.
void MergeLoadResult(const LoadResult& part, LoadResult& total);

// Returns false (with `error`) only when no connection could be made at all, or a TLS file
// cannot be read.
bool RunLoad(const std::vector<RequestTemplate>& pool, const LoadOptions& options,
             LoadResult& result, std::string& error);

}  // namespace tracery::bench
