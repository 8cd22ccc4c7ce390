// The OTLP/JSON mapping: lowerCamelCase keys, hex trace and span IDs, 64-bit integers as
// decimal strings, bytes as base64. Reading accepts what the specification allows (enums as
// numbers or names, integers as numbers or strings, snake_case keys); writing produces the
// shape Tempo answers with (enum names, defaults omitted).
#pragma once

#include <string>
#include <string_view>

#include "common/status.h"
#include "otlp/model.h"

namespace tracery::otlp {

// Parses an ExportTraceServiceRequest (or TracesData) in OTLP/JSON.
Status ParseJsonRequest(std::string_view json, TracesData& out);

// Appends `[ResourceSpans, ...]` as a JSON array.
void WriteJsonResourceSpans(const TracesData& data, std::string& out);

// Appends one AnyValue (`{"stringValue":...}`) / a `[KeyValue, ...]` array, as in spans.
void WriteJsonAnyValue(const AnyValue& value, std::string& out);
void WriteJsonKeyValues(const Attributes& attributes, std::string& out);
// A double as Go's encoding/json writes it (NaN and infinities as strings, as jsonpb does).
void AppendJsonDouble(std::string& out, double value);
// JSON string escaping, shared by every JSON writer of the project.
void AppendJsonString(std::string& out, std::string_view text);

}  // namespace tracery::otlp
