#include "common/tenant_limits.h"

namespace tracery {

TenantLimitsTable::TenantLimitsTable(TenantLimits defaults, std::map<std::string, TenantLimits> tenants) {
  Replace(defaults, std::move(tenants));
}

TenantLimits TenantLimitsTable::For(std::string_view tenant) const {
  std::shared_ptr<const Snapshot> snapshot;
  {
    std::lock_guard lock(mutex_);
    snapshot = snapshot_;
  }
  auto it = snapshot->tenants.find(tenant);
  return it == snapshot->tenants.end() ? snapshot->defaults : it->second;
}

void TenantLimitsTable::Replace(TenantLimits defaults, std::map<std::string, TenantLimits> tenants) {
  auto snapshot = std::make_shared<Snapshot>();
  snapshot->defaults = defaults;
  for (auto& [name, limits] : tenants) snapshot->tenants.emplace(name, limits);
  std::lock_guard lock(mutex_);
  snapshot_ = std::move(snapshot);
}

}  // namespace tracery
