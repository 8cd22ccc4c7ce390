#include "query/streaming.h"

#include <unistd.h>

#include <algorithm>
#include <map>
#include <mutex>
#include <set>
#include <string>
#include <vector>

#include <grpcpp/grpcpp.h>
#include <grpcpp/server_posix.h>

#include "common/tenant.h"
#include "query/streaming_messages.h"
#include "tempopb/tempo.grpc.pb.h"

namespace tracery::query {
namespace {

constexpr uint64_t kNanosPerSecond = 1'000'000'000;
constexpr uint64_t kNanosPerMilli = 1'000'000;

uint64_t NowUnixNanos() {
  return uint64_t(
      std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::system_clock::now().time_since_epoch()).count());
}

grpc::Status ToGrpc(const Status& status) {
  grpc::StatusCode code;
  switch (status.code()) {
    case StatusCode::kOk: return grpc::Status::OK;
    case StatusCode::kInvalidArgument:
    case StatusCode::kUnsupportedMedia: code = grpc::StatusCode::INVALID_ARGUMENT; break;
    case StatusCode::kUnauthenticated: code = grpc::StatusCode::UNAUTHENTICATED; break;
    case StatusCode::kNotFound: code = grpc::StatusCode::NOT_FOUND; break;
    case StatusCode::kTooLarge:
    case StatusCode::kResourceExhausted: code = grpc::StatusCode::RESOURCE_EXHAUSTED; break;
    // Storage that cannot be read now may be readable on a retry; corrupt data will not.
    case StatusCode::kUnavailable:
    case StatusCode::kIoError: code = grpc::StatusCode::UNAVAILABLE; break;
    default: code = grpc::StatusCode::INTERNAL; break;
  }
  return grpc::Status(code, status.message());
}

// Writes messages in order; false once the client is gone.
template <typename Message>
bool WriteAll(grpc::ServerWriter<Message>* writer, const std::vector<Message>& messages) {
  for (const Message& message : messages)
    if (!writer->Write(message)) return false;
  return true;
}

const grpc::Status kClientGone(grpc::StatusCode::CANCELLED, "the client went away");

class StreamingService final : public tempopb::StreamingQuerier::Service {
 public:
  StreamingService(Searcher& searcher, const StreamingOptions& options) : searcher_(searcher), options_(options) {}

  grpc::Status Search(grpc::ServerContext* context, const tempopb::SearchRequest* request,
                      grpc::ServerWriter<tempopb::SearchResponse>* writer) override {
    auto tenant = Tenant(*context);
    if (!tenant.ok()) return ToGrpc(tenant.status());
    auto search = MakeSearchRequest(*tenant, *request);
    if (!search.ok()) return ToGrpc(search.status());

    SearchDiffer differ(options_.max_message_bytes);
    bool client_gone = false;
    auto progress = [&](const SearchResult& so_far) {
      // A client that went away (Grafana cancels a query the user re-ran) stops the scan.
      if (context->IsCancelled() || !WriteAll(writer, differ.Next(so_far, false))) client_gone = true;
      return !client_gone;
    };
    auto result = searcher_.Search(*search, progress, options_.progress_interval);
    if (!result.ok()) return ToGrpc(result.status());
    if (client_gone || !WriteAll(writer, differ.Next(*result, true))) return kClientGone;
    return grpc::Status::OK;
  }

  grpc::Status SearchTags(grpc::ServerContext* context, const tempopb::SearchTagsRequest* request,
                          grpc::ServerWriter<tempopb::SearchTagsResponse>* writer) override {
    auto answer = TagNames(*context, *request, false);
    if (!answer.ok()) return ToGrpc(answer.status());
    tempopb::SearchTagsResponse response;
    for (const std::string& name : answer->names) response.add_tagnames(name);
    ToProto(answer->stats, *response.mutable_metrics());
    return writer->Write(response) ? grpc::Status::OK : kClientGone;
  }

  grpc::Status SearchTagsV2(grpc::ServerContext* context, const tempopb::SearchTagsRequest* request,
                            grpc::ServerWriter<tempopb::SearchTagsV2Response>* writer) override {
    auto answer = TagNames(*context, *request, true);
    if (!answer.ok()) return ToGrpc(answer.status());
    tempopb::SearchTagsV2Response response;
    for (const auto& [name, tags] : answer->scopes) {
      tempopb::SearchTagsV2Scope& scope = *response.add_scopes();
      scope.set_name(name);
      for (const std::string& tag : tags) scope.add_tags(tag);
    }
    ToProto(answer->stats, *response.mutable_metrics());
    return writer->Write(response) ? grpc::Status::OK : kClientGone;
  }

  grpc::Status SearchTagValues(grpc::ServerContext* context, const tempopb::SearchTagValuesRequest* request,
                               grpc::ServerWriter<tempopb::SearchTagValuesResponse>* writer) override {
    auto answer = TagValuesOf(*context, *request, false);
    if (!answer.ok()) return ToGrpc(answer.status());
    tempopb::SearchTagValuesResponse response;
    std::set<std::string> plain;  // v1: values without their types, once each
    for (const auto& [type, value] : answer->values) plain.insert(value);
    for (const std::string& value : plain) response.add_tagvalues(value);
    ToProto(answer->stats, *response.mutable_metrics());
    return writer->Write(response) ? grpc::Status::OK : kClientGone;
  }

  grpc::Status SearchTagValuesV2(grpc::ServerContext* context, const tempopb::SearchTagValuesRequest* request,
                                 grpc::ServerWriter<tempopb::SearchTagValuesV2Response>* writer) override {
    auto answer = TagValuesOf(*context, *request, true);
    if (!answer.ok()) return ToGrpc(answer.status());
    tempopb::SearchTagValuesV2Response response;
    for (const auto& [type, value] : answer->values) {
      tempopb::TagValue& tag_value = *response.add_tagvalues();
      tag_value.set_type(type);
      tag_value.set_value(value);
    }
    ToProto(answer->stats, *response.mutable_metrics());
    return writer->Write(response) ? grpc::Status::OK : kClientGone;
  }

  grpc::Status MetricsQueryRange(grpc::ServerContext* context, const tempopb::QueryRangeRequest* request,
                                 grpc::ServerWriter<tempopb::QueryRangeResponse>* writer) override {
    bool instant = request->has_instant() && request->instant();
    auto answer = Metrics(*context, request->query(), request->start(), request->end(), request->step(),
                          request->exemplars(), request->maxseries(), instant);
    if (!answer.ok()) return ToGrpc(answer.status());
    return WriteAll(writer, QueryRangeMessages(*answer, options_.max_message_bytes)) ? grpc::Status::OK : kClientGone;
  }

  grpc::Status MetricsQueryInstant(grpc::ServerContext* context, const tempopb::QueryInstantRequest* request,
                                   grpc::ServerWriter<tempopb::QueryInstantResponse>* writer) override {
    auto answer = Metrics(*context, request->query(), request->start(), request->end(), 0, 0, 0, true);
    if (!answer.ok()) return ToGrpc(answer.status());
    return WriteAll(writer, QueryInstantMessages(*answer, options_.max_message_bytes)) ? grpc::Status::OK : kClientGone;
  }

 private:
  Result<std::string> Tenant(const grpc::ServerContext& context) const {
    std::optional<std::string_view> org_id;
    const auto& metadata = context.client_metadata();
    if (auto it = metadata.find("x-scope-orgid"); it != metadata.end())
      org_id = std::string_view(it->second.data(), it->second.size());
    return ResolveTenant(options_.multitenancy_enabled, org_id);
  }

  // The search a request asks for, checked as GET /api/search checks its parameters.
  Result<SearchRequest> MakeSearchRequest(const std::string& tenant, const tempopb::SearchRequest& request) const {
    if (!request.query().empty() && !request.tags().empty())
      return Status::InvalidArgument("invalid search request: can't specify tags and q");
    std::string text = request.query();
    if (text.empty() && !request.tags().empty()) {
      // A proto map has no order; sorted, the same request is the same query.
      std::map<std::string, std::string> sorted(request.tags().begin(), request.tags().end());
      text = TagConditionsToTraceQL({sorted.begin(), sorted.end()});
    }
    auto query = ParseSearchQuery(text.empty() ? "{}" : text);
    if (!query.ok()) return query.status();
    SearchRequest search;
    search.tenant = tenant;
    search.query = *query;
    search.limit = request.limit();
    TRACERY_RETURN_IF_ERROR(ApplyResultLimit(search.limit, options_.search));
    search.spans_per_spanset = request.spansperspanset();
    TRACERY_RETURN_IF_ERROR(ApplySpansPerSpanset(search.spans_per_spanset, options_.search));
    search.min_trace_duration_nanos = uint64_t(request.mindurationms()) * kNanosPerMilli;
    search.max_trace_duration_nanos = uint64_t(request.maxdurationms()) * kNanosPerMilli;
    if (search.max_trace_duration_nanos && search.max_trace_duration_nanos < search.min_trace_duration_nanos)
      return Status::InvalidArgument("invalid maxDuration: it is less than minDuration");
    auto range = RangeFromSeconds(request.start() != 0, uint64_t(request.start()) * kNanosPerSecond, request.end() != 0,
                                  uint64_t(request.end()) * kNanosPerSecond, 0);
    if (!range.ok()) return range.status();
    search.range = *range;
    return search;
  }

  Result<TagRequest> MakeTagRequest(const grpc::ServerContext& context, uint32_t start, uint32_t end) const {
    auto tenant = Tenant(context);
    if (!tenant.ok()) return tenant.status();
    auto range = RangeFromSeconds(start != 0, uint64_t(start) * kNanosPerSecond, end != 0, uint64_t(end) * kNanosPerSecond,
                                  options_.search.default_tag_window_nanos);
    if (!range.ok()) return range.status();
    TagRequest request;
    request.tenant = *tenant;
    request.range = *range;
    return request;
  }

  Result<query::TagNames> TagNames(const grpc::ServerContext& context, const tempopb::SearchTagsRequest& request,
                                   bool v2) {
    TRACERY_RETURN_IF_ERROR(CheckTagScope(request.scope()));
    auto tags = MakeTagRequest(context, request.start(), request.end());
    if (!tags.ok()) return tags.status();
    tags->scope = request.scope();
    tags->query = request.query();
    tags->limit = request.maxtagsperscope();
    return ListTagNames(searcher_, *tags, v2);
  }

  Result<query::TagValues> TagValuesOf(const grpc::ServerContext& context, const tempopb::SearchTagValuesRequest& request,
                                       bool v2) {
    TRACERY_RETURN_IF_ERROR(CheckTagName(request.tagname(), v2));
    auto tags = MakeTagRequest(context, request.start(), request.end());
    if (!tags.ok()) return tags.status();
    tags->tag = request.tagname();
    tags->query = request.query();
    tags->limit = request.maxtagvalues();
    return ListTagValues(searcher_, *tags, v2);
  }

  // start and end in unix nanoseconds, step in nanoseconds (Grafana's units); 0: as
  // /api/metrics/query_range defaults them (the last hour, about 240 points).
  Result<MetricsAnswer> Metrics(const grpc::ServerContext& context, const std::string& text, uint64_t start,
                                uint64_t end, uint64_t step, uint32_t exemplars, uint32_t max_series, bool instant) {
    auto tenant = Tenant(context);
    if (!tenant.ok()) return tenant.status();
    auto query = ParseMetricsQuery(text);
    if (!query.ok()) return query.status();
    traceql::MetricsRange range;
    range.end_unix_nano = end ? end : NowUnixNanos();
    uint64_t window = options_.search.default_metrics_window_nanos;
    range.start_unix_nano = start ? start : (range.end_unix_nano > window ? range.end_unix_nano - window : 0);
    if (range.end_unix_nano <= range.start_unix_nano)
      return Status::InvalidArgument("invalid start and end: end must be after start");
    range.instant = instant;
    if (!instant) range.step_nanos = step ? step : traceql::DefaultMetricsStepNanos(range.start_unix_nano, range.end_unix_nano);
    range.max_exemplars = std::min(exemplars, options_.search.max_exemplars);
    if (max_series) range.max_series = std::min(max_series, range.max_series);
    return RunMetricsQuery(searcher_, *tenant, *query, range);
  }

  Searcher& searcher_;
  const StreamingOptions options_;
};

}  // namespace

struct StreamingServer::Impl {
  Impl(Searcher& searcher, const StreamingOptions& options) : service(searcher, options) {}
  StreamingService service;
  std::mutex mutex;  // guards server against a Shutdown racing AddConnection
  std::unique_ptr<grpc::Server> server;
};

StreamingServer::StreamingServer(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}

StreamingServer::~StreamingServer() { Shutdown(); }

Result<std::unique_ptr<StreamingServer>> StreamingServer::Start(Searcher& searcher, StreamingOptions options) {
  auto impl = std::make_unique<Impl>(searcher, options);
  grpc::ServerBuilder builder;  // connections come from AddConnection, and the port if one is asked for
  int port = 0;
  if (!options.listen_address.empty())
    builder.AddListeningPort(options.listen_address,
                             options.credentials ? options.credentials : grpc::InsecureServerCredentials(), &port);
  builder.RegisterService(&impl->service);
  grpc::ResourceQuota quota("tempo-streaming");
  quota.SetMaxThreads(std::max(2, options.max_calls + 1));  // + the poller
  builder.SetResourceQuota(quota);
  builder.SetMaxReceiveMessageSize(1 << 20);  // requests are a query and a few numbers
  // As the OTLP gRPC receiver: ping after 2 h idle, drop after 20 s without an answer, close
  // connections without calls for 10 minutes (clients reconnect transparently).
  builder.AddChannelArgument(GRPC_ARG_KEEPALIVE_TIME_MS, 2 * 60 * 60 * 1000);
  builder.AddChannelArgument(GRPC_ARG_KEEPALIVE_TIMEOUT_MS, 20 * 1000);
  builder.AddChannelArgument(GRPC_ARG_MAX_CONNECTION_IDLE_MS, 10 * 60 * 1000);
  impl->server = builder.BuildAndStart();
  if (!impl->server || (!options.listen_address.empty() && port == 0))
    return Status::Unavailable("cannot start the streaming query service (gRPC)" +
                               (options.listen_address.empty() ? std::string()
                                                               : " on " + options.listen_address + " (server.grpc_listen_port)"));
  std::unique_ptr<StreamingServer> server(new StreamingServer(std::move(impl)));
  server->port_ = port;
  return server;
}

void StreamingServer::AddConnection(int fd) {
  std::lock_guard lock(impl_->mutex);
  if (!impl_->server) {
    ::close(fd);
    return;
  }
  grpc::AddInsecureChannelFromFd(impl_->server.get(), fd);
}

void StreamingServer::Shutdown(std::chrono::milliseconds grace) {
  std::unique_ptr<grpc::Server> server;
  {
    std::lock_guard lock(impl_->mutex);
    server = std::move(impl_->server);
  }
  if (!server) return;
  server->Shutdown(std::chrono::system_clock::now() + grace);
  server->Wait();
}

}  // namespace tracery::query
