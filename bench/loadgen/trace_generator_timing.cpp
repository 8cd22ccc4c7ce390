// The second half of TraceGenerator: laying the finished tree out in time, and the random
// values (ids, placeholders, durations) the first half draws from.
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstring>

#include "loadgen/trace_generator.h"

namespace tracery::bench {
namespace {

constexpr double kNanosPerMilli = 1e6;

// Deterministic pseudo-random mix (splitmix64): turns a small index into a stable,
// random-looking identifier, so the shop has a fixed catalogue of products and users.
uint64_t Mix(uint64_t value) {
  value += 0x9e3779b97f4a7c15ULL;
  value = (value ^ (value >> 30)) * 0xbf58476d1ce4e5b9ULL;
  value = (value ^ (value >> 27)) * 0x94d049bb133111ebULL;
  return value ^ (value >> 31);
}

std::string ProductCode(uint64_t product_index) {
  constexpr std::string_view kAlphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789";
  uint64_t bits = Mix(product_index);
  std::string code;
  for (int i = 0; i < 10; ++i) {
    code.push_back(kAlphabet[bits % kAlphabet.size()]);
    bits /= kAlphabet.size();
  }
  return code;
}

std::string Uuid(uint64_t high, uint64_t low) {
  char text[37];
  std::snprintf(text, sizeof text, "%08x-%04x-%04x-%04x-%012llx",
                static_cast<unsigned>(high >> 32), static_cast<unsigned>((high >> 16) & 0xffff),
                static_cast<unsigned>(0x4000 | (high & 0x0fff)),
                static_cast<unsigned>(0x8000 | ((low >> 48) & 0x3fff)),
                static_cast<unsigned long long>(low & 0xffffffffffffULL));
  return text;
}

}  // namespace

// Bottom-up: a node lasts its own work plus its children, laid out in sequence, except
// that parallel siblings share a start. Message consumers start after their producer ends
// and do not lengthen it. Nodes are in pre-order, so walking backwards sees children first.
void TraceGenerator::ComputeDurations() {
  std::uniform_real_distribution<double> unit(0.0, 1.0);
  for (int index = static_cast<int>(nodes_.size()) - 1; index >= 0; --index) {
    Node& node = nodes_[index];
    int sequential_groups = 0;
    for (int child : node.children) {
      const Node& child_node = nodes_[child];
      if (!child_node.starts_after_parent_ends && !child_node.runs_with_previous_sibling) {
        ++sequential_groups;
      }
    }
    // The node's own work is spread before, between and after its children.
    const double lead_ms = node.self_ms * 0.5 * unit(random_);
    const double gap_ms = sequential_groups > 1 ? node.self_ms * 0.2 / sequential_groups : 0;
    double cursor_ms = lead_ms;
    double group_start_ms = lead_ms;
    double group_end_ms = lead_ms;
    bool first_group = true;
    for (int child : node.children) {
      Node& child_node = nodes_[child];
      if (child_node.starts_after_parent_ends) continue;
      if (!child_node.runs_with_previous_sibling) {
        cursor_ms = first_group ? group_end_ms : group_end_ms + gap_ms;
        group_start_ms = cursor_ms;
        first_group = false;
        child_node.offset_in_parent_ms = group_start_ms;
      } else {
        child_node.offset_in_parent_ms = group_start_ms + 0.05 * unit(random_);
      }
      group_end_ms = std::max(group_end_ms,
                              child_node.offset_in_parent_ms + child_node.duration_ms);
    }
    const double used_self_ms = lead_ms + gap_ms * std::max(sequential_groups - 1, 0);
    node.duration_ms = group_end_ms + std::max(node.self_ms - used_self_ms, 0.0);
    for (int child : node.children) {
      Node& child_node = nodes_[child];
      if (child_node.starts_after_parent_ends) {
        child_node.offset_in_parent_ms = node.duration_ms + LogNormalMs(8, 0.8);  // queue lag
      }
    }
  }
}

// Top-down: absolute times, shifted so that the last span of the trace ends just before
// `now_unix_ns`, as a trace would look when its batch reaches the backend.
void TraceGenerator::WriteTimestamps(uint64_t now_unix_ns) {
  std::vector<double> start_ms(nodes_.size(), 0.0);
  double trace_end_ms = 0;
  for (size_t index = 0; index < nodes_.size(); ++index) {
    const Node& node = nodes_[index];
    if (node.parent >= 0) start_ms[index] = start_ms[node.parent] + node.offset_in_parent_ms;
    trace_end_ms = std::max(trace_end_ms, start_ms[index] + node.duration_ms);
  }
  const double export_delay_ms = LogNormalMs(500, 0.5);  // SDK batch + collector batch
  const double base_ns = static_cast<double>(now_unix_ns) -
                         (trace_end_ms + export_delay_ms) * kNanosPerMilli;
  for (size_t index = 0; index < nodes_.size(); ++index) {
    auto& span = nodes_[index].generated.span;
    const auto start_ns = static_cast<uint64_t>(base_ns + start_ms[index] * kNanosPerMilli);
    const auto end_ns = static_cast<uint64_t>(
        base_ns + (start_ms[index] + nodes_[index].duration_ms) * kNanosPerMilli);
    span.set_start_time_unix_nano(start_ns);
    span.set_end_time_unix_nano(end_ns);
    // Events (exceptions, log lines) happen just before the span ends, 10 µs apart.
    const int event_count = span.events_size();
    for (int event = 0; event < event_count; ++event) {
      const uint64_t before_end_ns = 10'000ULL * (event_count - event);
      span.mutable_events(event)->set_time_unix_nano(
          std::max(start_ns, end_ns - std::min(before_end_ns, end_ns)));
    }
  }
}

std::string TraceGenerator::FillPlaceholders(std::string_view text) {
  std::string filled;
  filled.reserve(text.size() + 32);
  size_t position = 0;
  while (position < text.size()) {
    const size_t open = text.find('{', position);
    const size_t close = open == std::string_view::npos ? open : text.find('}', open);
    if (close == std::string_view::npos) {
      filled.append(text.substr(position));
      break;
    }
    filled.append(text.substr(position, open - position));
    filled.append(PlaceholderValue(text.substr(open + 1, close - open - 1)));
    position = close + 1;
  }
  return filled;
}

std::string TraceGenerator::PlaceholderValue(std::string_view name) {
  // Within a trace the user, session, order and currency stay fixed once chosen.
  if (name == "userId" && !user_id_.empty()) return user_id_;
  if (name == "sessionId" && !session_id_.empty()) return session_id_;
  if (name == "orderId" && !order_id_.empty()) return order_id_;
  if (name == "currency" && !currency_.empty()) return currency_;
  if (name == "productId") return ProductCode(UniformInt(0, 4999));
  if (name == "userId") {
    const uint64_t user = UniformInt(0, 99'999);
    return Uuid(Mix(user), Mix(user + 1'000'000));
  }
  if (name == "sessionId") return Uuid(random_(), random_());
  if (name == "orderId") return std::to_string(UniformInt(10'000'000, 99'999'999));
  if (name == "currency") {
    constexpr std::string_view kCurrencies[] = {"USD", "EUR", "GBP", "JPY", "CAD"};
    return std::string(kCurrencies[UniformInt(0, 4)]);
  }
  if (name == "page") return std::to_string(UniformInt(1, 20));
  return std::to_string(UniformInt(1, 1000));
}

std::string TraceGenerator::RandomBytes(int count) {
  std::string bytes(count, '\0');
  for (int i = 0; i < count; i += 8) {
    const uint64_t word = random_();
    std::memcpy(bytes.data() + i, &word, std::min(8, count - i));
  }
  return bytes;
}

double TraceGenerator::LogNormalMs(double median_ms, double sigma) {
  // Long tail: the median is `median_ms`, one request in a hundred takes ~e^(2.3 sigma) longer.
  std::lognormal_distribution<double> duration(std::log(median_ms), sigma);
  return duration(random_);
}

bool TraceGenerator::Chance(double probability) {
  if (probability >= 1.0) return true;
  return std::uniform_real_distribution<double>(0.0, 1.0)(random_) < probability;
}

int TraceGenerator::UniformInt(int low, int high) {
  return std::uniform_int_distribution<int>(low, high)(random_);
}

}  // namespace tracery::bench
