// Per-tenant ingest limits: the defaults (overrides.defaults) and each tenant's own values
// (the runtime overrides file, overrides.per_tenant_override_config). The table is replaced
// whole when the file is reloaded; readers on the ingest path take a snapshot per request.
// Thread-safe: For() from any thread, Replace() from the reloading thread.
#pragma once

#include <array>
#include <chrono>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>

namespace tracery {

struct TenantLimits {
  // Per second, per tenant. Tempo's defaults (15 MB/s, 20 MB burst) would cap one process at
  // ~55 k spans/s; a single tracery ingests several times that, and memory is bounded by
  // ingester.max_live_bytes, so the defaults leave room for that.
  uint64_t rate_limit_bytes = 100'000'000;
  uint64_t burst_size_bytes = 200'000'000;
  uint64_t max_traces_per_user = 0;  // live traces per tenant; 0 = unlimited
  uint64_t max_bytes_per_trace = 5'000'000;  // 0 = unlimited
  // How long the tenant's blocks are kept (Tempo's per-tenant compaction.block_retention);
  // 0: compactor.compaction.block_retention.
  std::chrono::nanoseconds block_retention{0};
  // Per retention tier (storage/tiers.h order: error, slow, pinned, baseline), the tenant's
  // compaction.retention_tiers; 0: its block_retention, then the main file's.
  std::array<std::chrono::nanoseconds, 4> tier_retention{};
  // The metrics-generator's per-tenant settings (Tempo's metrics_generator.processors and
  // max_active_series overrides). Without processors set, the main file's apply.
  bool generator_processors_set = false;
  bool generator_span_metrics = false, generator_service_graphs = false;
  uint64_t generator_max_active_series = 0;  // 0: the main file's
  bool operator==(const TenantLimits&) const = default;
};

class TenantLimitsTable {
 public:
  explicit TenantLimitsTable(TenantLimits defaults = {}, std::map<std::string, TenantLimits> tenants = {});
  // The tenant's limits: its own entry, else the defaults.
  TenantLimits For(std::string_view tenant) const;
  void Replace(TenantLimits defaults, std::map<std::string, TenantLimits> tenants);

 private:
  struct Snapshot {
    TenantLimits defaults;
    std::map<std::string, TenantLimits, std::less<>> tenants;
  };
  mutable std::mutex mutex_;  // guards the pointer only; a snapshot never changes
  std::shared_ptr<const Snapshot> snapshot_;
};

}  // namespace tracery
