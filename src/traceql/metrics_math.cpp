// Time buckets, the quantile sketch, histogram buckets and label ordering for metrics.cpp.
#include <algorithm>
#include <bit>
#include <cmath>
#include <cstring>
#include <limits>
#include <string>
#include <vector>

#include "traceql/metrics_internal.h"

namespace tracery::traceql {

uint64_t DefaultMetricsStepNanos(uint64_t start_unix_nano, uint64_t end_unix_nano) {
  constexpr uint64_t kSecond = 1'000'000'000ULL;
  uint64_t delta = end_unix_nano > start_unix_nano ? end_unix_nano - start_unix_nano : 0;
  uint64_t baseline = delta / 240;  // aim for 240 points (1 h at 15 s)
  uint64_t interval = baseline / (5 * kSecond) * (5 * kSecond);
  if (interval < 5 * kSecond) interval = baseline / kSecond * kSecond;
  return interval < kSecond ? kSecond : interval;
}

namespace metrics_internal {

Result<TimeGrid> TimeGrid::Make(const MetricsRange& range) {
  const uint64_t start = range.start_unix_nano, end = range.end_unix_nano;
  if (start == 0) return Status::InvalidArgument("metrics query: start is required");
  if (end <= start) return Status::InvalidArgument("metrics query: end must be after start");
  TimeGrid grid;
  // Tempo treats a range whose width is exactly one step as instant: no alignment.
  if (range.instant || end - start == range.step_nanos) {
    grid.left = start;
    grid.step = end - start;
    grid.count = 1;
    return grid;
  }
  const uint64_t step = range.step_nanos;
  if (step == 0) return Status::InvalidArgument("metrics query: step must be positive");
  uint64_t left = start - start % step;
  uint64_t right = end % step == 0 ? end : end + (step - end % step);
  if (right < end) return Status::InvalidArgument("metrics query: end is out of range");
  // The extra first bucket Tempo's frontend adds, so that the bucket stamped with the
  // aligned start (which covers the time before it) is present too.
  if (left > step) left -= step;
  uint64_t count = (right - left) / step;
  if (count > range.max_intervals) {
    return Status::InvalidArgument("metrics query: step " + std::to_string(step) + "ns gives " +
                                   std::to_string(count) + " intervals, more than the limit of " +
                                   std::to_string(range.max_intervals));
  }
  grid.left = left;
  grid.step = step;
  grid.count = static_cast<uint32_t>(count);
  return grid;
}

int64_t TimeGrid::BucketOf(uint64_t unix_nano) const {
  if (unix_nano <= left || unix_nano > right()) return -1;
  return static_cast<int64_t>((unix_nano - left - 1) / step);
}

int64_t TimeGrid::TimestampMs(uint32_t bucket) const {
  return static_cast<int64_t>((left + (static_cast<uint64_t>(bucket) + 1) * step) / 1'000'000ULL);
}

// ---- quantile sketch ------------------------------------------------------------------------

namespace {
// A hair under the documented 1 % so that rounding at bucket edges stays inside the bound.
constexpr double kSketchAlpha = 0.0099;
const double kGamma = (1 + kSketchAlpha) / (1 - kSketchAlpha);
const double kLogGamma = std::log(kGamma);
}  // namespace

namespace {
// Bucket i holds the magnitudes in (gamma^(i-1), gamma^i]. Its upper bounds are tabulated for
// the magnitudes metrics meet (1e-9 to ~1e13), and log2 of a value is estimated from its
// binary exponent and a table of log2 over the mantissa's top bits (error ~1e-6): the estimate
// names the bucket or its neighbour, settled by a comparison, instead of a logarithm per
// span. Outside the table the logarithm decides.
constexpr int32_t kTableLow = -1100, kTableHigh = 1500;
constexpr int kMantissaBits = 8;

struct SketchTables {
  std::vector<double> upper;       // upper[i - kTableLow] = gamma^i
  double log2_of[(1 << kMantissaBits) + 1];  // log2(1 + j / 2^kMantissaBits)
  double buckets_per_binade;
  SketchTables() {
    upper.reserve(size_t(kTableHigh - kTableLow + 1));
    for (int32_t i = kTableLow; i <= kTableHigh; ++i) upper.push_back(std::exp(i * kLogGamma));
    for (int j = 0; j <= (1 << kMantissaBits); ++j) log2_of[j] = std::log2(1 + double(j) / (1 << kMantissaBits));
    buckets_per_binade = std::log(2.0) / kLogGamma;
  }
};

const SketchTables& Tables() {
  static const SketchTables tables;
  return tables;
}
}  // namespace

int32_t QuantileSketch::IndexOf(double magnitude) {
  const SketchTables& tables = Tables();
  const std::vector<double>& upper = tables.upper;
  if (!(magnitude > upper.front() && magnitude <= upper.back()))
    return static_cast<int32_t>(std::ceil(std::log(magnitude) / kLogGamma));
  const uint64_t bits = std::bit_cast<uint64_t>(magnitude);
  const uint64_t mantissa = bits & ((uint64_t(1) << 52) - 1);
  const uint64_t top = mantissa >> (52 - kMantissaBits);
  const double within = double(mantissa & ((uint64_t(1) << (52 - kMantissaBits)) - 1)) / double(uint64_t(1) << (52 - kMantissaBits));
  const double log2_estimate = double(int64_t(bits >> 52) - 1023) + tables.log2_of[top] +
                               within * (tables.log2_of[top + 1] - tables.log2_of[top]);
  int64_t i = int64_t(std::ceil(log2_estimate * tables.buckets_per_binade)) - kTableLow;
  i = std::clamp<int64_t>(i, 1, int64_t(upper.size()) - 1);
  while (magnitude > upper[size_t(i)]) ++i;
  while (i > 1 && magnitude <= upper[size_t(i) - 1]) --i;
  return int32_t(i + kTableLow);
}

double QuantileSketch::ValueOf(int32_t index) {
  return std::exp(index * kLogGamma) * 2 / (kGamma + 1);
}

void QuantileSketch::Add(double value) {
  if (std::isnan(value)) return;
  double magnitude = std::fabs(value);
  if (magnitude < kMinMagnitude) {
    ++zero_;
  } else if (std::isinf(magnitude)) {
    return;
  } else if (value > 0) {
    positive_.Add(IndexOf(magnitude), 1);
  } else {
    negative_.Add(IndexOf(magnitude), 1);
  }
  ++count_;
}

void QuantileSketch::Merge(const QuantileSketch& other) {
  for (size_t i = 0; i < other.positive_.counts().size(); ++i)
    if (other.positive_.counts()[i]) positive_.Add(other.positive_.base() + int32_t(i), other.positive_.counts()[i]);
  for (size_t i = 0; i < other.negative_.counts().size(); ++i)
    if (other.negative_.counts()[i]) negative_.Add(other.negative_.base() + int32_t(i), other.negative_.counts()[i]);
  zero_ += other.zero_;
  count_ += other.count_;
}

double QuantileSketch::Quantile(double q) const {
  if (count_ == 0) return std::numeric_limits<double>::quiet_NaN();
  q = std::clamp(q, 0.0, 1.0);
  // Nearest rank, rounded up like Tempo's Log2Quantile; at least the first value.
  uint64_t rank = static_cast<uint64_t>(std::ceil(q * static_cast<double>(count_)));
  rank = std::clamp<uint64_t>(rank, 1, count_);
  uint64_t seen = 0;
  const auto& negative = negative_.counts();
  for (size_t i = negative.size(); i-- > 0;) {  // most negative first
    seen += negative[i];
    if (negative[i] && seen >= rank) return -ValueOf(negative_.base() + int32_t(i));
  }
  seen += zero_;
  if (seen >= rank) return 0;
  const auto& positive = positive_.counts();
  for (size_t i = 0; i < positive.size(); ++i) {
    seen += positive[i];
    if (positive[i] && seen >= rank) return ValueOf(positive_.base() + int32_t(i));
  }
  return positive_.empty() ? 0 : ValueOf(positive_.base() + int32_t(positive.size()) - 1);
}

// ---- values ---------------------------------------------------------------------------------

std::optional<double> HistogramBucketOf(const Value& value) {
  if (value.type != ValueType::kInt && value.type != ValueType::kDuration) return std::nullopt;
  if (value.int_value < 2) return std::nullopt;
  double bucket = static_cast<double>(std::bit_ceil(static_cast<uint64_t>(value.int_value)));
  return value.type == ValueType::kDuration ? bucket / 1e9 : bucket;
}

std::optional<double> NumericValueOf(const Value& value) {
  switch (value.type) {
    case ValueType::kInt:
      return static_cast<double>(value.int_value);
    case ValueType::kFloat:
      if (std::isnan(value.float_value)) return std::nullopt;
      return value.float_value;
    case ValueType::kDuration:
      return static_cast<double>(value.int_value) / 1e9;
    default:
      return std::nullopt;
  }
}

namespace {

void AppendFixed64(uint64_t bits, std::string& key) {
  char bytes[8];
  std::memcpy(bytes, &bits, 8);
  key.append(bytes, 8);
}

void AppendSized(std::string_view text, std::string& key) {
  AppendFixed64(text.size(), key);
  key.append(text);
}

void AppendAnyValueKey(const otlp::AnyValue& value, std::string& key) {
  key.push_back(static_cast<char>(value.type));
  switch (value.type) {
    case otlp::AnyValue::Type::kString:
    case otlp::AnyValue::Type::kBytes:
      AppendSized(value.string_value, key);
      break;
    case otlp::AnyValue::Type::kBool:
      key.push_back(value.bool_value ? 1 : 0);
      break;
    case otlp::AnyValue::Type::kInt:
      AppendFixed64(static_cast<uint64_t>(value.int_value), key);
      break;
    case otlp::AnyValue::Type::kDouble:
      AppendFixed64(std::bit_cast<uint64_t>(value.double_value), key);
      break;
    case otlp::AnyValue::Type::kArray:
      AppendFixed64(value.array_values.size(), key);
      for (const auto& element : value.array_values) AppendAnyValueKey(element, key);
      break;
    case otlp::AnyValue::Type::kKvList:
      AppendFixed64(value.kvlist_values.size(), key);
      for (const auto& kv : value.kvlist_values) {
        AppendSized(kv.key, key);
        AppendAnyValueKey(kv.value, key);
      }
      break;
    case otlp::AnyValue::Type::kEmpty:
      break;
  }
}

}  // namespace

void AppendValueKey(const Value& value, std::string& key) {
  key.push_back(static_cast<char>(value.type));
  switch (value.type) {
    case ValueType::kNil:
      break;
    case ValueType::kInt:
    case ValueType::kDuration:
    case ValueType::kStatus:
    case ValueType::kKind:
      AppendFixed64(static_cast<uint64_t>(value.int_value), key);
      break;
    case ValueType::kFloat:
      AppendFixed64(std::bit_cast<uint64_t>(value.float_value), key);
      break;
    case ValueType::kString:
      AppendSized(value.StringValue(), key);
      break;
    case ValueType::kBool:
      key.push_back(value.bool_value ? 1 : 0);
      break;
    case ValueType::kArray:
      if (value.array != nullptr) AppendAnyValueKey(*value.array, key);
      break;
  }
}

// ---- labels ---------------------------------------------------------------------------------

namespace {
template <typename T>
int ThreeWay(const T& a, const T& b) {
  return a < b ? -1 : (b < a ? 1 : 0);
}
}  // namespace

int CompareAnyValue(const otlp::AnyValue& a, const otlp::AnyValue& b) {
  if (a.type != b.type) return ThreeWay(a.type, b.type);
  switch (a.type) {
    case otlp::AnyValue::Type::kString:
    case otlp::AnyValue::Type::kBytes:
      return ThreeWay(a.string_value, b.string_value);
    case otlp::AnyValue::Type::kBool:
      return ThreeWay(a.bool_value, b.bool_value);
    case otlp::AnyValue::Type::kInt:
      return ThreeWay(a.int_value, b.int_value);
    case otlp::AnyValue::Type::kDouble:
      if (std::isnan(a.double_value) || std::isnan(b.double_value)) {
        return ThreeWay(!std::isnan(a.double_value), !std::isnan(b.double_value));
      }
      return ThreeWay(a.double_value, b.double_value);
    case otlp::AnyValue::Type::kArray: {
      size_t n = std::min(a.array_values.size(), b.array_values.size());
      for (size_t i = 0; i < n; ++i) {
        if (int c = CompareAnyValue(a.array_values[i], b.array_values[i]); c != 0) return c;
      }
      return ThreeWay(a.array_values.size(), b.array_values.size());
    }
    case otlp::AnyValue::Type::kKvList: {
      size_t n = std::min(a.kvlist_values.size(), b.kvlist_values.size());
      for (size_t i = 0; i < n; ++i) {
        if (int c = ThreeWay(a.kvlist_values[i].key, b.kvlist_values[i].key); c != 0) return c;
        if (int c = CompareAnyValue(a.kvlist_values[i].value, b.kvlist_values[i].value); c != 0) return c;
      }
      return ThreeWay(a.kvlist_values.size(), b.kvlist_values.size());
    }
    case otlp::AnyValue::Type::kEmpty:
      return 0;
  }
  return 0;
}

bool LabelsLess(const std::vector<otlp::KeyValue>& a, const std::vector<otlp::KeyValue>& b) {
  size_t n = std::min(a.size(), b.size());
  for (size_t i = 0; i < n; ++i) {
    if (int c = ThreeWay(a[i].key, b[i].key); c != 0) return c < 0;
    if (int c = CompareAnyValue(a[i].value, b[i].value); c != 0) return c < 0;
  }
  return a.size() < b.size();
}

otlp::KeyValue StringLabel(std::string key, std::string value) {
  otlp::KeyValue label;
  label.key = std::move(key);
  label.value.type = otlp::AnyValue::Type::kString;
  label.value.string_value = std::move(value);
  return label;
}

otlp::KeyValue DoubleLabel(std::string key, double value) {
  otlp::KeyValue label;
  label.key = std::move(key);
  label.value.type = otlp::AnyValue::Type::kDouble;
  label.value.double_value = value;
  return label;
}

// Tempo writes a nil label value as the string "nil".
otlp::KeyValue NilLabel(std::string key) {
  otlp::KeyValue label;
  label.key = std::move(key);
  label.value.type = otlp::AnyValue::Type::kString;
  label.value.string_value = "nil";
  return label;
}

}  // namespace metrics_internal
}  // namespace tracery::traceql
