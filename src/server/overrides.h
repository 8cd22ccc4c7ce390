// The runtime overrides file (overrides.per_tenant_override_config), read again every
// per_tenant_override_period on its own thread. A good file replaces the per-tenant limits
// whole; a bad one is logged, counted (tracery_overrides_reload_failures_total) and the
// previous limits stay. Parsing is ParseOverrides (config.h).
#pragma once

#include <chrono>
#include <condition_variable>
#include <mutex>
#include <string>
#include <thread>

#include "common/metrics.h"
#include "common/tenant_limits.h"

namespace tracery::server {

class OverridesReloader {
 public:
  // `text` is the file as read at start (so an unchanged file is not parsed again).
  OverridesReloader(std::string path, std::chrono::nanoseconds period, TenantLimits defaults, std::string text,
                    TenantLimitsTable& table, MetricsRegistry& metrics);
  ~OverridesReloader();
  void Stop();
  // Reads the file now (what the thread does every period); true when it was applied or unchanged.
  bool ReloadNow();

 private:
  void Loop();
  const std::string path_;
  const std::chrono::nanoseconds period_;
  const TenantLimits defaults_;
  std::string last_text_;
  TenantLimitsTable& table_;
  Counter& reloads_;
  Counter& failures_;
  std::mutex mutex_;
  std::condition_variable wake_;
  bool stopping_ = false;
  std::thread thread_;
};

}  // namespace tracery::server
