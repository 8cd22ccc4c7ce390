#include "loadgen/span_vocabulary.h"

#include <array>

namespace tracery::bench {
namespace {

template <typename Item, size_t kCount>
const Item& PickOne(const std::array<Item, kCount>& items, std::mt19937_64& random) {
  return items[std::uniform_int_distribution<size_t>(0, kCount - 1)(random)];
}

constexpr std::array kNodeFailures = {
    Failure{"TypeError", "Cannot read properties of undefined (reading 'price')"},
    Failure{"Error", "upstream request aborted: socket hang up"},
};
constexpr std::array kGoFailures = {
    Failure{"*errors.errorString", "context deadline exceeded"},
    Failure{"*fmt.wrapError", "decode cart item: unexpected end of JSON input"},
};
constexpr std::array kJavaFailures = {
    Failure{"java.lang.NullPointerException",
            "Cannot invoke \"String.length()\" because \"sku\" is null"},
    Failure{"java.lang.IllegalStateException", "Order total does not match line items"},
    Failure{"org.springframework.dao.DataAccessResourceFailureException",
            "Unable to acquire JDBC Connection within 3000ms"},
};
constexpr std::array kPythonFailures = {
    Failure{"ValueError", "invalid literal for int() with base 10: 'undefined'"},
    Failure{"KeyError", "'locale'"},
};
constexpr std::array kRustFailures = {
    Failure{"shipping::QuoteError", "no rate for destination country"},
};
constexpr std::array kSqlFailures = {
    Failure{"QueryCanceled", "canceling statement due to statement timeout"},
    Failure{"DeadlockDetected", "deadlock detected"},
    Failure{"OperationalError", "server closed the connection unexpectedly"},
};
constexpr std::array kCacheFailures = {
    Failure{"TimeoutError", "Command timed out after 500ms"},
    Failure{"ConnectionError", "read tcp 10.0.4.12:51234->10.0.7.3:6379: connection reset by peer"},
    Failure{"ResponseError", "READONLY You can't write against a read only replica."},
};
constexpr std::array kUpstreamErrorStatuses = {429, 500, 502, 503, 504};
constexpr std::array<std::string_view, 4> kLogMessages = {
    "slow downstream call exceeded latency budget",
    "retrying request after connection reset",
    "feature flag 'new-pricing' evaluated from stale cache",
    "request body larger than 64KiB, buffering to disk",
};
constexpr std::array<std::string_view, 4> kUserAgents = {
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/126.0.0.0 Safari/537.36",
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like "
    "Gecko) Version/17.5 Mobile/15E148 Safari/604.1",
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko) "
    "Version/17.4 Safari/605.1.15",
    "Mozilla/5.0 (X11; Linux x86_64; rv:127.0) Gecko/20100101 Firefox/127.0",
};

}  // namespace

void AddString(opentelemetry::proto::trace::v1::Span& span, std::string_view key,
               std::string_view value) {
  auto* attribute = span.add_attributes();
  attribute->set_key(std::string(key));
  attribute->mutable_value()->set_string_value(std::string(value));
}

void AddInt(opentelemetry::proto::trace::v1::Span& span, std::string_view key, int64_t value) {
  auto* attribute = span.add_attributes();
  attribute->set_key(std::string(key));
  attribute->mutable_value()->set_int_value(value);
}

void AddEventString(opentelemetry::proto::trace::v1::Span::Event& event, std::string_view key,
                    std::string_view value) {
  auto* attribute = event.add_attributes();
  attribute->set_key(std::string(key));
  attribute->mutable_value()->set_string_value(std::string(value));
}

const Failure& RandomHandlerFailure(Language language, std::mt19937_64& random) {
  switch (language) {
    case Language::kNode: return PickOne(kNodeFailures, random);
    case Language::kGo: return PickOne(kGoFailures, random);
    case Language::kJava: return PickOne(kJavaFailures, random);
    case Language::kPython: return PickOne(kPythonFailures, random);
    case Language::kRust: return PickOne(kRustFailures, random);
  }
  return kRustFailures[0];
}

const Failure& RandomSqlFailure(std::mt19937_64& random) {
  return PickOne(kSqlFailures, random);
}

const Failure& RandomCacheFailure(std::mt19937_64& random) {
  return PickOne(kCacheFailures, random);
}

int RandomUpstreamErrorStatus(std::mt19937_64& random) {
  return PickOne(kUpstreamErrorStatuses, random);
}

std::string_view RandomLogMessage(std::mt19937_64& random) {
  return PickOne(kLogMessages, random);
}

std::string_view RandomUserAgent(std::mt19937_64& random) {
  return PickOne(kUserAgents, random);
}

std::string RandomClientAddress(std::mt19937_64& random) {
  // Addresses from the documentation ranges (RFC 5737), so nothing real is named.
  std::uniform_int_distribution<int> octet(1, 254);
  return "198.51.100." + std::to_string(octet(random));
}

int SuccessStatusFor(std::string_view method) {
  if (method == "POST") return 201;
  if (method == "DELETE") return 204;
  return 200;
}

std::string_view SqlTableOf(std::string_view statement) {
  for (std::string_view keyword : {"FROM ", "INTO ", "UPDATE "}) {
    const size_t position = statement.find(keyword);
    if (position == std::string_view::npos) continue;
    std::string_view rest = statement.substr(position + keyword.size());
    return rest.substr(0, rest.find_first_of(" (,"));
  }
  return {};
}

std::string_view HostOfUrl(std::string_view url) {
  const size_t scheme_end = url.find("://");
  if (scheme_end == std::string_view::npos) return url;
  std::string_view rest = url.substr(scheme_end + 3);
  return rest.substr(0, rest.find_first_of(":/"));
}

}  // namespace tracery::bench
