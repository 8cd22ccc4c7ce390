#include "exporter/otlp_exporter.h"

#include <zlib.h>

#include <algorithm>
#include <fstream>
#include <sstream>

#include <spdlog/spdlog.h>

#include "common/tenant.h"
#include "exporter/transport.h"
#include "otlp/wire.h"

namespace tracery::exporter {
namespace {

using Clock = std::chrono::steady_clock;

std::string DurationText(std::chrono::nanoseconds d) {
  return std::to_string(std::chrono::duration_cast<std::chrono::milliseconds>(d).count()) + "ms";
}

// Counts the `repeated T field = number` entries of a message.
template <typename Visit>
void ForEachField(std::string_view message, uint32_t number, Visit&& visit) {
  ByteReader reader(message);
  otlp::WireField field;
  while (!reader.empty() && otlp::ReadField(reader, field)) {
    if (field.number == number && field.type == otlp::kLengthDelimited) visit(field.bytes);
  }
}

}  // namespace

uint64_t CountSpans(std::string_view encoded_traces_data) {
  uint64_t spans = 0;
  // TracesData{resource_spans=1}; ResourceSpans{scope_spans=2}; ScopeSpans{spans=2}
  ForEachField(encoded_traces_data, 1, [&](std::string_view resource_spans) {
    ForEachField(resource_spans, 2, [&](std::string_view scope_spans) {
      ForEachField(scope_spans, 2, [&](std::string_view) { ++spans; });
    });
  });
  return spans;
}

namespace detail {

std::string GzipCompress(std::string_view data) {
  z_stream stream{};
  // windowBits 15 + 16: a gzip header and trailer around the deflate stream.
  if (deflateInit2(&stream, Z_DEFAULT_COMPRESSION, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY) != Z_OK) return {};
  std::string out(deflateBound(&stream, uLong(data.size())) + 32, '\0');
  stream.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(data.data()));
  stream.avail_in = uInt(data.size());
  stream.next_out = reinterpret_cast<Bytef*>(out.data());
  stream.avail_out = uInt(out.size());
  int rc = deflate(&stream, Z_FINISH);
  out.resize(stream.total_out);
  deflateEnd(&stream);
  return rc == Z_STREAM_END ? out : std::string();
}

void ReadPartialSuccess(std::string_view response, Attempt& attempt) {
  ForEachField(response, 1, [&](std::string_view partial) {
    ByteReader reader(partial);
    otlp::WireField field;
    while (!reader.empty() && otlp::ReadField(reader, field)) {
      if (field.number == 1 && field.type == otlp::kVarint) attempt.rejected_spans = field.integer;
      if (field.number == 2 && field.type == otlp::kLengthDelimited) attempt.rejected_message = std::string(field.bytes);
    }
  });
}

std::string StatusMessage(std::string_view encoded_status) {
  std::string message;
  ForEachField(encoded_status, 2, [&](std::string_view text) { message = std::string(text); });
  return message;
}

std::chrono::nanoseconds RetryInfoDelay(std::string_view encoded_status) {
  std::chrono::nanoseconds delay{0};
  // details=3: google.protobuf.Any{type_url=1, value=2}; RetryInfo{retry_delay=1: Duration{seconds=1, nanos=2}}
  ForEachField(encoded_status, 3, [&](std::string_view any) {
    std::string_view type_url, value;
    ByteReader reader(any);
    otlp::WireField field;
    while (!reader.empty() && otlp::ReadField(reader, field)) {
      if (field.type != otlp::kLengthDelimited) continue;
      if (field.number == 1) type_url = field.bytes;
      if (field.number == 2) value = field.bytes;
    }
    constexpr std::string_view kRetryInfo = "google.rpc.RetryInfo";
    if (type_url.size() < kRetryInfo.size() || type_url.substr(type_url.size() - kRetryInfo.size()) != kRetryInfo) return;
    ForEachField(value, 1, [&](std::string_view duration) {
      ByteReader duration_reader(duration);
      while (!duration_reader.empty() && otlp::ReadField(duration_reader, field)) {
        if (field.number == 1 && field.type == otlp::kVarint) delay += std::chrono::seconds(int64_t(field.integer));
        if (field.number == 2 && field.type == otlp::kVarint) delay += std::chrono::nanoseconds(int64_t(field.integer));
      }
    });
  });
  return std::max(delay, std::chrono::nanoseconds(0));
}

Result<std::string> ReadTlsFile(const std::string& path, const ExporterOptions& options, const char* key) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream contents;
  contents << in.rdbuf();
  if (!in) return Status::InvalidArgument("exporter " + options.name + ": cannot read " + key + " " + path);
  return contents.str();
}

}  // namespace detail

Result<std::unique_ptr<OtlpExporter>> OtlpExporter::Create(ExporterOptions options, MetricsRegistry& metrics) {
  if (options.endpoint.empty() && options.traces_endpoint.empty())
    return Status::InvalidArgument("exporter " + options.name + ": `endpoint` is required");
  auto transport = options.protocol == Protocol::kGrpc ? detail::MakeGrpcTransport(options) : detail::MakeHttpTransport(options);
  if (!transport.ok()) return transport.status();
  return std::unique_ptr<OtlpExporter>(new OtlpExporter(std::move(options), std::move(transport).value(), metrics));
}

OtlpExporter::OtlpExporter(ExporterOptions options, std::unique_ptr<detail::Transport> transport, MetricsRegistry& m)
    : options_(std::move(options)),
      transport_(std::move(transport)),
      jitter_state_(uint64_t(Clock::now().time_since_epoch().count()) | 1),
      requests_sent_(m.GetCounter("tracery_exporter_requests_total", "Export requests by exporter and result.",
                                  {{"exporter", options_.name}, {"result", "sent"}})),
      requests_failed_(m.GetCounter("tracery_exporter_requests_total", "Export requests by exporter and result.",
                                    {{"exporter", options_.name}, {"result", "failed"}})),
      requests_retried_(m.GetCounter("tracery_exporter_retries_total", "Export attempts that failed and were retried.",
                                     {{"exporter", options_.name}})),
      spans_sent_(m.GetCounter("tracery_exporter_spans_total", "Spans exported, by exporter and result.",
                               {{"exporter", options_.name}, {"result", "sent"}})),
      spans_failed_(m.GetCounter("tracery_exporter_spans_total", "Spans exported, by exporter and result.",
                                 {{"exporter", options_.name}, {"result", "failed"}})),
      spans_rejected_(m.GetCounter("tracery_exporter_spans_total", "Spans exported, by exporter and result.",
                                   {{"exporter", options_.name}, {"result", "rejected"}})) {}

OtlpExporter::~OtlpExporter() { Shutdown(); }

void OtlpExporter::Shutdown() {
  {
    std::lock_guard lock(mutex_);
    shutting_down_ = true;
  }
  wake_.notify_all();
}

bool OtlpExporter::WaitBeforeRetry(std::chrono::nanoseconds wait) {
  std::unique_lock lock(mutex_);
  return !wake_.wait_for(lock, wait, [&] { return shutting_down_; });
}

std::chrono::nanoseconds OtlpExporter::Jitter(std::chrono::nanoseconds interval) {
  double unit;  // in [0, 1)
  {
    std::lock_guard lock(mutex_);
    jitter_state_ ^= jitter_state_ << 13;  // xorshift64: jitter needs spread, not quality
    jitter_state_ ^= jitter_state_ >> 7;
    jitter_state_ ^= jitter_state_ << 17;
    unit = double(jitter_state_ >> 11) / double(uint64_t(1) << 53);
  }
  double factor = 1 + options_.retry.randomization_factor * (2 * unit - 1);
  return std::chrono::nanoseconds(int64_t(double(interval.count()) * factor));
}

Status OtlpExporter::Export(const std::string& tenant, std::string_view request) {
  const uint64_t spans = CountSpans(request);
  const std::string org_id = tenant == kSingleTenant ? std::string() : tenant;
  const auto first_attempt = Clock::now();
  std::chrono::nanoseconds interval = options_.retry.initial_interval;
  for (;;) {
    detail::Attempt attempt = transport_->Send(org_id, request);
    if (attempt.status.ok()) {
      requests_sent_.Add();
      uint64_t rejected = std::min(attempt.rejected_spans, spans);
      spans_sent_.Add(spans - rejected);
      if (rejected > 0 || !attempt.rejected_message.empty()) {
        spans_rejected_.Add(rejected);
        spdlog::warn("exporter {}: the receiver rejected {} of {} spans: {}", options_.name, rejected, spans,
                     attempt.rejected_message);
      }
      return Status::Ok();
    }
    auto fail = [&](Status status) {
      requests_failed_.Add();
      spans_failed_.Add(spans);
      return status;
    };
    if (!attempt.retryable) return fail(attempt.status);
    bool stopping;
    {
      std::lock_guard lock(mutex_);
      stopping = shutting_down_;
    }
    if (!options_.retry.enabled || stopping)
      return fail(Status::Unavailable(attempt.status.message() + (stopping ? " (shutting down)" : "")));
    std::chrono::nanoseconds wait = std::max(Jitter(interval), attempt.retry_after);
    const auto max_elapsed = options_.retry.max_elapsed_time;
    if (max_elapsed.count() > 0 && Clock::now() + wait - first_attempt > max_elapsed)
      return fail(Status::Unavailable(attempt.status.message() + "; gave up retrying after " +
                                      DurationText(std::chrono::duration_cast<std::chrono::nanoseconds>(Clock::now() - first_attempt))));
    requests_retried_.Add();
    spdlog::debug("exporter {}: {}; retrying in {}", options_.name, attempt.status.message(), DurationText(wait));
    if (!WaitBeforeRetry(wait)) return fail(Status::Unavailable(attempt.status.message() + " (shutting down)"));
    interval = std::min(std::chrono::nanoseconds(int64_t(double(interval.count()) * options_.retry.multiplier)),
                        options_.retry.max_interval);
  }
}

}  // namespace tracery::exporter
