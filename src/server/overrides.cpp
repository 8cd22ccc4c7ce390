#include "server/overrides.h"

#include <fstream>
#include <sstream>

#include <spdlog/spdlog.h>

#include "server/config.h"
#include "server/config_internal.h"

namespace tracery::server {
namespace {

using namespace config_detail;

// A tenant's keys, in Tempo's current layout and its legacy flat one.
struct TenantKey {
  const char* current;
  const char* legacy;
  uint64_t TenantLimits::*field;
  bool byte_size;
};
constexpr TenantKey kTenantKeys[] = {
    {"ingestion.rate_limit_bytes", "ingestion_rate_limit_bytes", &TenantLimits::rate_limit_bytes, true},
    {"ingestion.burst_size_bytes", "ingestion_burst_size_bytes", &TenantLimits::burst_size_bytes, true},
    {"ingestion.max_traces_per_user", "max_traces_per_user", &TenantLimits::max_traces_per_user, false},
    {"global.max_bytes_per_trace", "max_bytes_per_trace", &TenantLimits::max_bytes_per_trace, true},
};

void WalkTenant(const YAML::Node& node, const std::string& path, const std::string& tenant, const std::string& source,
                TenantLimits& limits, std::vector<std::string>& errors) {
  for (const auto& item : node) {
    std::string key = path.empty() ? item.first.Scalar() : path + "." + item.first.Scalar();
    std::string where = Where(source, item.first.Mark()) + "tenant `" + tenant + "`: ";
    const YAML::Node& value = item.second;
    if (key == "compaction.block_retention" || key == "block_retention") {
      auto retention = value.IsScalar() ? ParseConfigDuration(value.Scalar()) : std::nullopt;
      if (!retention || retention->count() < 0)
        errors.push_back(where + "bad value for `" + key + "`: expected a duration such as 336h or 14d");
      else
        limits.block_retention = *retention;
      continue;
    }
    if (key == "compaction.retention_tiers" || key == "retention_tiers") {
      std::string why;
      if (!ParseRetentionTiers(value, limits.tier_retention, why)) errors.push_back(where + "`" + key + "`: " + why);
      continue;
    }
    if (key == "compaction" && value.IsMap()) {
      WalkTenant(value, key, tenant, source, limits, errors);
      continue;
    }
    const TenantKey* known = nullptr;
    bool section = false;
    for (const auto& rule : kTenantKeys) {
      if (key == rule.current || key == rule.legacy) known = &rule;
      if (std::string(rule.current).rfind(key + ".", 0) == 0) section = true;
    }
    if (known) {
      std::optional<uint64_t> n;
      uint64_t plain;
      if (value.IsScalar()) n = known->byte_size ? ParseConfigBytes(value.Scalar())
                                                 : (ParseUnsigned(value.Scalar(), plain) ? std::optional(plain) : std::nullopt);
      if (!n) errors.push_back(where + "bad value for `" + key + "`: expected a number" + (known->byte_size ? " of bytes" : ""));
      else limits.*(known->field) = *n;
      continue;
    }
    if (section && value.IsMap()) {
      WalkTenant(value, key, tenant, source, limits, errors);
      continue;
    }
    if (key == "metrics_generator.processors" || key == "metrics_generator_processors") {
      bool span_metrics = false, service_graphs = false, good = value.IsSequence() || value.IsNull();
      if (value.IsSequence())
        for (const auto& item : value) {
          std::string p = item.IsScalar() ? item.Scalar() : "";
          if (p == "span-metrics") span_metrics = true;
          else if (p == "service-graphs") service_graphs = true;
          else if (p != "local-blocks") good = false;
        }
      if (!good) {
        errors.push_back(where + "bad value for `" + key + "`: expected a list of span-metrics, service-graphs, local-blocks");
      } else {
        limits.generator_processors_set = true;
        limits.generator_span_metrics = span_metrics;
        limits.generator_service_graphs = service_graphs;
      }
      continue;
    }
    if (key == "metrics_generator.max_active_series" || key == "metrics_generator_max_active_series") {
      uint64_t n;
      if (!value.IsScalar() || !ParseUnsigned(value.Scalar(), n)) errors.push_back(where + "bad value for `" + key + "`: expected a number");
      else limits.generator_max_active_series = n;
      continue;
    }
    if (key == "metrics_generator" && value.IsMap()) {
      WalkTenant(value, key, tenant, source, limits, errors);
      continue;
    }
    // What the main file accepts without applying is accepted here too.
    std::string as_default = "overrides.defaults." + key, as_legacy = "overrides." + key;
    if (const DefaultOnlyKey* rule = FindDefaultOnly(as_default)) {
      if (!IsDefaultValue(*rule, value))
        errors.push_back(where + "`" + key + "` is refused: " + rule->why);
      continue;
    }
    if (FindNotApplicable(as_default) || FindNotApplicable(as_legacy)) continue;
    if (key.rfind("metrics_generator", 0) == 0) {
      errors.push_back(where + "`" + key + "` is refused: per tenant, tracery applies metrics_generator.processors "
                                            "and max_active_series; set the rest in the main file (metrics_generator)");
      continue;
    }
    errors.push_back(where + "unknown key `" + key + "`");
  }
}

}  // namespace

Result<TenantOverrides> ParseOverrides(const std::string& yaml, const std::string& source, const TenantLimits& defaults) {
  TenantOverrides out{defaults, {}};
  std::vector<std::string> errors;
  try {
    YAML::Node root = YAML::Load(yaml);
    if (root.IsNull()) return out;
    if (!root.IsMap()) return Status::InvalidArgument(source + ": the overrides file must be a YAML mapping");
    for (const auto& top : root) {
      std::string name = top.first.Scalar();
      if (name != "overrides") {
        errors.push_back(Where(source, top.first.Mark()) + "unknown key `" + name + "` (expected `overrides`)");
        continue;
      }
      if (top.second.IsNull()) continue;
      if (!top.second.IsMap()) {
        errors.push_back(Where(source, top.second.Mark()) + "`overrides` must map tenant IDs to their settings");
        continue;
      }
      // "*" first: it is the base of every other tenant.
      if (top.second["*"] && top.second["*"].IsMap()) WalkTenant(top.second["*"], "", "*", source, out.defaults, errors);
      for (const auto& tenant : top.second) {
        std::string id = tenant.first.Scalar();
        if (id == "*") continue;
        if (!tenant.second.IsMap() && !tenant.second.IsNull()) {
          errors.push_back(Where(source, tenant.first.Mark()) + "tenant `" + id + "` must be a mapping");
          continue;
        }
        TenantLimits limits = out.defaults;
        if (tenant.second.IsMap()) WalkTenant(tenant.second, "", id, source, limits, errors);
        out.tenants[id] = limits;
      }
    }
  } catch (const YAML::Exception& e) {
    errors.push_back(source + ":" + std::to_string(e.mark.line + 1) + ": invalid YAML: " + e.msg);
  }
  if (errors.empty()) return out;
  std::string message;
  for (const auto& error : errors) message += (message.empty() ? "" : "\n") + error;
  return Status::InvalidArgument(message);
}

OverridesReloader::OverridesReloader(std::string path, std::chrono::nanoseconds period, TenantLimits defaults,
                                     std::string text, TenantLimitsTable& table, MetricsRegistry& metrics)
    : path_(std::move(path)),
      period_(period),
      defaults_(defaults),
      last_text_(std::move(text)),
      table_(table),
      reloads_(metrics.GetCounter("tracery_overrides_reloads_total", "Runtime overrides files read and applied.")),
      failures_(metrics.GetCounter("tracery_overrides_reload_failures_total",
                                   "Runtime overrides files that could not be read or parsed; the previous overrides stay.")) {
  thread_ = std::thread([this] { Loop(); });
}

OverridesReloader::~OverridesReloader() { Stop(); }

void OverridesReloader::Stop() {
  {
    std::lock_guard lock(mutex_);
    stopping_ = true;
  }
  wake_.notify_all();
  if (thread_.joinable()) thread_.join();
}

bool OverridesReloader::ReloadNow() {
  std::ifstream in(path_);
  std::stringstream text;
  if (in) text << in.rdbuf();
  if (!in) {
    failures_.Add();
    spdlog::error("overrides: cannot read {}; the previous overrides stay", path_);
    return false;
  }
  if (text.str() == last_text_) return true;
  auto overrides = ParseOverrides(text.str(), path_, defaults_);
  if (!overrides.ok()) {
    failures_.Add();
    spdlog::error("overrides: {} not applied, the previous overrides stay: {}", path_, overrides.status().message());
    return false;
  }
  table_.Replace(overrides->defaults, std::move(overrides->tenants));
  last_text_ = text.str();
  reloads_.Add();
  spdlog::info("overrides: {} applied", path_);
  return true;
}

void OverridesReloader::Loop() {
  std::unique_lock lock(mutex_);
  while (!wake_.wait_for(lock, period_, [this] { return stopping_; })) {
    lock.unlock();
    ReloadNow();
    lock.lock();
  }
}

}  // namespace tracery::server
