// Parser fuzzing, bounded in time so it runs in CI: random token sequences and random bytes
// must never crash, and byte soup that cannot be TraceQL is never accepted.
#include <gtest/gtest.h>

#include <chrono>
#include <random>
#include <string>

#include "traceql/engine.h"

namespace tracery::traceql {
namespace {

const char* kTokens[] = {
    "{", "}", "(", ")", ",", "|", "=", "!=", "<", "<=", ">", ">=", "=~", "!~", "&&", "||", "!", "+", "-", "*",
    "/", "%", "^", ">>", "<<", "~", "!>", "!<", "!>>", "!<<", "&>", "&<", "&>>", "&<<", "&~", ".a", "span.b",
    "resource.service.name", "event.x", "link.y", "instrumentation.z", "parent.a", "duration", "name", "status",
    "kind", "span:id", "trace:duration", "event:name", "nestedSetParent", "1", "2.5", "1s", "100ms", "\"x\"",
    "`raw`", "true", "false", "nil", "ok", "error", "server", "count", "avg", "min", "max", "sum", "by",
    "select", "coalesce", "rate", "quantile_over_time", "compare", "topk", "with", "sample", "minInt",
};


TEST(TraceQLFuzz, RandomTokensAndBytesNeverCrash) {
  std::mt19937_64 random(20240611);
  auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(2500);
  otlp::TracesData data;
  data.resource_spans.emplace_back();
  data.resource_spans[0].scope_spans.emplace_back();
  for (int i = 0; i < 4; ++i) {
    otlp::Span span;
    span.span_id = std::string(7, '\0') + static_cast<char>(i + 1);
    if (i > 0) span.parent_span_id = std::string(7, '\0') + static_cast<char>(i);
    span.start_time_unix_nano = 10 * i;
    span.end_time_unix_nano = 100;
    data.resource_spans[0].scope_spans[0].spans.push_back(span);
  }
  TraceView view = BuildTraceView(TraceId{}, data);
  size_t token_runs = 0, byte_runs = 0, accepted = 0;
  while (std::chrono::steady_clock::now() < deadline) {
    std::string text;
    size_t n = random() % 16;
    for (size_t i = 0; i < n; ++i) {
      text += kTokens[random() % (sizeof(kTokens) / sizeof(kTokens[0]))];
      text += random() % 3 == 0 ? "" : " ";
    }
    auto query = Parse(text);
    ++token_runs;
    if (query.ok()) {
      ++accepted;
      // Whatever parses must evaluate without crashing.
      EvaluateSearch(*query.value(), view);
      PlanPruning(*query.value());
    } else {
      EXPECT_EQ(query.status().code(), StatusCode::kInvalidArgument);
    }

    // Bytes with no '{' and no aggregate word cannot be a query: never OK.
    std::string bytes(random() % 40, '\0');
    for (char& c : bytes) {
      c = static_cast<char>(random() % 256);
      if (c == '{') c = '[';
    }
    auto garbage = Parse(bytes);
    ++byte_runs;
    EXPECT_FALSE(garbage.ok() && bytes.find("(") == std::string::npos) << bytes;
  }
  EXPECT_GT(token_runs, 1000u);
  EXPECT_GT(byte_runs, 1000u);
  RecordProperty("accepted", static_cast<int>(accepted));
}

}  // namespace
}  // namespace tracery::traceql
