#include "common/tenant.h"

namespace tracery {

Status ValidateTenantId(std::string_view tenant) {
  if (tenant.empty()) return Status::InvalidArgument("tenant ID is empty");
  if (tenant.size() > 150) return Status::InvalidArgument("tenant ID is longer than 150 characters");
  if (tenant == "." || tenant == "..") return Status::InvalidArgument("tenant ID may not be '.' or '..'");
  for (char c : tenant) {
    bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              std::string_view("!-_.*'()").find(c) != std::string_view::npos;
    if (!ok) return Status::InvalidArgument("tenant ID has a character that is not allowed (allowed: A-Z a-z 0-9 !-_.*'())");
  }
  return Status::Ok();
}

Result<std::string> ResolveTenant(bool multitenancy_enabled, std::optional<std::string_view> org_id) {
  if (!multitenancy_enabled) return std::string(kSingleTenant);
  if (!org_id) return Status::Unauthenticated("no org id: the X-Scope-OrgID header is required");
  TRACERY_RETURN_IF_ERROR(ValidateTenantId(*org_id));
  return std::string(*org_id);
}

}  // namespace tracery
