// loadgen: sends realistic traces to a tracery (or any OTLP/gRPC, Zipkin or Jaeger) endpoint as
// fast as it accepts them, and reports what was acknowledged. See bench/README.md.
//
// The traces are generated before the clock starts (a pool of encoded requests); the timed
// run only copies a template and patches its trace IDs and timestamps, so what is measured
// is the server, not the generator.
#include <chrono>
#include <cstdio>
#include <fstream>
#include <random>
#include <string>

#include <CLI/CLI.hpp>
#include <fmt/core.h>
#include <grpcpp/support/status.h>
#include <sys/resource.h>

#include "loadgen/export_driver.h"
#include "loadgen/http_export_driver.h"
#include "loadgen/jaeger_encode.h"
#include "loadgen/request_pool.h"
#include "loadgen/zipkin_encode.h"
#include "opentelemetry/proto/collector/trace/v1/trace_service.pb.h"

namespace {

using tracery::bench::HttpFormat;
using tracery::bench::HttpRequestGroup;
using tracery::bench::LoadOptions;
using tracery::bench::LoadResult;
using tracery::bench::PoolOptions;
using tracery::bench::RequestPool;

uint64_t UnixNowNs() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

double ProcessCpuSeconds() {
  rusage usage{};
  getrusage(RUSAGE_SELF, &usage);
  return usage.ru_utime.tv_sec + usage.ru_stime.tv_sec +
         (usage.ru_utime.tv_usec + usage.ru_stime.tv_usec) / 1e6;
}

// HTTP formats record the HTTP status, or minus the libcurl error when no answer came.
std::string HttpCodeName(int code) {
  return code < 0 ? "CURL_ERROR_" + std::to_string(-code) : "HTTP_" + std::to_string(code);
}

std::string StatusCodeName(int code) {
  static constexpr const char* kNames[] = {
      "OK", "CANCELLED", "UNKNOWN", "INVALID_ARGUMENT", "DEADLINE_EXCEEDED", "NOT_FOUND",
      "ALREADY_EXISTS", "PERMISSION_DENIED", "RESOURCE_EXHAUSTED", "FAILED_PRECONDITION",
      "ABORTED", "OUT_OF_RANGE", "UNIMPLEMENTED", "INTERNAL", "UNAVAILABLE", "DATA_LOSS",
      "UNAUTHENTICATED"};
  if (code >= 0 && code < static_cast<int>(std::size(kNames))) return kNames[code];
  return "CODE_" + std::to_string(code);
}

void PrintPool(const RequestPool& pool) {
  const auto& summary = pool.summary;
  fmt::print("pool: {} requests, {} traces, {} spans ({:.1f} spans/trace, {:.0f} spans/request)\n",
             summary.requests, summary.traces, summary.spans,
             double(summary.spans) / summary.traces, double(summary.spans) / summary.requests);
  fmt::print("pool: {:.1f} bytes/span encoded, {:.2f}% spans with error status, "
             "{:.2f}% spans with events\n",
             double(summary.encoded_bytes) / summary.spans,
             100.0 * summary.error_spans / summary.spans,
             100.0 * summary.spans_with_events / summary.spans);
}

void PrintResult(const LoadResult& result, double cpu_seconds, bool http) {
  const double seconds = result.elapsed_seconds > 0 ? result.elapsed_seconds : 1;
  uint64_t failed = 0;
  for (const auto& [code, count] : result.requests_failed_by_code) failed += count;
  fmt::print("\nloadgen summary\n");
  fmt::print("  elapsed_seconds          {:.2f}\n", result.elapsed_seconds);
  fmt::print("  requests_ok              {}\n", result.requests_ok);
  fmt::print("  requests_failed          {}\n", failed);
  for (const auto& [code, count] : result.requests_failed_by_code) {
    fmt::print("    {:<22} {}  (first: {})\n", http ? HttpCodeName(code) : StatusCodeName(code), count,
               result.first_error_by_code.at(code));
  }
  fmt::print("  spans_sent               {}\n", result.spans_sent);
  fmt::print("  spans_acknowledged       {}\n", result.spans_acknowledged);
  fmt::print("  spans_rejected_partial   {}\n", result.spans_rejected);
  fmt::print("  requests_retried         {}\n", result.retries);
  fmt::print("  traces_acknowledged      {}\n", result.traces_acknowledged);
  fmt::print("  spans_per_second         {:.0f}\n", result.spans_acknowledged / seconds);
  fmt::print("  request_mb_per_second    {:.2f}\n", result.request_bytes_acknowledged / seconds / 1e6);
  fmt::print("  bytes_per_span           {:.1f}\n",
             result.spans_sent ? double(result.request_bytes_sent) / result.spans_sent : 0.0);
  fmt::print("  loadgen_cpu_seconds      {:.2f}\n", cpu_seconds);
}

bool WriteTraceIds(const std::string& path, const LoadResult& result) {
  std::ofstream out(path, std::ios::trunc);
  if (!out) return false;
  std::string buffer;
  buffer.reserve(result.acknowledged_trace_ids.size() * 33);
  for (const auto& id : result.acknowledged_trace_ids) {
    buffer += tracery::bench::HexOf(id);
    buffer += '\n';
  }
  out << buffer;
  return static_cast<bool>(out);
}

// The same spans as the OTLP pool, encoded for `format`: each OTLP request is decoded once and
// re-encoded, before the clock starts.
bool EncodeHttpPool(const RequestPool& pool, HttpFormat format,
                    std::vector<HttpRequestGroup>& groups, std::string& error) {
  opentelemetry::proto::collector::trace::v1::ExportTraceServiceRequest request;
  uint64_t bytes = 0, bodies = 0, spans = 0;
  for (const auto& otlp : pool.requests) {
    if (!request.ParseFromString(otlp.encoded)) {
      error = "cannot decode a pool request";
      return false;
    }
    HttpRequestGroup group;
    group.generated_at_unix_ns = otlp.generated_at_unix_ns;
    const bool encoded = format == HttpFormat::kZipkinJson
                             ? tracery::bench::EncodeZipkinGroup(request, group, error)
                             : tracery::bench::EncodeJaegerGroup(request, group, error);
    if (!encoded) return false;
    for (const auto& body : group.bodies) bytes += body.encoded.size();
    bodies += group.bodies.size();
    spans += group.span_count;
    groups.push_back(std::move(group));
  }
  fmt::print("pool: {} HTTP bodies ({:.0f} spans/body), {:.1f} bytes/span encoded as {}\n",
             bodies, double(spans) / bodies, double(bytes) / spans,
             format == HttpFormat::kZipkinJson ? "Zipkin v2 JSON" : "Jaeger Thrift binary");
  return true;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"loadgen: sends realistic traces (OTLP/gRPC, Zipkin JSON or Jaeger Thrift over HTTP) and reports the throughput"};
  LoadOptions load;
  PoolOptions pool_options;
  std::string record_ids_path;
  std::string protocol = "otlp-grpc";
  app.add_option("--protocol", protocol,
                 "otlp-grpc, zipkin-json (POST /api/v2/spans) or jaeger-thrift-http (POST /api/traces)")
      ->capture_default_str()
      ->check(CLI::IsMember({"otlp-grpc", "zipkin-json", "jaeger-thrift-http"}));
  app.add_option("--endpoint", load.endpoint, "host:port (OTLP/gRPC, Zipkin or Jaeger HTTP)")
      ->capture_default_str();
  app.add_option("--tls-ca", load.tls_ca_file, "OTLP/gRPC over TLS: PEM root CA of the server");
  auto* tls_cert = app.add_option("--tls-cert", load.tls_cert_file,
                                  "OTLP/gRPC mutual TLS: PEM client certificate");
  auto* tls_key = app.add_option("--tls-key", load.tls_key_file, "key of --tls-cert");
  tls_cert->needs(tls_key);
  tls_key->needs(tls_cert);
  app.add_option("--duration", load.duration_seconds, "seconds to send (default 10 unless --traces)");
  app.add_option("--traces", load.max_traces, "stop after sending this many traces");
  app.add_option("--rate", load.spans_per_second,
                 "send this many spans per second on a fixed schedule (default: as fast as acknowledged)");
  app.add_option("--concurrency", load.concurrency, "requests in flight")->capture_default_str();
  app.add_option("--connections", load.connections,
                 "gRPC connections / HTTP client threads (one thread each)")
      ->capture_default_str();
  app.add_option("--tenant", load.tenant, "tenant, sent as x-scope-orgid");
  app.add_option("--timeout", load.timeout_seconds, "per-request deadline in seconds")
      ->capture_default_str();
  app.add_option("--record-ids", record_ids_path,
                 "write the hex IDs of acknowledged traces to this file, one per line");
  app.add_option("--spans-per-request", pool_options.spans_per_request,
                 "spans per export request (whole traces, so slightly more)")
      ->capture_default_str()->check(CLI::Range(1, 100000));
  app.add_option("--max-spans-per-trace", pool_options.max_spans_per_trace)
      ->capture_default_str()->check(CLI::Range(5, 10000));
  app.add_option("--pool-requests", pool_options.request_count,
                 "distinct requests generated before the run, then replayed with new IDs")
      ->capture_default_str()->check(CLI::Range(1, 1000000));
  app.add_option("--seed", pool_options.seed, "seed for the generated content")
      ->capture_default_str();
  CLI11_PARSE(app, argc, argv);
  const bool http = protocol != "otlp-grpc";
  if (http && !load.tls_ca_file.empty()) {
    fmt::print(stderr, "loadgen: --tls-ca applies to --protocol otlp-grpc only\n");
    return 1;
  }
  if (!load.tls_cert_file.empty() && load.tls_ca_file.empty()) {
    fmt::print(stderr, "loadgen: --tls-cert needs --tls-ca\n");
    return 1;
  }
  if (load.duration_seconds <= 0 && load.max_traces == 0) load.duration_seconds = 10;
  load.keep_acknowledged_ids = !record_ids_path.empty();
  // IDs differ between runs even with the same seed, so repeated runs never collide.
  load.id_salt = std::random_device{}() ^ (UnixNowNs() * 0x9e3779b97f4a7c15ULL);

  RequestPool pool;
  std::string error;
  const auto generation_start = std::chrono::steady_clock::now();
  if (!tracery::bench::BuildRequestPool(pool_options, UnixNowNs(), pool, error)) {
    fmt::print(stderr, "loadgen: {}\n", error);
    return 1;
  }
  PrintPool(pool);
  const HttpFormat format =
      protocol == "zipkin-json" ? HttpFormat::kZipkinJson : HttpFormat::kJaegerThrift;
  std::vector<HttpRequestGroup> http_pool;
  if (http) {
    if (!EncodeHttpPool(pool, format, http_pool, error)) {
      fmt::print(stderr, "loadgen: {}\n", error);
      return 1;
    }
    pool.requests = {};  // only the HTTP bodies are sent
  }
  fmt::print("pool: generated in {:.2f} s\n",
             std::chrono::duration<double>(std::chrono::steady_clock::now() - generation_start)
                 .count());
  std::fflush(stdout);

  LoadResult result;
  const double cpu_before = ProcessCpuSeconds();
  const bool ran = http ? tracery::bench::RunHttpLoad(http_pool, format, load, result, error)
                        : tracery::bench::RunLoad(pool.requests, load, result, error);
  if (!ran) {
    fmt::print(stderr, "loadgen: {}\n", error);
    return 1;
  }
  PrintResult(result, ProcessCpuSeconds() - cpu_before, http);
  if (!record_ids_path.empty()) {
    if (!WriteTraceIds(record_ids_path, result)) {
      fmt::print(stderr, "loadgen: cannot write trace IDs to {}\n", record_ids_path);
      return 1;
    }
    fmt::print("  trace_ids_recorded       {} -> {}\n", result.acknowledged_trace_ids.size(),
               record_ids_path);
  }
  return result.requests_ok > 0 ? 0 : 2;
}
