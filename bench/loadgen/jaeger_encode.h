// Encodes an OTLP export request as Jaeger Thrift: one jaeger.Batch{process, spans} per
// ResourceSpans (a Jaeger client sends one Batch per process), each in the Thrift binary
// protocol, as POSTed to /api/traces. The inverse of the mapping tracery's receiver applies
// (docs/api.md, "Jaeger").
#pragma once

#include <string>

#include "loadgen/http_template.h"
#include "opentelemetry/proto/collector/trace/v1/trace_service.pb.h"

namespace tracery::bench {

bool EncodeJaegerGroup(const opentelemetry::proto::collector::trace::v1::ExportTraceServiceRequest& request,
                       HttpRequestGroup& group, std::string& error);

}  // namespace tracery::bench
