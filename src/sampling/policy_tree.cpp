// Compiling a TailSamplingConfig: span-level leaves become predicates (one bit each), the rest a
// tree evaluated from the trace summary. Also the pieces whose exact arithmetic matters for
// deciding alike with other instances (and with the Collector): the trace ID hash and the
// probabilistic threshold.
#include "sampling/policy_tree.h"

#include <algorithm>
#include <cmath>

#include "sampling/sampler.h"

namespace tracery::sampling {
namespace detail {

bool Predicate::MatchesString(std::string_view value) const {
  if (!regexes.empty()) {
    // Go's regexp.MatchString, which the Collector calls, finds a match anywhere in the value.
    for (const auto& regex : regexes)
      if (RE2::PartialMatch(value, *regex)) return true;
    return false;
  }
  return std::binary_search(exact_values.begin(), exact_values.end(), value);
}

// A W3C tracestate header value: `key=value` members separated by commas, optional spaces or
// tabs around them. Members without `=` make the whole value invalid, which matches nothing
// (the Collector's parser refuses such a trace state).
bool Predicate::MatchesTraceState(std::string_view trace_state) const {
  std::optional<std::string_view> found;
  while (!trace_state.empty()) {
    size_t comma = trace_state.find(',');
    std::string_view member = trace_state.substr(0, comma);
    trace_state = comma == std::string_view::npos ? std::string_view() : trace_state.substr(comma + 1);
    while (!member.empty() && (member.front() == ' ' || member.front() == '\t')) member.remove_prefix(1);
    while (!member.empty() && (member.back() == ' ' || member.back() == '\t')) member.remove_suffix(1);
    if (member.empty()) continue;
    size_t equals = member.find('=');
    if (equals == 0 || equals == std::string_view::npos) return false;
    if (!found && member.substr(0, equals) == key) found = member.substr(equals + 1);
  }
  return found && std::binary_search(exact_values.begin(), exact_values.end(), *found);
}

uint64_t HashTraceId(std::string_view salt, const TraceId& trace_id) {
  constexpr uint64_t kOffset = 14695981039346656037ull, kPrime = 1099511628211ull;
  uint64_t hash = kOffset;
  for (char c : salt) hash = (hash ^ uint8_t(c)) * kPrime;
  for (uint8_t b : trace_id.bytes) hash = (hash ^ b) * kPrime;
  return hash;
}

uint64_t ProbabilityThreshold(double ratio) {
  if (!(ratio > 0)) return 0;
  if (ratio >= 1) return UINT64_MAX;
  // ratio = mantissa * 2^exponent exactly, with a 53-bit integer mantissa.
  int exponent;
  double fraction = std::frexp(ratio, &exponent);
  auto mantissa = uint64_t(std::ldexp(fraction, 53));
  exponent -= 53;
  // The product with 2^64 - 1, exact in 128 bits, rounded to 64 significant bits (to nearest,
  // ties to even) as Go's big.Float does at the precision of its 64-bit operand.
  unsigned __int128 product = (unsigned __int128)UINT64_MAX * mantissa;
  int bits = 128;
  while (bits > 0 && !((product >> (bits - 1)) & 1)) --bits;
  int shift = std::max(bits - 64, 0);
  unsigned __int128 rounded = product >> shift;
  if (shift > 0) {
    unsigned __int128 remainder = product & ((((unsigned __int128)1) << shift) - 1);
    unsigned __int128 half = ((unsigned __int128)1) << (shift - 1);
    if (remainder > half || (remainder == half && (rounded & 1))) ++rounded;
  }
  // Then truncated to an integer (big.Float.Uint64), clamped to the uint64 range.
  int scale = shift + exponent;
  if (scale >= 0) {
    if (scale >= 64 || rounded >= (((unsigned __int128)1) << (64 - scale))) return UINT64_MAX;
    return uint64_t(rounded << scale);
  }
  if (-scale >= 128) return 0;
  unsigned __int128 value = rounded >> -scale;
  return value > UINT64_MAX ? UINT64_MAX : uint64_t(value);
}

namespace {

class Compiler {
 public:
  Compiler(CompiledPolicies& out, std::string_view source) : out_(out), source_(source) {}

  PolicyNode Build(const PolicyConfig& config) {
    PolicyNode node;
    node.type = config.type;
    node.name = config.name;
    node.invert = config.invert_match;
    switch (config.type) {
      case PolicyType::kAlwaysSample: break;
      case PolicyType::kStatusCode: {
        Predicate p;
        p.kind = Predicate::Kind::kStatus;
        for (uint8_t code : config.status_codes) p.status_mask |= uint8_t(1u << code);
        node.predicate = Add(std::move(p), config);
        break;
      }
      case PolicyType::kStringAttribute: {
        Predicate p;
        p.kind = Predicate::Kind::kString;
        p.key = config.key;
        if (config.enabled_regex_matching) {
          for (const auto& value : config.values) p.regexes.push_back(std::make_unique<RE2>(value, RE2::Quiet));
        } else {
          for (const auto& value : config.values)
            if (!value.empty()) p.exact_values.push_back(value);  // the Collector skips empty values
        }
        node.predicate = Add(std::move(p), config);
        break;
      }
      case PolicyType::kNumericAttribute: {
        Predicate p;
        p.kind = Predicate::Kind::kNumeric;
        p.key = config.key;
        p.min_value = config.min_value;
        p.max_value = config.max_value;
        node.predicate = Add(std::move(p), config);
        break;
      }
      case PolicyType::kBooleanAttribute: {
        Predicate p;
        p.kind = Predicate::Kind::kBoolean;
        p.key = config.key;
        p.bool_value = config.bool_value;
        node.predicate = Add(std::move(p), config);
        break;
      }
      case PolicyType::kTraceState: {
        Predicate p;
        p.kind = Predicate::Kind::kTraceState;
        p.key = config.key;
        // A member (key=value) longer than 256 characters is not valid trace state: such values
        // could never match, and the Collector leaves them out.
        for (const auto& value : config.values)
          if (!value.empty() && config.key.size() + value.size() < 256) p.exact_values.push_back(value);
        node.predicate = Add(std::move(p), config);
        break;
      }
      case PolicyType::kLatency:
        node.threshold_ms = config.threshold_ms;
        node.upper_threshold_ms = config.upper_threshold_ms;
        break;
      case PolicyType::kProbabilistic:
        node.hash_salt = config.hash_salt.empty() ? std::string(kDefaultHashSalt) : config.hash_salt;
        node.hash_threshold = ProbabilityThreshold(config.sampling_percentage / 100);
        break;
      case PolicyType::kSpanCount:
        node.min_spans = config.min_spans;
        node.max_spans = config.max_spans;
        break;
      case PolicyType::kRateLimiting:
        node.spans_per_second = config.spans_per_second;
        node.state = out_.rate_limiters++;
        break;
      case PolicyType::kOttlCondition:
        Error(config, "unsupported policy type `ottl_condition`");
        break;
      case PolicyType::kAnd:
      case PolicyType::kDrop:
        for (const auto& sub : config.sub_policies) node.children.push_back(Build(sub));
        break;
      case PolicyType::kComposite: BuildComposite(config, node); break;
    }
    return node;
  }

  Status Report() const {
    std::string message;
    for (const auto& error : errors_) message += (message.empty() ? "" : "\n") + error;
    return errors_.empty() ? Status::Ok() : Status::InvalidArgument(message);
  }

 private:
  // The Collector's composite: sub-policies take turns in `policy_order` (tracery: the named
  // ones first, then the others in list order); each has `percent` of the total spans per
  // second, an equal share when its percent is 0 or less, and nothing when rate_allocation
  // does not name it.
  void BuildComposite(const PolicyConfig& config, PolicyNode& node) {
    node.max_total_spans_per_second = config.max_total_spans_per_second;
    node.state = out_.composites++;
    std::vector<const PolicyConfig*> order;
    for (const auto& name : config.policy_order)
      for (const auto& sub : config.sub_policies)
        if (sub.name == name && std::find(order.begin(), order.end(), &sub) == order.end()) order.push_back(&sub);
    for (const auto& sub : config.sub_policies)
      if (std::find(order.begin(), order.end(), &sub) == order.end()) order.push_back(&sub);
    double total = double(config.max_total_spans_per_second);
    double equal_share = total / double(config.sub_policies.size());
    for (const PolicyConfig* sub : order) {
      double allocated = 0;
      for (const auto& allocation : config.rate_allocation)
        if (allocation.policy == sub->name)
          allocated = allocation.percent > 0 ? double(allocation.percent) / 100 * total : equal_share;
      node.allocated_spans_per_second.push_back(int64_t(allocated));
      node.children.push_back(Build(*sub));
    }
  }

  int Add(Predicate predicate, const PolicyConfig& config) {
    if (out_.predicates.size() == 64) {
      Error(config, "more than 64 span conditions (status_code, *_attribute, trace_state policies) in one config");
      return -1;
    }
    out_.predicates.push_back(std::move(predicate));
    return int(out_.predicates.size() - 1);
  }

  void Error(const PolicyConfig& config, const std::string& what) {
    errors_.push_back(std::string(source_) + ":" + std::to_string(config.line) + ": policy `" + config.name +
                      "`: " + what);
  }

  CompiledPolicies& out_;
  std::string_view source_;
  std::vector<std::string> errors_;
};

void IndexPredicates(CompiledPolicies& compiled) {
  for (size_t i = 0; i < compiled.predicates.size(); ++i) {
    Predicate& p = compiled.predicates[i];
    std::sort(p.exact_values.begin(), p.exact_values.end());
    uint64_t bit = uint64_t(1) << i;
    if (p.kind == Predicate::Kind::kStatus) {
      compiled.status_predicates |= bit;
    } else if (p.kind == Predicate::Kind::kTraceState) {
      compiled.trace_state_predicates |= bit;
    } else {
      auto entry = std::find_if(compiled.attribute_keys.begin(), compiled.attribute_keys.end(),
                                [&](const auto& k) { return k.key == p.key; });
      if (entry == compiled.attribute_keys.end()) {
        compiled.attribute_keys.push_back({p.key, 0});
        entry = compiled.attribute_keys.end() - 1;
      }
      entry->predicates |= bit;
    }
  }
}

}  // namespace
}  // namespace detail

std::string_view VerdictName(Verdict verdict) {
  switch (verdict) {
    case Verdict::kNotSampled: return "not_sampled";
    case Verdict::kSampled: return "sampled";
    case Verdict::kInvertSampled: return "inverted_sampled";
    case Verdict::kInvertNotSampled: return "inverted_not_sampled";
    case Verdict::kDropped: return "dropped";
  }
  return "unknown";
}

Result<PolicySet> PolicySet::Compile(TailSamplingConfig config, std::string_view source) {
  auto compiled = std::make_shared<detail::CompiledPolicies>();
  compiled->config = std::move(config);
  detail::Compiler compiler(*compiled, source);
  for (const auto& policy : compiled->config.policies) compiled->policies.push_back(compiler.Build(policy));
  TRACERY_RETURN_IF_ERROR(compiler.Report());
  detail::IndexPredicates(*compiled);
  PolicySet set;
  set.compiled_ = std::move(compiled);
  return set;
}

const TailSamplingConfig& PolicySet::config() const { return compiled_->config; }

Result<PolicySet> ParseTailSampling(const YAML::Node& node, std::string_view source, std::string_view key_path) {
  auto config = ParseTailSamplingConfig(node, source, key_path);
  if (!config.ok()) return config.status();
  return PolicySet::Compile(std::move(config).value(), source);
}

}  // namespace tracery::sampling
