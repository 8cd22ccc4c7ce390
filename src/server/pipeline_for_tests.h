// A whole ingest and query path in one process for unit tests: an ingester and its block list
// on a temporary directory (or any Env), the distributor in front, a trace reader over both,
// and helpers to build OTLP requests with the generated protobuf classes (an encoder
// independent of tracery's own).
#pragma once

#include <future>
#include <memory>
#include <string>

#include "common/metrics.h"
#include "common/temp_dir_for_tests.h"
#include "distributor/distributor.h"
#include "common/thread_pool.h"
#include "ingester/ingester.h"
#include "storage/block_list.h"
#include "storage/trace_source.h"
#include "opentelemetry/proto/collector/trace/v1/trace_service.pb.h"

namespace tracery::testing {

class Pipeline {
 public:
  explicit Pipeline(distributor::Options options = {}) : dir_("tracery-pipeline-test") {
    store_ = backend::NewLocalObjectStore(dir_.path() + "/blocks", ::tracery::DefaultEnv());
    blocks_ = std::make_unique<storage::BlockList>(*store_, storage::BlockListOptions{});
    if (!blocks_->Open().ok()) throw std::runtime_error("cannot open the block list");
    ingester::Options ingester_options;
    ingester_options.wal.directory = dir_.path() + "/wal";
    auto opened = ingester::Ingester::Open(ingester_options, ::tracery::DefaultEnv(), *store_, *blocks_, pool_, metrics_);
    if (!opened.ok()) throw std::runtime_error(opened.status().ToString());
    ingester_ = std::move(opened).value();
    reader_ = std::make_unique<storage::TraceReader>(std::vector<storage::TraceSource*>{ingester_.get(), blocks_.get()});
    distributor_ = std::make_unique<distributor::Distributor>(options, *ingester_, nullptr, metrics_);
  }

  // Pushes a body and waits for the distributor's answer.
  distributor::PushReply Push(const std::string& body, distributor::Encoding encoding = distributor::Encoding::kProtobuf,
                              const std::string& tenant = kSingleTenant,
                              distributor::Sender sender = distributor::Sender::kClient) {
    std::promise<distributor::PushReply> reply;
    distributor_->Push(tenant, body, encoding, [&](distributor::PushReply r) { reply.set_value(std::move(r)); }, sender);
    return reply.get_future().get();
  }

  // A request with one span per ID in `span_ids`, all in trace `trace_byte` (repeated 16 times).
  static std::string Request(char trace_byte, std::initializer_list<char> span_ids, const std::string& service = "svc") {
    opentelemetry::proto::collector::trace::v1::ExportTraceServiceRequest request;
    auto* rs = request.add_resource_spans();
    auto* attribute = rs->mutable_resource()->add_attributes();
    attribute->set_key("service.name");
    attribute->mutable_value()->set_string_value(service);
    auto* ss = rs->add_scope_spans();
    for (char id : span_ids) {
      auto* span = ss->add_spans();
      span->set_trace_id(std::string(16, trace_byte));
      span->set_span_id(std::string(8, id));
      span->set_name("op");
      span->set_start_time_unix_nano(1'700'000'000'000'000'000ull);
      span->set_end_time_unix_nano(1'700'000'000'100'000'000ull);
    }
    return request.SerializeAsString();
  }

  MetricsRegistry& metrics() { return metrics_; }
  ingester::Ingester& ingester() { return *ingester_; }
  storage::TraceReader& reader() { return *reader_; }
  distributor::Distributor& distributor() { return *distributor_; }

 private:
  TempDir dir_;
  MetricsRegistry metrics_;
  ThreadPool pool_{2};
  std::unique_ptr<backend::ObjectStore> store_;
  std::unique_ptr<storage::BlockList> blocks_;
  std::unique_ptr<ingester::Ingester> ingester_;
  std::unique_ptr<storage::TraceReader> reader_;
  std::unique_ptr<distributor::Distributor> distributor_;
};

}  // namespace tracery::testing
