// tracery's configuration: one YAML file with Tempo's key names, so that a Tempo file starts
// tracery unchanged. Every Tempo key is honoured, mapped to tracery's setting of the same
// meaning, accepted and reported once as meaning nothing in one process, or refused with a
// reason; any other key is a typo and refused with its line. Defaults, validation and the
// reference documentation come from one table (config_schema.cpp; the files are listed in
// config_internal.h). Every problem of a file is reported in one run.
#pragma once

#include <chrono>
#include <cstdint>
#include <array>
#include <map>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "common/status.h"
#include "common/tenant_limits.h"
#include "common/tls.h"
#include "generator/generator.h"
#include "sampling/sampler.h"

namespace tracery::server {

using TenantLimits = tracery::TenantLimits;

// distributor.log_received_spans / log_discarded_spans, as Tempo logs spans.
struct SpanLogOptions {
  bool enabled = false;
  bool include_all_attributes = false;
  bool filter_by_status_error = false;
};

struct Config {
  std::string target = "all";
  bool multitenancy_enabled = false;
  // Tempo's streaming query API (gRPC, HTTP/2) on the query port beside HTTP/1.1.
  bool stream_over_http_enabled = false;
  // Search (Tempo's query_frontend keys) and the per-query budget.
  uint32_t search_default_result_limit = 20, search_max_result_limit = 262144, search_max_spans_per_span_set = 100;
  uint32_t search_default_spans_per_span_set = 3;
  uint32_t metrics_max_exemplars = 100;
  std::chrono::nanoseconds search_timeout = std::chrono::seconds(30);
  uint64_t search_max_bytes = 0;
  std::string log_level = "info";
  // Tempo's http_api_prefix: the query API's routes (/api/...) live under it.
  std::string http_api_prefix;

  std::string http_listen_address = "0.0.0.0";
  uint16_t http_listen_port = 3200;
  // Tempo's gRPC port: served (the streaming query API) only when the file sets the port.
  std::string grpc_listen_address = "0.0.0.0";
  uint16_t grpc_listen_port = 0;

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
  std::chrono::nanoseconds request_stall_timeout = std::chrono::seconds(30);  // ingest: HTTP headers, gRPC DATA
  std::chrono::nanoseconds request_read_timeout = std::chrono::seconds(120);  // ingest: a whole body or message

  // TLS of each listener (off unless a cert_file/key_file is given). http_tls is Tempo's
  // server.http_tls_config (the query port, its HTTP/2 streaming included); grpc_tls is
  // server.grpc_tls_config, checked at start though tracery serves no Tempo gRPC port; the
  // receivers' are the Collector's `tls` blocks.
  TlsSettings http_tls, grpc_tls;
  TlsSettings otlp_grpc_tls, otlp_http_tls, zipkin_tls, jaeger_grpc_tls, jaeger_thrift_http_tls;

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

  // Tempo's block retention (compactor.compaction.block_retention and its 3.0 places): blocks
  // are deleted this long after their newest span ended and they were written (storage/retention.h);
  // a tenant's overrides may set its own.
  std::chrono::nanoseconds block_retention = std::chrono::hours(24 * 14);
  bool block_retention_set = false;
  // Tempo's compactor.compaction.* (and their 3.0 places): small blocks of one tenant, tier and
  // window merged every cycle (storage/compactor.h); the cycle also paces retention's passes.
  std::chrono::nanoseconds compaction_window = std::chrono::hours(1);
  uint64_t max_compaction_objects = 6'000'000;
  uint64_t compaction_max_block_bytes = 100ull << 30;
  uint64_t compaction_max_spans_in_memory = 1'000'000;
  std::chrono::nanoseconds compaction_cycle = std::chrono::seconds(30);
  bool compactor_disabled = false;

  // compactor.compaction.retention_tiers: per tier (error, slow, pinned, baseline; storage/tiers.h),
  // 0: block_retention. A tenant's overrides may set either.
  std::array<std::chrono::nanoseconds, 4> tier_retention{};

  // Tail sampling: the Collector's tail_sampling block, under sampler.tail_sampling or a
  // Collector file's processors.tail_sampling; none: every trace is kept.
  std::optional<sampling::PolicySet> tail_sampling;
  std::chrono::nanoseconds sampling_quiet_period = std::chrono::seconds(2);
  // Kept traces longer than this go to the slow tier; unset: the first latency policy's
  // threshold_ms (no slow tier without one).
  std::optional<std::chrono::nanoseconds> slow_threshold;
  // The slow tier's threshold in effect (slow_threshold, or the latency policy's).
  std::chrono::nanoseconds EffectiveSlowThreshold() const;

  SpanLogOptions log_received_spans, log_discarded_spans;
  // Tempo's distributor.retry_after_on_resource_exhausted: when non-zero, the Retry-After
  // (HTTP) and retry delay (gRPC) of every RESOURCE_EXHAUSTED answer; 0: tracery's own estimate.
  std::chrono::nanoseconds retry_after_on_resource_exhausted{0};

  TenantLimits limits;  // overrides.defaults (and the legacy flat overrides keys)
  // overrides.per_tenant_override_config: the runtime overrides file, read at start (so that
  // a bad file stops the start) and again every per_tenant_override_period.
  std::string per_tenant_override_config;
  std::chrono::nanoseconds per_tenant_override_period = std::chrono::seconds(10);
  TenantLimits tenant_defaults;                   // limits, or the file's "*" entry
  std::map<std::string, TenantLimits> tenant_limits;  // each tenant the file lists
  generator::Options generator;  // metrics_generator; processors enabled by `enabled: true` or overrides

  // Tempo keys (and flags) given that mean nothing in one tracery process: reported once at
  // start in one warning line (docs/config.md says why for each group).
  std::vector<std::string> not_applicable;
};

// Parses YAML text; `source` names it in errors ("tracery.yaml"). Every problem found is in
// the one error, a line each.
Result<Config> ParseConfig(const std::string& yaml, const std::string& source);
Result<Config> LoadConfigFile(const std::string& path);

// What the command line gives (cli/main.cpp): the file, Tempo's -config.expand-env, and the
// flags that set configuration keys (`-server.http-listen-port=3300`), applied after the file
// as Tempo applies them.
struct ConfigSources {
  std::string file;  // empty: the embedded defaults
  bool expand_env = false;
  std::vector<std::pair<std::string, std::string>> key_flags;  // flag name without dashes, value
};
Result<Config> LoadConfig(const ConfigSources& sources);
// ${VAR}, ${VAR:-default} and ${VAR:default} replaced from the environment (unset and no
// default: empty, as Tempo); `$$` is a literal `$`.
std::string ExpandEnv(const std::string& text);
// Runtime overrides file (overrides.per_tenant_override_config): Tempo's current layout
// (`overrides: {tenant: {ingestion: {...}, global: {...}}}`) or the legacy flat one
// (`overrides: {tenant: {ingestion_rate_limit_bytes: ...}}`). A tenant's unset limits are the
// defaults; the tenant "*" sets the defaults of every tenant not listed.
struct TenantOverrides {
  TenantLimits defaults;
  std::map<std::string, TenantLimits> tenants;
};
Result<TenantOverrides> ParseOverrides(const std::string& yaml, const std::string& source, const TenantLimits& defaults);
// Markdown reference of every key: name, type, default, meaning.
std::string ConfigReference();

}  // namespace tracery::server
