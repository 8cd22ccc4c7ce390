// A test node: an ingester, its block list and a trace reader on any Env (the fault-injecting
// one, usually), that can be closed and opened again on the same files; and OTLP requests
// built with the generated protobuf classes (an encoder independent of tracery's own).
#pragma once

#include <gtest/gtest.h>

#include <future>
#include <map>
#include <set>
#include <memory>
#include <string>
#include <vector>

#include "backend/object_store.h"
#include "common/env.h"
#include "common/thread_pool.h"
#include "ingester/ingester.h"
#include "opentelemetry/proto/collector/trace/v1/trace_service.pb.h"
#include "otlp/model.h"
#include "otlp/split.h"
#include "storage/block_list.h"
#include "storage/trace_source.h"

namespace tracery::ingester::testing {

namespace pbt = opentelemetry::proto::trace::v1;
using Request = opentelemetry::proto::collector::trace::v1::ExportTraceServiceRequest;

inline std::string TraceIdBytes(int n) {
  std::string id(16, '\x11');
  id[0] = char(n >> 8);
  id[1] = char(n);
  return id;
}
inline TraceId IdOf(int n) { return TraceId::FromBytes(TraceIdBytes(n)); }

// A request with `spans` spans (numbered from `first_span`) for each trace in `traces`,
// spread over two resources.
inline Request MakeRequest(const std::vector<int>& traces, int spans, int first_span = 0, size_t padding = 0) {
  Request request;
  for (int r = 0; r < 2; ++r) {
    auto* rs = request.add_resource_spans();
    auto* kv = rs->mutable_resource()->add_attributes();
    kv->set_key("service.name");
    kv->mutable_value()->set_string_value("svc-" + std::to_string(r));
    rs->add_scope_spans()->mutable_scope()->set_name("scope-" + std::to_string(r));
  }
  for (int t : traces) {
    for (int i = first_span; i < first_span + spans; ++i) {
      pbt::Span* span = request.mutable_resource_spans(i % 2)->mutable_scope_spans(0)->add_spans();
      span->set_trace_id(TraceIdBytes(t));
      std::string span_id(8, '\x22');
      span_id[0] = char(t >> 8);
      span_id[1] = char(t);
      span_id[2] = char(i >> 8);
      span_id[3] = char(i);
      span->set_span_id(span_id);
      span->set_name("op-" + std::to_string(i));
      span->set_kind(pbt::Span::SPAN_KIND_SERVER);
      span->set_start_time_unix_nano(1'700'000'000'000'000'000ull + uint64_t(t) * 1'000'000 + uint64_t(i));
      span->set_end_time_unix_nano(span->start_time_unix_nano() + 1000);
      if (padding > 0) {
        auto* attribute = span->add_attributes();
        attribute->set_key("payload");
        attribute->mutable_value()->set_string_value(std::string(padding, 'p'));
      }
    }
  }
  return request;
}

// Span IDs of each trace in a request.
inline std::map<TraceId, std::set<std::string>> SpanIdsOf(const Request& request) {
  std::map<TraceId, std::set<std::string>> out;
  for (const auto& rs : request.resource_spans())
    for (const auto& ss : rs.scope_spans())
      for (const auto& span : ss.spans()) out[TraceId::FromBytes(span.trace_id())].insert(span.span_id());
  return out;
}

class Node {
 public:
  Node(Env& env, Options options) : env_(env), options_(std::move(options)) {}
  ~Node() { Close(); }

  Status Open() {
    Close();
    metrics_ = std::make_unique<MetricsRegistry>();
    pool_ = std::make_unique<ThreadPool>(2);
    store_ = backend::NewLocalObjectStore("/data/blocks", env_);
    blocks_ = std::make_unique<storage::BlockList>(*store_, storage::BlockListOptions{});
    TRACERY_RETURN_IF_ERROR(blocks_->Open());
    auto opened = Ingester::Open(options_, env_, *store_, *blocks_, *pool_, *metrics_);
    if (!opened.ok()) return opened.status();
    ingester_ = std::move(opened).value();
    reader_ = std::make_unique<storage::TraceReader>(std::vector<storage::TraceSource*>{ingester_.get(), blocks_.get()});
    return Status::Ok();
  }

  void Close() {
    reader_.reset();
    ingester_.reset();
    if (pool_) pool_->Stop();
    blocks_.reset();
    store_.reset();
    pool_.reset();
    metrics_.reset();
  }

  // Pushes a request as the distributor does and waits for the answer.
  PushOutcome Push(const std::string& tenant, const Request& request) {
    std::string bytes = request.SerializeAsString();
    otlp::SplitRequest split;
    Status status = otlp::SplitByTrace(bytes, split);
    EXPECT_TRUE(status.ok()) << status.ToString();
    auto promise = std::make_shared<std::promise<PushOutcome>>();
    auto future = promise->get_future();
    ingester_->Push(tenant, split.fragments, [promise](PushOutcome outcome) { promise->set_value(std::move(outcome)); });
    return future.get();
  }

  // The span IDs readable for a trace (each counted), or a failed status.
  Result<std::map<std::string, int>> SpansOf(const std::string& tenant, const TraceId& id) {
    auto found = reader_->FindTrace(tenant, id);
    if (!found.ok()) return found.status();
    std::map<std::string, int> spans;
    if (!found->has_value()) return spans;
    for (const auto& rs : (**found).resource_spans)
      for (const auto& ss : rs.scope_spans)
        for (const auto& span : ss.spans) spans[span.span_id]++;
    return spans;
  }

  Ingester& ingester() { return *ingester_; }
  storage::BlockList& blocks() { return *blocks_; }
  storage::TraceReader& reader() { return *reader_; }
  MetricsRegistry& metrics() { return *metrics_; }

 private:
  Env& env_;
  Options options_;
  std::unique_ptr<MetricsRegistry> metrics_;
  std::unique_ptr<ThreadPool> pool_;
  std::unique_ptr<backend::ObjectStore> store_;
  std::unique_ptr<storage::BlockList> blocks_;
  std::unique_ptr<Ingester> ingester_;
  std::unique_ptr<storage::TraceReader> reader_;
};

// Options for tests: only FlushAll cuts (no timer-driven sweeps), small segments and row groups.
inline Options TestOptions() {
  Options options;
  options.trace_idle_period = std::chrono::hours(1);
  options.max_block_duration = std::chrono::hours(2);
  options.sweep_interval = std::chrono::hours(1);
  options.wal.directory = "/data/wal";
  options.wal.segment_bytes = 16 * 1024;
  options.block.row_group_spans = 64;
  return options;
}

}  // namespace tracery::ingester::testing
