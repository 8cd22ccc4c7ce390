#include "exporter/peer_router.h"
#include "otlp/json.h"
#include "otlp/wire.h"
#include "receiver/http_body.h"
#include "receiver/receivers.h"

namespace tracery::receiver {
namespace {

namespace http = boost::beast::http;

bool StartsWith(std::string_view text, std::string_view prefix) {
  return text.size() >= prefix.size() && std::equal(prefix.begin(), prefix.end(), text.begin(), [](char a, char b) {
           return std::tolower(static_cast<unsigned char>(a)) == std::tolower(static_cast<unsigned char>(b));
         });
}

// OTLP/HTTP error bodies are google.rpc.Status, in the request's encoding.
HttpResponse ErrorResponse(const Status& status, bool json) {
  int grpc_code = 13;
  switch (status.code()) {
    case StatusCode::kInvalidArgument: case StatusCode::kUnsupportedMedia: grpc_code = 3; break;
    case StatusCode::kUnauthenticated: grpc_code = 16; break;
    case StatusCode::kNotFound: grpc_code = 5; break;
    case StatusCode::kTooLarge: case StatusCode::kResourceExhausted: grpc_code = 8; break;
    case StatusCode::kUnavailable: grpc_code = 14; break;
    default: break;
  }
  HttpResponse response;
  response.status = HttpStatusFor(status);
  if (json) {
    response.content_type = "application/json";
    response.body = "{\"code\":" + std::to_string(grpc_code) + ",\"message\":";
    otlp::AppendJsonString(response.body, status.message());
    response.body += "}";
  } else {
    response.content_type = "application/x-protobuf";
    otlp::PutVarintIfSet(response.body, 1, uint64_t(grpc_code));
    otlp::PutStringIfSet(response.body, 2, status.message());
  }
  return response;
}

}  // namespace

HttpHandler MakeOtlpHttpHandler(distributor::Distributor& distributor, uint64_t max_request_bytes) {
  return [&distributor, max_request_bytes](HttpRequest&& request, Responder respond) {
    std::string target(request.target());
    std::string path = target.substr(0, target.find('?'));
    if (path != "/v1/traces") {
      respond(HttpResponse::Text(404, "not found: OTLP/HTTP traces are POSTed to /v1/traces\n"));
      return;
    }
    if (request.method() != http::verb::post) {
      respond({405, "text/plain", "use POST\n", {{"Allow", "POST"}}});
      return;
    }
    std::string_view content_type(request[http::field::content_type]);
    bool json = StartsWith(content_type, "application/json");
    bool protobuf = StartsWith(content_type, "application/x-protobuf") || StartsWith(content_type, "application/protobuf");
    if (!json && !protobuf) {
      distributor.CountRefused("content_type", request.body().size());
      respond(ErrorResponse(Status::UnsupportedMedia("unsupported content type '" + std::string(content_type) +
                                                     "': use application/x-protobuf or application/json"), false));
      return;
    }
    auto tenant = RequestTenant(request, distributor);
    if (!tenant.ok()) {
      respond(ErrorResponse(tenant.status(), json));
      return;
    }
    auto body = std::make_shared<std::string>(std::move(request.body()));
    const size_t received_bytes = body->size();
    if (Status decoded = DecodeContentEncoding(request[http::field::content_encoding], max_request_bytes, *body);
        !decoded.ok()) {
      distributor.CountRefused(ContentEncodingRefusal(decoded), received_bytes);
      respond(ErrorResponse(decoded, json));
      return;
    }
    // Header names compare case-insensitively in place: nothing allocated.
    auto sender = request[exporter::kForwardedHeader] == exporter::kForwardedValue ? distributor::Sender::kPeerGateway
                                                                                  : distributor::Sender::kClient;
    distributor.Push(*tenant, *body, json ? distributor::Encoding::kJson : distributor::Encoding::kProtobuf,
                     [respond, json, body](distributor::PushReply reply) {
                       if (!reply.status.ok()) {
                         HttpResponse response = ErrorResponse(reply.status, json);
                         if (reply.retry_after.count() > 0)
                           response.headers.emplace_back("Retry-After", std::to_string(reply.retry_after.count()));
                         respond(std::move(response));
                         return;
                       }
                       HttpResponse response;
                       if (json) {
                         response.content_type = "application/json";
                         if (reply.rejected_spans > 0) {
                           response.body = "{\"partialSuccess\":{\"rejectedSpans\":\"" + std::to_string(reply.rejected_spans) +
                                           "\",\"errorMessage\":";
                           otlp::AppendJsonString(response.body, reply.rejected_reason);
                           response.body += "}}";
                         } else {
                           response.body = "{}";
                         }
                       } else {
                         response.content_type = "application/x-protobuf";
                         response.body = EncodeExportResponse(reply.rejected_spans, reply.rejected_reason);
                       }
                       respond(std::move(response));
                     },
                     sender);
  };
}

}  // namespace tracery::receiver
