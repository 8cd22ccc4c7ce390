// Encodes an OTLP export request as the Zipkin v2 JSON list an OpenTelemetry SDK's Zipkin
// exporter would POST to /api/v2/spans: the inverse of the mapping tracery's receiver applies
// (docs/api.md, "Zipkin"), so the server stores the same spans it would get over OTLP.
#pragma once

#include <string>

#include "loadgen/http_template.h"
#include "opentelemetry/proto/collector/trace/v1/trace_service.pb.h"

namespace tracery::bench {

// One body with every span of `request`. Fails on a timestamp that cannot be patched in place
// (not a 16-digit microsecond count, see http_template.h).
bool EncodeZipkinGroup(const opentelemetry::proto::collector::trace::v1::ExportTraceServiceRequest& request,
                       HttpRequestGroup& group, std::string& error);

}  // namespace tracery::bench
