// The gateway's configuration (`tracery -target=sampler`): an OpenTelemetry Collector-format
// file — receivers / processors / exporters / service.pipelines — read into a GatewayConfig.
// Several files are deep-merged in order, as the Collector merges several --config files
// (mappings merge key by key; a later scalar or list replaces an earlier one).
//
// What is accepted, the defaults, and where tracery differs from the Collector:
// docs/gateway.md. Every problem of all the files is reported at once, one line each, as
// `<file>:<line>: <what>` naming the key's full path.
#pragma once

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include <yaml-cpp/yaml.h>

#include "common/status.h"
#include "common/tls.h"
#include "exporter/otlp_exporter.h"
#include "exporter/peer_router.h"

namespace tracery::server {

// One protocol of an `otlp` receiver; `enabled` when its key is present.
struct OtlpProtocolConfig {
  bool enabled = false;
  std::string endpoint;  // host:port; `localhost` already turned into 127.0.0.1
  TlsSettings tls;
  uint64_t max_request_bytes = 0;  // grpc.max_recv_msg_size_mib / http.max_request_body_size; 0: tracery's default
};

struct OtlpReceiverConfig {
  std::string id;  // "otlp" or "otlp/<name>"
  OtlpProtocolConfig grpc, http;
};

// The Collector's memory_limiter. Its limit is a byte limit on what tracery holds in memory
// for ingest (the lead's wiring decides which limit; docs/gateway.md).
struct MemoryLimiterConfig {
  bool defined = false;  // false: referenced by the pipeline only, all defaults
  std::chrono::nanoseconds check_interval = std::chrono::seconds(1);
  uint64_t limit_mib = 0;
  uint64_t spike_limit_mib = 0;  // 0: 20 % of the limit
  uint64_t limit_percentage = 0;
  uint64_t spike_limit_percentage = 0;

  // The hard limit in bytes given the memory available to the process (SystemMemoryBytes());
  // 0 when neither limit_mib nor limit_percentage is set (no limit of its own).
  uint64_t LimitBytes(uint64_t total_memory_bytes) const;
  // The soft limit: the hard limit minus the spike allowance.
  uint64_t SoftLimitBytes(uint64_t total_memory_bytes) const;
};

// The memory this process may use: the cgroup's limit (v2 memory.max, v1 limit_in_bytes) when
// there is one, else the machine's (MemTotal). 0 when none can be read.
uint64_t SystemMemoryBytes();

// The Collector's batch processor: keys accepted, no effect (the sampler forwards whole
// traces in requests of up to 4 MiB; docs/gateway.md).
struct BatchConfig {
  bool defined = false;
  std::chrono::nanoseconds timeout = std::chrono::milliseconds(200);
  uint64_t send_batch_size = 8192;
  uint64_t send_batch_max_size = 0;
};

// The tail_sampling processor, kept as written: hand it to
// sampling::ParseTailSampling(node, file, "processors." + id). It was already checked with
// sampling::ParseTailSamplingConfig, so that call does not fail on the config's content.
struct TailSamplingProcessor {
  std::string id;    // "tail_sampling" or "tail_sampling/<name>"
  YAML::Node node;   // the processor's block (its marks give the lines in `file`)
  std::string file;  // the file it was written in
  // False when it is defined under `processors:` but not listed in the traces pipeline. The
  // Collector would not run it; tracery keeps it so the caller can decide (run it, or refuse).
  bool in_pipeline = false;
};

struct ExporterConfig {
  std::string id;  // "otlp", "otlp/tempo", "otlphttp/backend": also options.name
  exporter::ExporterOptions options;
};

struct GatewayConfig {
  std::vector<std::string> files;
  // The traces pipeline's receivers, exporters (in its order) and processors.
  std::string pipeline_id = "traces";
  std::vector<OtlpReceiverConfig> receivers;
  std::vector<ExporterConfig> exporters;
  std::vector<std::string> processors;  // ids in pipeline order
  MemoryLimiterConfig memory_limiter;   // of the pipeline (defaults when it has none)
  BatchConfig batch;
  // The pipeline's tail_sampling, or one defined but not in the pipeline (in_pipeline false).
  std::optional<TailSamplingProcessor> tail_sampling;

  // service.telemetry
  std::string log_level = "info";  // debug, info, warn, error
  std::string metrics_address;     // telemetry.metrics.address; "" when not given

  // The tracery extension key (top-level `tracery:`).
  std::vector<std::string> peers;  // host:port of every gateway, self included; empty: alone
  std::string self;                // this gateway's entry in peers
  // To the peers (PeerRouterOptions::exporter); `tracery.peer_exporter` changes it.
  exporter::ExporterOptions peer_exporter = exporter::PeerRouterOptions::DefaultPeerExporterOptions();
  std::string wal_path = "/var/tracery/gateway-wal";
  std::optional<std::chrono::nanoseconds> quiet_period;  // sampler's early decision; unset: the sampler's default
  bool multitenancy_enabled = false;  // X-Scope-OrgID required on ingest, forwarded on export
};

// A named YAML text ("file" name for messages, and its contents).
struct ConfigText {
  std::string name;
  std::string text;
};

// Reads, merges and checks the files. Errors: InvalidArgument listing every problem.
Result<GatewayConfig> LoadCollectorConfig(const std::vector<std::string>& files);
Result<GatewayConfig> ParseCollectorConfig(const std::vector<ConfigText>& texts);

// A Collector-format file has top-level receivers, exporters or service keys (a tracery file
// has none of them).
bool LooksLikeCollectorConfig(const YAML::Node& root);

}  // namespace tracery::server
