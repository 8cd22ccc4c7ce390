// The Zipkin receiver, as Tempo has it (the OpenTelemetry Collector's zipkin receiver):
// POST /api/v2/spans (JSON or zipkin.proto3 ListOfSpans) and POST /api/v1/spans (v1 JSON).
// Spans are translated into an OTLP ExportTraceServiceRequest the way the Collector's
// zipkinv2 translator does (docs/api.md, "Zipkin") and pushed through the distributor, so
// tenants, limits, the WAL and the generator treat them exactly as OTLP.
#pragma once

#include <cstdint>
#include <string_view>

#include "common/http_server.h"
#include "common/status.h"
#include "distributor/distributor.h"
#include "otlp/model.h"

namespace tracery::receiver {

struct ZipkinOptions {
  // The Collector's parse_string_tags: tag values that look like integers, decimals or
  // true/false become int, double or bool attributes instead of strings.
  bool parse_string_tags = false;
};

enum class ZipkinFormat { kJsonV2, kProtobufV2, kJsonV1 };

// Translates one request body into OTLP. InvalidArgument, naming the span and field, for
// anything malformed: bad JSON or protobuf, an invalid ID, a string that is not UTF-8.
Status TranslateZipkin(std::string_view body, ZipkinFormat format, const ZipkinOptions& options, otlp::TracesData& out);

// The handler of the Zipkin HTTP API, for an HttpServer. `max_request_bytes` bounds a body
// after decompression, as for OTLP/HTTP.
HttpHandler MakeZipkinHttpHandler(distributor::Distributor& distributor, uint64_t max_request_bytes,
                                  ZipkinOptions options);

}  // namespace tracery::receiver
