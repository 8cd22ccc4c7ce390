// Retention tiers: every block holds traces of one tier, chosen when the block is cut
// (ingester/block_cut.cpp), and each tier has its own retention (storage/retention.h).
#pragma once

#include <array>
#include <string_view>

namespace tracery::storage {

// A trace with a span of status ERROR.
inline constexpr std::string_view kTierError = "error";
// A trace longer than the slow threshold (by default the sampler's latency policy's).
inline constexpr std::string_view kTierSlow = "slow";
// A trace pinned through the API, or chosen by the metrics-generator as an exemplar.
inline constexpr std::string_view kTierPinned = "pinned";
// Everything else that was kept.
inline constexpr std::string_view kTierBaseline = "baseline";
// The tier of blocks written before tiers existed: treated as baseline.
inline constexpr std::string_view kTierLegacy = "sampled";

inline constexpr std::array<std::string_view, 4> kTiers = {kTierError, kTierSlow, kTierPinned, kTierBaseline};

// The index of a tier in kTiers (kTiers.size() for a name that is not one).
inline constexpr size_t TierIndex(std::string_view tier) {
  for (size_t t = 0; t < kTiers.size(); ++t)
    if (kTiers[t] == tier) return t;
  return kTiers.size();
}

// The tier whose retention a block's tier name follows (unknown names: baseline).
inline std::string_view RetentionTierOf(std::string_view tier) {
  for (std::string_view t : kTiers)
    if (t == tier) return t;
  return kTierBaseline;
}

}  // namespace tracery::storage
