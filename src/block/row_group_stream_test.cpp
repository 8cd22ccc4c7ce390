// Streaming a trace out of a row group (RowGroupSpanReader) and into a block span by span
// (BlockWriter::BeginTrace/AddSpan/EndTrace) stores what AddTrace stores: every field, parents
// given by position even when the parent comes later, spans of several resources and scopes.
#include "block/block.h"

#include <gtest/gtest.h>

#include "common/fault_env.h"

namespace tracery::block {
namespace {

otlp::KeyValue Text(const std::string& key, const std::string& value) {
  otlp::KeyValue kv;
  kv.key = key;
  kv.value.type = otlp::AnyValue::Type::kString;
  kv.value.string_value = value;
  return kv;
}

TraceId IdOf(int trace) { return TraceId::FromBytes(std::string(15, '\x07') + char(trace)); }

// Spans of two services; span i's parent is span (i + 3) % n, often a later one.
std::string EncodeTrace(int trace, int spans) {
  otlp::TracesData data;
  for (int service = 0; service < 2; ++service) {
    auto& rs = data.resource_spans.emplace_back();
    rs.resource.attributes = {Text("service.name", service ? "db" : "api")};
    auto& ss = rs.scope_spans.emplace_back();
    ss.scope.name = service ? "sql" : "http";
    for (int i = service; i < spans; i += 2) {
      otlp::Span& span = ss.spans.emplace_back();
      span.trace_id.assign(IdOf(trace).View());
      span.span_id = std::string(7, '\x01') + char(i);
      span.parent_span_id = std::string(7, '\x01') + char((i + 3) % spans);
      span.name = "op-" + std::to_string(i % 3);
      span.kind = otlp::SpanKind(1 + i % 5);
      span.start_time_unix_nano = 1'700'000'000'000'000'000ull + uint64_t(trace) * 1000 + uint64_t(spans - i);
      span.end_time_unix_nano = span.start_time_unix_nano + 500 + uint64_t(i);
      span.attributes = {Text("http.route", "/r" + std::to_string(i % 4)), Text("peer", "p" + std::to_string(i))};
      if (i % 4 == 0) {
        otlp::Event& event = span.events.emplace_back();
        event.name = "retry";
        event.time_unix_nano = span.start_time_unix_nano + 7;
        event.attributes = {Text("attempt", std::to_string(i))};
      }
      if (i % 5 == 0) {
        otlp::Link& link = span.links.emplace_back();
        link.trace_id = std::string(16, '\x05');
        link.span_id = std::string(8, '\x06');
      }
      if (i == 1) {
        span.status_code = otlp::StatusCode::kError;
        span.status_message = "boom";
      }
    }
  }
  return otlp::EncodeTracesData(data);
}

TEST(RowGroupStreamTest, AStreamedTraceIsStoredAsAddTraceStoresIt) {
  FaultInjectionEnv env;
  auto store = backend::NewLocalObjectStore("/blocks", env);
  WriterOptions options;
  options.row_group_spans = 40;  // several row groups
  std::vector<std::string> encoded;
  std::vector<TraceInput> traces;
  for (int t = 0; t < 12; ++t) encoded.push_back(EncodeTrace(t, 3 + t * 2));
  for (int t = 0; t < 12; ++t) traces.push_back({IdOf(t), encoded[size_t(t)]});
  auto written = WriteBlock(*store, "t", "sampled", traces, options);
  ASSERT_TRUE(written.ok()) << written.status().ToString();
  auto original = BlockReader::Open(*store, "t", written->block_id);
  ASSERT_TRUE(original.ok());
  ASSERT_GT((*original)->meta().row_groups, 2u);

  auto writer = BlockWriter::Create(*store, "t", "sampled", 12, options);
  ASSERT_TRUE(writer.ok());
  int streamed_traces = 0;
  for (uint32_t rg = 0; rg < (*original)->meta().row_groups; ++rg) {
    auto bytes = (*original)->ReadRowGroupBytes(rg);
    ASSERT_TRUE(bytes.ok());
    RowGroupSpanReader reader;
    ASSERT_TRUE(reader.Open(*bytes).ok());
    bytes->clear();  // the reader does not point into them
    TraceEntry trace;
    bool found = false;
    while (true) {
      ASSERT_TRUE(reader.NextTrace(trace, found).ok());
      if (!found) break;
      ASSERT_TRUE((*writer)->BeginTrace(trace.id).ok());
      for (uint32_t s = 0; s < trace.span_count; ++s) {
        RowGroupSpanReader::StreamedSpan span;
        ASSERT_TRUE(reader.NextSpan(span).ok());
        ASSERT_TRUE((*writer)->AddSpan(span.encoded, span.resource.first, span.resource.second, span.scope.first,
                                       span.scope.second).ok());
      }
      ASSERT_TRUE((*writer)->EndTrace().ok());
      ++streamed_traces;
    }
  }
  EXPECT_EQ(streamed_traces, 12);
  EXPECT_FALSE((*writer)->BeginTrace(IdOf(3)).ok()) << "IDs ascend as for AddTrace";
  auto copied_meta = (*writer)->Finish();
  ASSERT_TRUE(copied_meta.ok()) << copied_meta.status().ToString();
  EXPECT_EQ(copied_meta->span_count, written->span_count);
  EXPECT_EQ(copied_meta->row_groups, written->row_groups);
  EXPECT_EQ(copied_meta->min_start_unix_nano, written->min_start_unix_nano);
  EXPECT_EQ(copied_meta->max_end_unix_nano, written->max_end_unix_nano);
  auto copy = BlockReader::Open(*store, "t", copied_meta->block_id);
  ASSERT_TRUE(copy.ok());
  for (int t = 0; t < 12; ++t) {
    auto a = (*original)->FindTrace(IdOf(t));
    auto b = (*copy)->FindTrace(IdOf(t));
    ASSERT_TRUE(a.ok() && b.ok() && a->has_value() && b->has_value()) << t;
    EXPECT_EQ(otlp::EncodeTracesData(**a), otlp::EncodeTracesData(**b)) << "trace " << t;
  }
  const auto stats_a = (*original)->row_groups(), stats_b = (*copy)->row_groups();
  ASSERT_EQ(stats_a.size(), stats_b.size());
  for (size_t i = 0; i < stats_a.size(); ++i) {
    EXPECT_EQ(stats_a[i].services, stats_b[i].services);
    EXPECT_EQ(stats_a[i].max_trace_start_unix_nano, stats_b[i].max_trace_start_unix_nano);
    EXPECT_EQ(stats_a[i].size, stats_b[i].size) << "the same columns, so the same bytes";
  }
}

}  // namespace
}  // namespace tracery::block
