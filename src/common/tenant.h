// Tenant IDs: where they come from and which are allowed.
#pragma once

#include <optional>
#include <string>
#include <string_view>

#include "common/status.h"

namespace tracery {

constexpr const char* kSingleTenant = "single-tenant";

// Tenant IDs as Tempo (and Cortex) accept them: 1..150 characters from [A-Za-z0-9!-_.*'()],
// and not "." or "..". Anything else could name a path outside the data directory.
Status ValidateTenantId(std::string_view tenant);

// The tenant of a request from its X-Scope-OrgID value (nullopt when absent): required and
// validated with multitenancy on, the fixed single tenant otherwise.
Result<std::string> ResolveTenant(bool multitenancy_enabled, std::optional<std::string_view> org_id);

}  // namespace tracery
