// tracery's configuration: one YAML file with Tempo's key names where both have the same
// thing. Defaults, validation and the reference documentation all come from one table
// (config.cpp): an unknown key or a bad value stops the process with the key and line.
#pragma once

#include <chrono>
#include <cstdint>
#include <string>

#include "common/status.h"
#include "generator/generator.h"

namespace tracery::server {

struct TenantLimits {
  // Per second, per tenant. Tempo's defaults (15 MB/s, 20 MB burst) would cap one process at
  // ~55 k spans/s; a single tracery ingests several times that, and memory is bounded by
  // ingester.max_live_bytes, so the defaults leave room for that.
  uint64_t rate_limit_bytes = 100'000'000;
  uint64_t burst_size_bytes = 200'000'000;
  uint64_t max_traces_per_user = 0;         // live traces per tenant; 0 = unlimited
  uint64_t max_bytes_per_trace = 5'000'000;
};

struct Config {
  std::string target = "all";
  bool multitenancy_enabled = false;
  // Tempo's streaming query API (gRPC, HTTP/2) on the query port beside HTTP/1.1.
  bool stream_over_http_enabled = false;
  // Search (Tempo's query_frontend keys) and the per-query budget.
  uint32_t search_default_result_limit = 20, search_max_result_limit = 262144, search_max_spans_per_span_set = 100;
  uint32_t metrics_max_exemplars = 100;
  std::chrono::nanoseconds search_timeout = std::chrono::seconds(30);
  uint64_t search_max_bytes = 0;
  std::string log_level = "info";

  std::string http_listen_address = "0.0.0.0";
  uint16_t http_listen_port = 3200;

  bool otlp_grpc_enabled = true;
  std::string otlp_grpc_endpoint = "0.0.0.0:4317";
  bool otlp_http_enabled = true;
  std::string otlp_http_endpoint = "0.0.0.0:4318";
  // Zipkin (distributor.receivers.zipkin): off unless listed. The endpoint default is the
  // Collector's (and so Tempo's) since it moved receivers to localhost.
  bool zipkin_enabled = false;
  std::string zipkin_endpoint = "localhost:9411";
  bool zipkin_parse_string_tags = false;
  // Jaeger (distributor.receivers.jaeger.protocols.*): each off unless listed; defaults are
  // the Collector's endpoints (host localhost, bound as 127.0.0.1).
  bool jaeger_grpc_enabled = false;
  std::string jaeger_grpc_endpoint = "localhost:14250";
  bool jaeger_thrift_http_enabled = false;
  std::string jaeger_thrift_http_endpoint = "localhost:14268";
  bool jaeger_thrift_compact_enabled = false;
  std::string jaeger_thrift_compact_endpoint = "localhost:6831";
  bool jaeger_thrift_binary_enabled = false;
  std::string jaeger_thrift_binary_endpoint = "localhost:6832";
  uint64_t max_request_bytes = 16ull << 20;   // after decompression
  uint64_t max_inflight_bytes = 512ull << 20; // requests received but not yet acknowledged

  std::chrono::nanoseconds trace_idle_period = std::chrono::seconds(10);
  std::chrono::nanoseconds max_block_duration = std::chrono::minutes(30);
  uint64_t max_block_bytes = 100ull << 20;
  uint64_t trace_size_records = 100'000;
  uint64_t max_live_bytes = 192ull << 20;  // memory of the live-trace index (spans wait on disk)

  std::string storage_backend = "local";
  std::string local_path = "./data/blocks";
  std::string wal_path = "./data/wal";
  std::string wal_fsync = "batch";
  uint64_t wal_segment_bytes = 128ull << 20;
  int block_zstd_level = 3;
  uint32_t block_row_group_spans = 1024;

  TenantLimits limits;
  generator::Options generator;  // metrics_generator; processors enabled by `enabled: true` or overrides
};

// Parses YAML text; `source` names it in errors ("tracery.yaml").
Result<Config> ParseConfig(const std::string& yaml, const std::string& source);
Result<Config> LoadConfigFile(const std::string& path);
// Markdown reference of every key: name, type, default, meaning.
std::string ConfigReference();

}  // namespace tracery::server
