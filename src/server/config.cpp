// Reading a configuration: YAML text walked against the schema (config_schema.cpp) and Tempo's
// compatibility lists (config_tempo.cpp), then the command line's key flags, then the runtime
// overrides file. Every problem is collected and reported together, a line each, so that one
// run shows all that is wrong. (The schema table moved to config_schema.cpp, value parsing to
// config_values.cpp; see config_internal.h.)
#include "server/config.h"

#include <algorithm>
#include <cstdlib>
#include <fstream>
#include <sstream>

#include "server/config_internal.h"

namespace tracery::server {
namespace {

using namespace config_detail;

struct Problems {
  std::vector<std::string> errors;
  std::vector<std::string>* not_applicable;
  void NotApplicable(const std::string& key) {
    if (std::find(not_applicable->begin(), not_applicable->end(), key) == not_applicable->end())
      not_applicable->push_back(key);
  }
};

// Applies one value to `key`; false when the key is none of the schema's leaves.
void SetLeaf(const KeyRule& rule, const std::string& key, const YAML::Node& value, const std::string& where,
             Config& config, Problems& problems) {
  std::string why;
  if (rule.set_node) {
    if (!rule.set_node(value, config, why)) problems.errors.push_back(where + "bad value for `" + key + "`: " + why);
    return;
  }
  if (!value.IsScalar() || !rule.set) {
    problems.errors.push_back(where + "`" + key + "` must be a " + rule.type);
    return;
  }
  if (!rule.set(value.Scalar(), config, why))
    problems.errors.push_back(where + "bad value `" + value.Scalar() + "` for `" + key + "`: " + why);
}

// A mapping with keys of the schema or of Tempo's lists below it: walked key by key.
bool IsKnownSection(const std::string& key) {
  if (IsSchemaSection(key)) return true;
  std::string prefix = key + ".";
  for (const auto& rule : DefaultOnlyKeys())
    if (rule.key.rfind(prefix, 0) == 0) return true;
  for (const auto& rule : RefusedKeys())
    if (rule.key.rfind(prefix, 0) == 0) return true;
  for (const auto& group : NotApplicableGroups())
    for (const auto& rule : group.keys)
      if (rule.rfind(prefix, 0) == 0) return true;
  return false;
}

// One key of the file or a flag, whatever the policy for it. `where` prefixes its problems.
void ApplyKey(const std::string& key, const YAML::Node& value, const std::string& where, const std::string& source,
              Config& config, Problems& problems);

void WalkMap(const YAML::Node& node, const std::string& path, const std::string& source, Config& config,
             Problems& problems) {
  for (const auto& item : node) {
    if (!item.first.IsScalar()) {
      problems.errors.push_back(Where(source, item.first.Mark()) + "keys must be plain names");
      continue;
    }
    std::string key = item.first.Scalar();
    ApplyKey(path.empty() ? key : path + "." + key, item.second, Where(source, item.first.Mark()), source, config,
             problems);
  }
}

void ApplyKey(const std::string& key, const YAML::Node& value, const std::string& where, const std::string& source,
              Config& config, Problems& problems) {
  // A listed receiver runs, whatever its block holds (`zipkin:`, `zipkin: {}`).
  if (key == "distributor.receivers.zipkin") config.zipkin_enabled = true;
  if (key == "distributor.receivers.jaeger.protocols.grpc") config.jaeger_grpc_enabled = true;
  if (key == "distributor.receivers.jaeger.protocols.thrift_http") config.jaeger_thrift_http_enabled = true;
  if (key == "distributor.receivers.jaeger.protocols.thrift_compact") config.jaeger_thrift_compact_enabled = true;
  if (key == "distributor.receivers.jaeger.protocols.thrift_binary") config.jaeger_thrift_binary_enabled = true;
  if (key == "distributor.receivers.otlp.protocols.grpc") config.otlp_grpc_enabled = true;
  if (key == "distributor.receivers.otlp.protocols.http") config.otlp_http_enabled = true;

  if (auto why = RefusalReason(key)) {
    problems.errors.push_back(where + "`" + key + "` is refused: " + *why);
    return;
  }
  if (const DefaultOnlyKey* rule = FindDefaultOnly(key)) {
    if (!IsDefaultValue(*rule, value))
      problems.errors.push_back(where + "`" + key + "` is refused: " + rule->why + " (only Tempo's default `" +
                                rule->default_text + "` is accepted)");
    return;
  }
  if (auto rule = Schema().find(key); rule != Schema().end()) {
    if (value.IsNull() && !rule->second.set_node) return;  // `key:` with no value keeps the default
    SetLeaf(rule->second, key, value, where, config, problems);
    return;
  }
  if (IsKnownSection(key)) {
    if (value.IsMap()) WalkMap(value, key, source, config, problems);
    else if (!value.IsNull()) problems.errors.push_back(where + "`" + key + "` must be a section (a mapping)");
    return;
  }
  if (auto rule = FindNotApplicable(key)) {
    problems.NotApplicable(*rule);
    return;
  }
  problems.errors.push_back(where + "unknown key `" + key + "`");
}

void ParseInto(const std::string& yaml, const std::string& source, Config& config, Problems& problems) {
  SetCurrentSource(source);
  YAML::Node root;
  try {
    root = YAML::Load(yaml);
  } catch (const YAML::Exception& e) {
    problems.errors.push_back(source + ":" + std::to_string(e.mark.line + 1) + ": invalid YAML: " + e.msg);
    return;
  }
  if (root.IsNull()) return;
  if (!root.IsMap()) {
    problems.errors.push_back(source + ": the configuration must be a YAML mapping");
    return;
  }
  try {
    // Receivers are enabled by what the file lists, as in Tempo; with no receivers section both
    // run on every interface. A listed protocol without an endpoint listens on localhost, as in
    // Tempo 2.7+ (the OpenTelemetry Collector's receiver default since v0.104).
    if (root["distributor"] && root["distributor"].IsMap() && root["distributor"]["receivers"]) {
      config.otlp_grpc_enabled = false;
      config.otlp_http_enabled = false;
      config.otlp_grpc_endpoint = "localhost:4317";
      config.otlp_http_endpoint = "localhost:4318";
    }
    WalkMap(root, "", source, config, problems);
  } catch (const YAML::Exception& e) {
    problems.errors.push_back(source + ":" + std::to_string(e.mark.line + 1) + ": " + e.msg);
  }
}

Status Report(const Problems& problems) {
  if (problems.errors.empty()) return Status::Ok();
  std::string message;
  for (const auto& error : problems.errors) message += (message.empty() ? "" : "\n") + error;
  if (problems.errors.size() > 1) message = std::to_string(problems.errors.size()) + " problems:\n" + message;
  return Status::InvalidArgument(message);
}

// Tempo's flags whose names are not their key's path with dashes for underscores.
std::string KeyOfFlag(const std::string& flag) {
  if (flag == "multitenancy.enabled" || flag == "auth.enabled") return "multitenancy_enabled";
  if (flag == "log.level") return "server.log_level";
  std::string key = flag;
  std::replace(key.begin(), key.end(), '-', '_');
  return key;
}

Result<std::string> ReadFile(const std::string& path) {
  std::ifstream in(path);
  if (!in) return Status::InvalidArgument("cannot read config file " + path);
  std::stringstream text;
  text << in.rdbuf();
  return text.str();
}

}  // namespace

Result<Config> ParseConfig(const std::string& yaml, const std::string& source) {
  Config config;
  Problems problems{{}, &config.not_applicable};
  ParseInto(yaml, source, config, problems);
  TRACERY_RETURN_IF_ERROR(Report(problems));
  config.tenant_defaults = config.limits;
  return config;
}

Result<Config> LoadConfigFile(const std::string& path) { return LoadConfig(ConfigSources{path, false, {}}); }

Result<Config> LoadConfig(const ConfigSources& sources) {
  Config config;
  Problems problems{{}, &config.not_applicable};
  if (!sources.file.empty()) {
    auto text = ReadFile(sources.file);
    if (!text.ok()) return text.status();
    ParseInto(sources.expand_env ? ExpandEnv(*text) : *text, sources.file, config, problems);
  }
  // Flags after the file, as Tempo applies them: a flag wins over the file's value.
  for (const auto& [flag, text] : sources.key_flags) {
    std::string key = KeyOfFlag(flag);
    std::string where = "flag -" + flag + ": ";
    if (std::find(NotApplicableFlags().begin(), NotApplicableFlags().end(), flag) != NotApplicableFlags().end()) {
      problems.NotApplicable("-" + flag);
      continue;
    }
    bool known = Schema().count(key) || FindDefaultOnly(key) || RefusalReason(key) || FindNotApplicable(key);
    if (!known) {
      problems.errors.push_back(where + "unknown flag (no configuration key `" + key + "`)");
      continue;
    }
    YAML::Node value;
    try {
      value = Schema().count(key) && Schema().at(key).set_node ? YAML::Load(text) : YAML::Node(text);
    } catch (const YAML::Exception& e) {
      problems.errors.push_back(where + "invalid value: " + e.msg);
      continue;
    }
    if (FindNotApplicable(key) && !Schema().count(key)) {
      problems.NotApplicable("-" + flag);
      continue;
    }
    ApplyKey(key, value, where, "flag -" + flag, config, problems);
  }
  TRACERY_RETURN_IF_ERROR(Report(problems));
  config.tenant_defaults = config.limits;
  if (!config.per_tenant_override_config.empty()) {
    auto text = ReadFile(config.per_tenant_override_config);
    if (!text.ok())
      return Status::InvalidArgument("overrides.per_tenant_override_config: cannot read " + config.per_tenant_override_config);
    auto overrides = ParseOverrides(*text, config.per_tenant_override_config, config.limits);
    if (!overrides.ok()) return overrides.status();
    config.tenant_defaults = overrides->defaults;
    config.tenant_limits = std::move(overrides->tenants);
  }
  return config;
}

std::string ExpandEnv(const std::string& text) {
  std::string out;
  out.reserve(text.size());
  for (size_t i = 0; i < text.size(); ++i) {
    if (text[i] != '$' || i + 1 == text.size()) {
      out += text[i];
      continue;
    }
    if (text[i + 1] == '$') {  // `$$`: a literal dollar
      out += '$';
      ++i;
      continue;
    }
    size_t close = text[i + 1] == '{' ? text.find('}', i + 2) : std::string::npos;
    if (close == std::string::npos) {
      out += text[i];
      continue;
    }
    std::string inside = text.substr(i + 2, close - i - 2);
    std::string name = inside, fallback;
    bool has_fallback = false;
    if (size_t colon = inside.find(':'); colon != std::string::npos) {
      name = inside.substr(0, colon);
      fallback = inside.substr(colon + 1);
      if (!fallback.empty() && fallback[0] == '-') fallback.erase(0, 1);  // ${VAR:-default}
      has_fallback = true;
    }
    const char* value = std::getenv(name.c_str());
    if (value && *value) out += value;
    else if (has_fallback) out += fallback;
    else if (value) out += value;
    i = close;
  }
  return out;
}

std::string ConfigReference() {
  Config defaults;
  std::string out = "| key | type | default | meaning |\n| --- | --- | --- | --- |\n";
  for (const auto& [name, rule] : Schema())
    out += "| `" + name + "` | " + rule.type + " | `" + rule.default_text(defaults) + "` | " + rule.meaning + " |\n";
  out += "\nTempo keys accepted and not applied (each covers the keys below it; reported once at start):\n\n"
         "| keys | why |\n| --- | --- |\n";
  for (const auto& group : NotApplicableGroups()) {
    std::string keys;
    for (const auto& key : group.keys) keys += (keys.empty() ? "`" : ", `") + key + "`";
    out += "| **" + group.title + "**: " + keys + " | " + group.why + " |\n";
  }
  out += "\nTempo keys accepted only at Tempo's default value (another value is refused):\n\n"
         "| key | default | why |\n| --- | --- | --- |\n";
  for (const auto& rule : DefaultOnlyKeys())
    out += "| `" + rule.key + "` | `" + rule.default_text + "` | " + rule.why + " |\n";
  out += "\nTempo keys refused whatever their value:\n\n| key | why |\n| --- | --- |\n";
  for (const auto& rule : RefusedKeys()) out += "| `" + rule.key + "` | " + rule.why + " |\n";
  out += "\nTempo flags accepted and not applied: ";
  for (const auto& flag : NotApplicableFlags()) out += "`-" + flag + "` ";
  out += "\n";
  return out;
}

std::chrono::nanoseconds Config::EffectiveSlowThreshold() const {
  if (slow_threshold) return *slow_threshold;
  if (tail_sampling)
    for (const auto& policy : tail_sampling->config().policies)
      if (policy.type == sampling::PolicyType::kLatency) return std::chrono::milliseconds(policy.threshold_ms);
  return std::chrono::nanoseconds(0);
}

}  // namespace tracery::server
