#include "exporter/trace_forwarder.h"

#include "otlp/wire.h"

namespace tracery::exporter {
namespace {

// Appends `part` to the bodies, starting a new body when it does not fit in the last one.
void Append(std::vector<std::string>& bodies, std::string_view part, size_t max_bytes) {
  if (bodies.empty() || (!bodies.back().empty() && bodies.back().size() + part.size() > max_bytes)) bodies.emplace_back();
  bodies.back().append(part);
}

}  // namespace

std::vector<std::string> PackRequests(const std::vector<std::string_view>& parts, size_t max_bytes) {
  std::vector<std::string> bodies;
  for (std::string_view part : parts) {
    if (part.empty()) continue;
    if (part.size() <= max_bytes) {
      Append(bodies, part, max_bytes);
      continue;
    }
    // Too large for one body: cut it between its fields (each a whole ResourceSpans).
    ByteReader reader(part);
    otlp::WireField field;
    while (!reader.empty()) {
      const char* start = reader.position();
      if (!otlp::ReadField(reader, field)) {
        // Not fields (it passed the splitter, so this does not happen): send the rest whole.
        Append(bodies, std::string_view(start, size_t(part.data() + part.size() - start)), max_bytes);
        break;
      }
      Append(bodies, std::string_view(start, size_t(reader.position() - start)), max_bytes);
    }
  }
  return bodies;
}

TraceForwarder::TraceForwarder(std::vector<std::shared_ptr<OtlpExporter>> exporters, TraceForwarderOptions options)
    : exporters_(std::move(exporters)), options_(options) {}

Status TraceForwarder::Deliver(const std::string& tenant, const std::vector<ingester::KeptTrace>& traces) {
  std::vector<std::string_view> parts;
  parts.reserve(traces.size());
  for (const auto& trace : traces) parts.push_back(trace.bytes);
  std::vector<std::string> bodies = PackRequests(parts, options_.max_request_bytes);
  for (const auto& exporter : exporters_) {
    for (const auto& body : bodies) {
      Status status = exporter->Export(tenant, body);
      if (!status.ok()) return status;
    }
  }
  return Status::Ok();
}

}  // namespace tracery::exporter
