// Reading the Collector's `tail_sampling` block. Key names and types are the Collector's
// (config.go / config.schema.yaml of its tailsamplingprocessor); values are read as its Go YAML
// decoder reads them (`100_000`, `0x10`, `yes`). Every problem is collected and reported
// together, a line each, in the style of src/server's configuration errors.
#include "sampling/policy_config.h"

#include <re2/re2.h>

#include <charconv>
#include <cmath>
#include <cstdlib>
#include <functional>
#include <map>
#include <set>

#include "common/duration.h"

namespace tracery::sampling {
namespace {

constexpr std::pair<std::string_view, PolicyType> kTypeNames[] = {
    {"always_sample", PolicyType::kAlwaysSample},
    {"status_code", PolicyType::kStatusCode},
    {"latency", PolicyType::kLatency},
    {"probabilistic", PolicyType::kProbabilistic},
    {"string_attribute", PolicyType::kStringAttribute},
    {"numeric_attribute", PolicyType::kNumericAttribute},
    {"boolean_attribute", PolicyType::kBooleanAttribute},
    {"span_count", PolicyType::kSpanCount},
    {"trace_state", PolicyType::kTraceState},
    {"rate_limiting", PolicyType::kRateLimiting},
    {"ottl_condition", PolicyType::kOttlCondition},
    {"and", PolicyType::kAnd},
    {"composite", PolicyType::kComposite},
    {"drop", PolicyType::kDrop},
};

std::optional<PolicyType> TypeOfName(std::string_view name) {
  for (const auto& [text, type] : kTypeNames)
    if (text == name) return type;
  return std::nullopt;
}

// Where a policy sits decides which types it may have, as in the Collector: `and` and `drop`
// take the plain policies, `composite` also takes `and`.
enum class Level { kTop, kAndOrDrop, kComposite };

bool AllowedAt(PolicyType type, Level level) {
  bool combining = type == PolicyType::kAnd || type == PolicyType::kComposite || type == PolicyType::kDrop;
  if (level == Level::kTop) return true;
  if (level == Level::kComposite) return !combining || type == PolicyType::kAnd;
  return !combining;
}

// A YAML 1.1 integer as Go's YAML reads one: sign, `_` between digits, 0x / 0o prefixes.
bool ParseInteger(std::string text, int64_t& out) {
  bool negative = false;
  if (!text.empty() && (text[0] == '+' || text[0] == '-')) {
    negative = text[0] == '-';
    text.erase(0, 1);
  }
  int base = 10;
  if (text.size() > 2 && text[0] == '0' && (text[1] == 'x' || text[1] == 'X' || text[1] == 'o')) {
    base = text[1] == 'o' ? 8 : 16;
    text.erase(0, 2);
  }
  if (text.empty() || text.front() == '_' || text.back() == '_') return false;
  std::erase(text, '_');
  uint64_t magnitude = 0;
  auto [end, error] = std::from_chars(text.data(), text.data() + text.size(), magnitude, base);
  if (error != std::errc() || end != text.data() + text.size()) return false;
  if (magnitude > uint64_t(INT64_MAX) + (negative ? 1 : 0)) return false;
  out = negative ? int64_t(0 - magnitude) : int64_t(magnitude);
  return true;
}

class Reader {
 public:
  explicit Reader(std::string_view source) : source_(source) {}

  void Error(const YAML::Node& at, const std::string& message) {
    errors_.push_back(source_ + ":" + std::to_string(at.Mark().line + 1) + ": " + message);
  }
  void BadValue(const YAML::Node& value, const std::string& path, const std::string& why) {
    std::string shown = value.IsScalar() ? "`" + value.Scalar() + "` " : "";
    Error(value, "bad value " + shown + "for `" + path + "`: " + why);
  }
  Status Report() const {
    if (errors_.empty()) return Status::Ok();
    std::string message = errors_.size() > 1 ? std::to_string(errors_.size()) + " problems:\n" : "";
    for (size_t i = 0; i < errors_.size(); ++i) message += (i ? "\n" : "") + errors_[i];
    return Status::InvalidArgument(message);
  }

  using Handler = std::function<void(const YAML::Node& value, const std::string& path)>;
  // Walks a mapping: each key must have a handler; `key:` with no value keeps the default.
  void Walk(const YAML::Node& node, const std::string& path, const std::map<std::string, Handler>& handlers) {
    if (node.IsNull()) return;
    if (!node.IsMap()) {
      Error(node, "`" + path + "` must be a mapping");
      return;
    }
    for (const auto& item : node) {
      std::string key = item.first.IsScalar() ? item.first.Scalar() : "";
      auto handler = handlers.find(key);
      if (handler == handlers.end()) {
        Error(item.first, "unknown key `" + path + "." + key + "`");
        continue;
      }
      if (!item.second.IsNull()) handler->second(item.second, path + "." + key);
    }
  }

  Handler Int(int64_t& out, int64_t min = 0) {
    return [this, &out, min](const YAML::Node& value, const std::string& path) {
      int64_t v;
      if (!value.IsScalar() || !ParseInteger(value.Scalar(), v)) return BadValue(value, path, "not an integer");
      if (v < min) return BadValue(value, path, "must be at least " + std::to_string(min));
      out = v;
    };
  }
  Handler OptionalInt(std::optional<int64_t>& out) {
    return [this, &out](const YAML::Node& value, const std::string& path) {
      int64_t v;
      if (!value.IsScalar() || !ParseInteger(value.Scalar(), v)) return BadValue(value, path, "not an integer");
      out = v;
    };
  }
  Handler Unsigned(uint64_t& out) {
    return [this, &out](const YAML::Node& value, const std::string& path) {
      int64_t v;
      if (!value.IsScalar() || !ParseInteger(value.Scalar(), v) || v < 0)
        return BadValue(value, path, "not a non-negative integer");
      out = uint64_t(v);
    };
  }
  Handler Double(double& out) {
    return [this, &out](const YAML::Node& value, const std::string& path) {
      std::string text = value.IsScalar() ? value.Scalar() : "";
      std::erase(text, '_');
      char* end = nullptr;
      double v = std::strtod(text.c_str(), &end);
      if (text.empty() || end != text.c_str() + text.size() || !std::isfinite(v))
        return BadValue(value, path, "not a number");
      out = v;
    };
  }
  Handler Bool(bool& out) {
    return [this, &out](const YAML::Node& value, const std::string& path) {
      static const std::set<std::string> kTrue = {"true", "True", "TRUE", "yes", "Yes", "YES", "on", "On", "ON"};
      static const std::set<std::string> kFalse = {"false", "False", "FALSE", "no", "No", "NO", "off", "Off", "OFF"};
      if (value.IsScalar() && kTrue.count(value.Scalar())) out = true;
      else if (value.IsScalar() && kFalse.count(value.Scalar())) out = false;
      else BadValue(value, path, "not a boolean (true or false)");
    };
  }
  Handler String(std::string& out) {
    return [this, &out](const YAML::Node& value, const std::string& path) {
      if (!value.IsScalar()) return BadValue(value, path, "not a string");
      out = value.Scalar();
    };
  }
  Handler Strings(std::vector<std::string>& out) {
    return [this, &out](const YAML::Node& value, const std::string& path) {
      if (!value.IsSequence()) return BadValue(value, path, "not a list of strings");
      for (const auto& item : value) {
        if (!item.IsScalar()) BadValue(item, path, "not a list of strings");
        else out.push_back(item.Scalar());
      }
    };
  }
  Handler Duration(std::chrono::nanoseconds& out) {
    return [this, &out](const YAML::Node& value, const std::string& path) {
      auto d = value.IsScalar() ? ParseDuration(value.Scalar()) : std::nullopt;
      if (!d) return BadValue(value, path, "not a duration (e.g. 10s, 500ms)");
      if (d->count() <= 0) return BadValue(value, path, "must be more than zero");
      out = *d;
    };
  }

  void ReadPolicies(const YAML::Node& list, const std::string& path, Level level, std::vector<PolicyConfig>& out);

 private:
  void ReadPolicy(const YAML::Node& node, const std::string& path, Level level, PolicyConfig& policy);
  void ReadBlock(const YAML::Node& block, const std::string& path, PolicyConfig& policy);
  void CheckPolicy(const YAML::Node& node, const std::string& path, const PolicyConfig& policy);

  std::string source_;
  std::vector<std::string> errors_;
};

void Reader::ReadPolicies(const YAML::Node& list, const std::string& path, Level level,
                          std::vector<PolicyConfig>& out) {
  if (!list.IsSequence()) return Error(list, "`" + path + "` must be a list of policies");
  std::set<std::string> names;
  for (size_t i = 0; i < list.size(); ++i) {
    std::string item_path = path + "[" + std::to_string(i) + "]";
    PolicyConfig policy;
    ReadPolicy(list[i], item_path, level, policy);
    // Names key the per-policy metrics and the composite's allocations: they must be unique.
    if (!policy.name.empty() && !names.insert(policy.name).second)
      Error(list[i], "`" + item_path + ".name`: duplicate policy name `" + policy.name + "`");
    out.push_back(std::move(policy));
  }
}

void Reader::ReadPolicy(const YAML::Node& node, const std::string& path, Level level, PolicyConfig& policy) {
  policy.line = node.Mark().line + 1;
  if (!node.IsMap()) return Error(node, "`" + path + "` must be a mapping with `name` and `type`");
  std::string type_name;
  YAML::Node type_node = node["type"];
  if (!type_node) return Error(node, "`" + path + "`: policy without a `type`");
  if (!type_node.IsScalar()) return Error(type_node, "`" + path + ".type` must be a policy type");
  type_name = type_node.Scalar();
  auto type = TypeOfName(type_name);
  if (!type) return Error(type_node, "`" + path + ".type`: unknown policy type `" + type_name + "`");
  if (!AllowedAt(*type, level))
    return Error(type_node, "`" + path + ".type`: a `" + type_name + "` policy is not allowed here (`and` and `drop` "
                            "take plain policies; `composite` takes plain policies and `and`)");
  policy.type = *type;
  if (YAML::Node name = node["name"]; name && name.IsScalar()) policy.name = name.Scalar();
  else if (level == Level::kTop) Error(node, "`" + path + "`: policy without a `name`");

  for (const auto& item : node) {
    std::string key = item.first.IsScalar() ? item.first.Scalar() : "";
    if (key == "name" || key == "type") continue;
    auto block_type = TypeOfName(key);
    if (!block_type) {
      Error(item.first, "unknown key `" + path + "." + key + "`");
    } else if (*block_type != policy.type) {
      // The Collector ignores the blocks of other types; here they are refused so that a
      // misplaced block (type: boolean_attribute with a string_attribute block) shows.
      Error(item.first, "`" + path + "." + key + "`: a `" + key + "` block in a policy of type `" + type_name + "`");
    } else {
      ReadBlock(item.second, path + "." + key, policy);
    }
  }
  CheckPolicy(node, path, policy);
}

void Reader::ReadBlock(const YAML::Node& block, const std::string& path, PolicyConfig& policy) {
  switch (policy.type) {
    case PolicyType::kAlwaysSample: return Walk(block, path, {});
    case PolicyType::kStatusCode: {
      std::vector<std::string> codes;
      Walk(block, path, {{"status_codes", Strings(codes)}});
      for (const auto& code : codes) {
        if (code == "UNSET") policy.status_codes.push_back(0);
        else if (code == "OK") policy.status_codes.push_back(1);
        else if (code == "ERROR") policy.status_codes.push_back(2);
        else Error(block, "bad value `" + code + "` for `" + path + ".status_codes`: supported: OK, ERROR, UNSET");
      }
      if (codes.empty()) Error(block, "`" + path + "`: needs at least one of `status_codes`");
      return;
    }
    case PolicyType::kLatency:
      return Walk(block, path, {{"threshold_ms", Int(policy.threshold_ms)},
                                {"upper_threshold_ms", Int(policy.upper_threshold_ms)}});
    case PolicyType::kProbabilistic:
      return Walk(block, path, {{"sampling_percentage", Double(policy.sampling_percentage)},
                                {"hash_salt", String(policy.hash_salt)}});
    case PolicyType::kStringAttribute:
      return Walk(block, path, {{"key", String(policy.key)},
                                {"values", Strings(policy.values)},
                                {"enabled_regex_matching", Bool(policy.enabled_regex_matching)},
                                {"cache_max_size", Int(policy.cache_max_size)},
                                {"invert_match", Bool(policy.invert_match)}});
    case PolicyType::kNumericAttribute:
      return Walk(block, path, {{"key", String(policy.key)},
                                {"min_value", OptionalInt(policy.min_value)},
                                {"max_value", OptionalInt(policy.max_value)},
                                {"invert_match", Bool(policy.invert_match)}});
    case PolicyType::kBooleanAttribute:
      return Walk(block, path, {{"key", String(policy.key)},
                                {"value", Bool(policy.bool_value)},
                                {"invert_match", Bool(policy.invert_match)}});
    case PolicyType::kSpanCount:
      return Walk(block, path, {{"min_spans", Int(policy.min_spans)}, {"max_spans", Int(policy.max_spans)}});
    case PolicyType::kTraceState:
      return Walk(block, path, {{"key", String(policy.key)}, {"values", Strings(policy.values)}});
    case PolicyType::kRateLimiting:
      return Walk(block, path, {{"spans_per_second", Int(policy.spans_per_second)}});
    case PolicyType::kOttlCondition:
      return Walk(block, path, {{"error_mode", String(policy.error_mode)},
                                {"span", Strings(policy.span_conditions)},
                                {"spanevent", Strings(policy.span_event_conditions)}});
    case PolicyType::kAnd:
      return Walk(block, path, {{"and_sub_policy", [&](const YAML::Node& list, const std::string& p) {
                                   ReadPolicies(list, p, Level::kAndOrDrop, policy.sub_policies);
                                 }}});
    case PolicyType::kDrop:
      return Walk(block, path, {{"drop_sub_policy", [&](const YAML::Node& list, const std::string& p) {
                                   ReadPolicies(list, p, Level::kAndOrDrop, policy.sub_policies);
                                 }}});
    case PolicyType::kComposite:
      return Walk(block, path,
                  {{"max_total_spans_per_second", Int(policy.max_total_spans_per_second)},
                   {"policy_order", Strings(policy.policy_order)},
                   {"composite_sub_policy",
                    [&](const YAML::Node& list, const std::string& p) {
                      ReadPolicies(list, p, Level::kComposite, policy.sub_policies);
                    }},
                   {"rate_allocation", [&](const YAML::Node& list, const std::string& p) {
                      if (!list.IsSequence()) return Error(list, "`" + p + "` must be a list of {policy, percent}");
                      for (size_t i = 0; i < list.size(); ++i) {
                        RateAllocation allocation;
                        Walk(list[i], p + "[" + std::to_string(i) + "]",
                             {{"policy", String(allocation.policy)}, {"percent", Int(allocation.percent)}});
                        policy.rate_allocation.push_back(allocation);
                      }
                    }}});
  }
}

// What the Collector refuses at start, and settings that could never be what was meant.
void Reader::CheckPolicy(const YAML::Node& node, const std::string& path, const PolicyConfig& policy) {
  std::string type = std::string(PolicyTypeName(policy.type));
  auto need = [&](bool ok, const std::string& what) {
    if (!ok) Error(node, "`" + path + "." + type + "`: " + what);
  };
  switch (policy.type) {
    case PolicyType::kStatusCode:
      need(node["status_code"].IsDefined(), "needs at least one of `status_codes`");  // else ReadBlock checked
      break;
    case PolicyType::kLatency:
      need(policy.upper_threshold_ms == 0 || policy.upper_threshold_ms > policy.threshold_ms,
           "`upper_threshold_ms` must be more than `threshold_ms` (or 0 for no upper bound)");
      break;
    case PolicyType::kProbabilistic:
      need(policy.sampling_percentage >= 0, "`sampling_percentage` must not be negative");
      break;
    case PolicyType::kStringAttribute:
      need(!policy.key.empty(), "needs a `key`");
      need(!policy.values.empty(), "needs at least one of `values`");
      if (policy.enabled_regex_matching) {
        for (const auto& value : policy.values) {
          RE2 regex(value, RE2::Quiet);
          need(regex.ok(), "bad regular expression `" + value + "`: " + regex.error());
        }
      }
      break;
    case PolicyType::kNumericAttribute:
      need(!policy.key.empty(), "needs a `key`");
      need(policy.min_value || policy.max_value, "needs `min_value`, `max_value` or both");
      need(!policy.min_value || !policy.max_value || *policy.min_value <= *policy.max_value,
           "`min_value` must not be more than `max_value`");
      break;
    case PolicyType::kBooleanAttribute: need(!policy.key.empty(), "needs a `key`"); break;
    case PolicyType::kSpanCount:
      need(policy.max_spans == 0 || policy.max_spans >= policy.min_spans,
           "`max_spans` must be at least `min_spans` (or 0 for no upper bound)");
      break;
    case PolicyType::kTraceState:
      need(!policy.key.empty(), "needs a `key`");
      need(!policy.values.empty(), "needs at least one of `values`");
      break;
    case PolicyType::kOttlCondition:
      // Parsed so that its own mistakes are reported too, then refused: see docs/sampling.md.
      Error(node, "`" + path + "`: unsupported policy `" + policy.name +
                      "` of type `ottl_condition` (OTTL conditions are not evaluated by tracery; express "
                      "the condition with string_attribute, numeric_attribute, boolean_attribute, status_code, "
                      "and or drop policies)");
      break;
    case PolicyType::kAnd: need(!policy.sub_policies.empty(), "needs at least one of `and_sub_policy`"); break;
    case PolicyType::kDrop: need(!policy.sub_policies.empty(), "needs at least one of `drop_sub_policy`"); break;
    case PolicyType::kComposite: {
      need(!policy.sub_policies.empty(), "needs at least one of `composite_sub_policy`");
      std::set<std::string> names;
      for (const auto& sub : policy.sub_policies) names.insert(sub.name);
      for (const auto& name : policy.policy_order)
        need(names.count(name) > 0, "`policy_order` names `" + name + "`, which is none of its sub-policies");
      int64_t total = 0;
      for (const auto& allocation : policy.rate_allocation) {
        need(names.count(allocation.policy) > 0,
             "`rate_allocation` names `" + allocation.policy + "`, which is none of its sub-policies");
        total += std::max<int64_t>(allocation.percent, 0);
      }
      need(total <= 100, "`rate_allocation` percents add up to " + std::to_string(total) + ", more than 100");
      break;
    }
    case PolicyType::kAlwaysSample:
    case PolicyType::kRateLimiting: break;
  }
}

}  // namespace

std::string_view PolicyTypeName(PolicyType type) {
  for (const auto& [text, t] : kTypeNames)
    if (t == type) return text;
  return "unknown";
}

Result<TailSamplingConfig> ParseTailSamplingConfig(const YAML::Node& node, std::string_view source,
                                                   std::string_view key_path) {
  TailSamplingConfig config;
  Reader reader(source);
  std::string path(key_path);
  try {
    if (!node || node.IsNull()) {
      reader.Error(node, "`" + path + "` needs `policies`");
    } else {
      bool has_policies = false;
      reader.Walk(node, path,
                  {{"decision_wait", reader.Duration(config.decision_wait)},
                   {"num_traces", reader.Unsigned(config.num_traces)},
                   {"expected_new_traces_per_sec", reader.Unsigned(config.expected_new_traces_per_sec)},
                   {"decision_cache",
                    [&](const YAML::Node& cache, const std::string& p) {
                      reader.Walk(cache, p,
                                  {{"sampled_cache_size", reader.Unsigned(config.sampled_cache_size)},
                                   {"non_sampled_cache_size", reader.Unsigned(config.non_sampled_cache_size)}});
                    }},
                   {"policies", [&](const YAML::Node& list, const std::string& p) {
                      has_policies = true;
                      reader.ReadPolicies(list, p, Level::kTop, config.policies);
                    }}});
      if (node.IsMap() && config.policies.empty() && (!has_policies || node["policies"].IsSequence()))
        reader.Error(node, "`" + path + "` needs `policies` (at least one policy)");
      if (node.IsMap() && config.num_traces == 0) reader.Error(node["num_traces"], "`" + path + ".num_traces` must be more than zero");
    }
  } catch (const YAML::Exception& e) {
    reader.Error(node, std::string("invalid YAML: ") + e.what());
  }
  TRACERY_RETURN_IF_ERROR(reader.Report());
  return config;
}

}  // namespace tracery::sampling
