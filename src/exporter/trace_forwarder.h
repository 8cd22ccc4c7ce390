// The gateway's TraceSink (ingester/trace_sink.h): the traces the sampler kept go out to every
// exporter of the traces pipeline, packed into ExportTraceServiceRequest bodies of at most
// `max_request_bytes`. A KeptTrace's bytes are already `resource_spans` fields, so a body is
// the concatenation of whole traces (a trace larger than the limit is cut between its
// ResourceSpans; one ResourceSpans larger than the limit goes alone).
//
// Deliver is OK only once every exporter acknowledged every body; otherwise it returns the
// first error and the ingester keeps all the traces in its WAL for the next attempt
// (at-least-once: an exporter that had already succeeded receives them again, and the
// receiving backend removes duplicate spans). Whether the error is worth retrying:
// exporter::IsRetryableExportError.
//
// Thread-safe (the exporters are); the ingester calls it from its background pool.
#pragma once

#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "exporter/otlp_exporter.h"
#include "ingester/trace_sink.h"

namespace tracery::exporter {

struct TraceForwarderOptions {
  size_t max_request_bytes = 4 << 20;
};

class TraceForwarder : public ingester::TraceSink {
 public:
  TraceForwarder(std::vector<std::shared_ptr<OtlpExporter>> exporters, TraceForwarderOptions options = {});
  Status Deliver(const std::string& tenant, const std::vector<ingester::KeptTrace>& traces) override;

 private:
  const std::vector<std::shared_ptr<OtlpExporter>> exporters_;
  const TraceForwarderOptions options_;
};

// Packs runs of encoded `resource_spans` fields into bodies of at most `max_bytes` (see
// above). Exposed for tests and for the peer router.
std::vector<std::string> PackRequests(const std::vector<std::string_view>& parts, size_t max_bytes);

}  // namespace tracery::exporter
