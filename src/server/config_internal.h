// Private to src/server: the pieces of the configuration schema, in three files beside
// config.cpp (which walks a file against them):
//   config_schema.cpp  the table of tracery's keys (honoured, and Tempo's names mapped to them)
//   config_tempo.cpp   Tempo's keys that mean nothing in one tracery process (accepted and
//                      reported once), keys accepted only at Tempo's default value, keys refused
//                      with a reason, and Tempo's command-line flags that tune Go or a cluster
//   config_values.cpp  values as Tempo's Go YAML and dskit read them
#pragma once

#include <array>
#include <chrono>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include <yaml-cpp/yaml.h>

#include "common/status.h"
#include "server/config.h"

namespace tracery::server::config_detail {

// One leaf key of the schema: how to read it into a Config, and what it means.
struct KeyRule {
  std::string type;
  std::string meaning;
  std::function<std::string(const Config&)> default_text;
  std::function<bool(const std::string&, Config&, std::string& why)> set;
  // For lists and maps: takes the whole node instead of a scalar.
  std::function<bool(const YAML::Node&, Config&, std::string& why)> set_node;
};
const std::map<std::string, KeyRule>& Schema();
// True when some schema key lies below `key` (it is a section of the schema).
bool IsSchemaSection(const std::string& key);

// ---- Tempo compatibility (config_tempo.cpp) ----
struct NotApplicableGroup {
  std::string title;               // docs/config.md's row
  std::string why;
  std::vector<std::string> keys;   // each covers itself and everything below it
};
const std::vector<NotApplicableGroup>& NotApplicableGroups();
// The rule of NotApplicableGroups() covering `key` (itself or an ancestor), or nullopt.
std::optional<std::string> FindNotApplicable(const std::string& key);
// Keys tracery accepts only at Tempo's default value (the value changes nothing here);
// another value is refused with the reason. `default_text` is a scalar, "[]" or "{}".
struct DefaultOnlyKey {
  std::string key, default_text, why;
};
const std::vector<DefaultOnlyKey>& DefaultOnlyKeys();
const DefaultOnlyKey* FindDefaultOnly(const std::string& key);
bool IsDefaultValue(const DefaultOnlyKey& rule, const YAML::Node& value);
// Keys refused whatever their value, with the reason (a key or an ancestor of it).
std::optional<std::string> RefusalReason(const std::string& key);
struct RefusedKey {
  std::string key, why;
};
const std::vector<RefusedKey>& RefusedKeys();
// Tempo's command-line flags that tune Go's runtime or its process (`mem-ballast-size-mbs`):
// accepted and reported with the not-applicable keys.
const std::vector<std::string>& NotApplicableFlags();

// ---- values (config_values.cpp) ----
bool ParseBool(const std::string& text, bool& out);
// YAML 1.1 integers as Go's YAML reads them: `1_000_000`, `0x1F`, `+5`.
bool ParseUnsigned(const std::string& text, uint64_t& out, uint64_t max = UINT64_MAX);
bool ParseDouble(const std::string& text, double& out);
// Go durations and dskit's d/w/y; a bare 0 is zero.
std::optional<std::chrono::nanoseconds> ParseConfigDuration(const std::string& text);
// A number of bytes: YAML 1.1 integer, or with a unit (KB, MB, GB, KiB, MiB, GiB).
std::optional<uint64_t> ParseConfigBytes(const std::string& text);
bool ValidEndpoint(const std::string& text);
std::string JoinStrings(const std::vector<std::string>& items);
std::string DurationText(std::chrono::nanoseconds d);
// {error: 720h, slow: 720h, pinned: 2160h, baseline: 72h} (any subset), into storage/tiers.h order.
bool ParseRetentionTiers(const YAML::Node& node, std::array<std::chrono::nanoseconds, 4>& out, std::string& why);
// The file being read (for messages of blocks parsed elsewhere, e.g. tail_sampling).
const std::string& CurrentSource();
void SetCurrentSource(const std::string& source);
// `source:line: ` for errors.
std::string Where(const std::string& source, const YAML::Mark& mark);

}  // namespace tracery::server::config_detail
