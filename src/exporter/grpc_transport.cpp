// OTLP/gRPC: unary TraceService/Export through gRPC's generic stub, so the request goes out as
// the bytes it already is. One channel per exporter (gRPC multiplexes calls over it and
// reconnects by itself).
#include <grpcpp/generic/generic_stub.h>
#include <grpcpp/grpcpp.h>
#include <grpcpp/security/tls_certificate_provider.h>
#include <grpcpp/security/tls_certificate_verifier.h>
#include <grpcpp/security/tls_credentials_options.h>

#include <cctype>
#include <future>

#include "exporter/transport.h"

namespace tracery::exporter::detail {
namespace {

constexpr char kExportMethod[] = "/opentelemetry.proto.collector.trace.v1.TraceService/Export";

bool StartsWith(std::string_view text, std::string_view prefix) { return text.substr(0, prefix.size()) == prefix; }

// The codes the Collector's otlp exporter retries; everything else is permanent.
bool IsRetryableCode(grpc::StatusCode code) {
  switch (code) {
    case grpc::StatusCode::UNAVAILABLE:
    case grpc::StatusCode::RESOURCE_EXHAUSTED:
    case grpc::StatusCode::DEADLINE_EXCEEDED:
    case grpc::StatusCode::ABORTED:
    case grpc::StatusCode::CANCELLED:
    case grpc::StatusCode::OUT_OF_RANGE:
    case grpc::StatusCode::DATA_LOSS: return true;
    default: return false;
  }
}

StatusCode PermanentCode(grpc::StatusCode code) {
  switch (code) {
    case grpc::StatusCode::UNAUTHENTICATED:
    case grpc::StatusCode::PERMISSION_DENIED: return StatusCode::kUnauthenticated;
    case grpc::StatusCode::NOT_FOUND:
    case grpc::StatusCode::UNIMPLEMENTED: return StatusCode::kNotFound;
    default: return StatusCode::kInvalidArgument;
  }
}

std::string Lowercase(std::string text) {
  for (char& c : text) c = char(std::tolower(static_cast<unsigned char>(c)));
  return text;
}

class GrpcTransport final : public Transport {
 public:
  GrpcTransport(const ExporterOptions& options, std::string target, std::shared_ptr<grpc::Channel> channel)
      : options_(options), target_(std::move(target)), stub_(std::move(channel)) {
    for (const auto& [name, value] : options.headers) metadata_.emplace_back(Lowercase(name), value);
  }

  Attempt Send(const std::string& tenant, std::string_view request) override {
    grpc::ClientContext context;
    context.set_deadline(std::chrono::system_clock::now() + options_.timeout);
    if (options_.compression == Compression::kGzip) context.set_compression_algorithm(GRPC_COMPRESS_GZIP);
    for (const auto& [name, value] : metadata_) context.AddMetadata(name, value);
    if (!tenant.empty()) context.AddMetadata("x-scope-orgid", tenant);
    grpc::Slice slice(request.data(), request.size());
    grpc::ByteBuffer request_buffer(&slice, 1);
    grpc::ByteBuffer response_buffer;
    std::promise<grpc::Status> done;
    stub_.UnaryCall(&context, kExportMethod, grpc::StubOptions(), &request_buffer, &response_buffer,
                    [&done](grpc::Status status) { done.set_value(std::move(status)); });
    grpc::Status status = done.get_future().get();

    Attempt attempt;
    if (status.ok()) {
      std::vector<grpc::Slice> slices;
      std::string response;
      if (response_buffer.Dump(&slices).ok())
        for (const auto& s : slices) response.append(reinterpret_cast<const char*>(s.begin()), s.size());
      ReadPartialSuccess(response, attempt);
      return attempt;
    }
    std::string message = "exporter " + options_.name + ": OTLP/gRPC export to " + target_ + " failed: code " +
                          std::to_string(int(status.error_code())) + " (" + CodeName(status.error_code()) + ")";
    if (!status.error_message().empty()) message += ": " + status.error_message();
    attempt.retryable = IsRetryableCode(status.error_code());
    attempt.retry_after = RetryInfoDelay(status.error_details());
    attempt.status = Status(attempt.retryable ? StatusCode::kUnavailable : PermanentCode(status.error_code()), message);
    return attempt;
  }

 private:
  static std::string CodeName(grpc::StatusCode code) {
    static const char* const kNames[] = {"OK", "CANCELLED", "UNKNOWN", "INVALID_ARGUMENT", "DEADLINE_EXCEEDED", "NOT_FOUND",
                                         "ALREADY_EXISTS", "PERMISSION_DENIED", "RESOURCE_EXHAUSTED", "FAILED_PRECONDITION",
                                         "ABORTED", "OUT_OF_RANGE", "UNIMPLEMENTED", "INTERNAL", "UNAVAILABLE", "DATA_LOSS",
                                         "UNAUTHENTICATED"};
    int index = int(code);
    return index >= 0 && index < int(std::size(kNames)) ? kNames[index] : "?";
  }

  const ExporterOptions options_;  // a copy: the caller's may move away
  const std::string target_;
  grpc::GenericStub stub_;
  std::vector<std::pair<std::string, std::string>> metadata_;
};

Result<std::shared_ptr<grpc::ChannelCredentials>> Credentials(const ExporterOptions& options, bool plaintext) {
  if (plaintext) return grpc::InsecureChannelCredentials();
  const ClientTlsOptions& tls = options.tls;
  std::string ca, cert, key;
  if (!tls.ca_file.empty()) {
    auto read = ReadTlsFile(tls.ca_file, options, "tls.ca_file");
    if (!read.ok()) return read.status();
    ca = std::move(read).value();
  }
  if (tls.cert_file.empty() != tls.key_file.empty())
    return Status::InvalidArgument("exporter " + options.name + ": tls.cert_file and tls.key_file go together");
  if (!tls.cert_file.empty()) {
    auto read_cert = ReadTlsFile(tls.cert_file, options, "tls.cert_file");
    if (!read_cert.ok()) return read_cert.status();
    auto read_key = ReadTlsFile(tls.key_file, options, "tls.key_file");
    if (!read_key.ok()) return read_key.status();
    cert = std::move(read_cert).value();
    key = std::move(read_key).value();
  }
  if (!tls.insecure_skip_verify) {
    grpc::SslCredentialsOptions ssl;
    ssl.pem_root_certs = ca;
    ssl.pem_cert_chain = cert;
    ssl.pem_private_key = key;
    return grpc::SslCredentials(ssl);
  }
  // No verification at all: gRPC's TLS credentials with its no-op verifier.
  grpc::experimental::TlsChannelCredentialsOptions skip;
  skip.set_verify_server_certs(false);
  skip.set_check_call_host(false);
  skip.set_certificate_verifier(std::make_shared<grpc::experimental::NoOpCertificateVerifier>());
  if (!cert.empty()) {
    std::vector<grpc::experimental::IdentityKeyCertPair> pairs{{key, cert}};
    skip.set_certificate_provider(std::make_shared<grpc::experimental::StaticDataCertificateProvider>(pairs));
    skip.watch_identity_key_cert_pairs();
  }
  auto credentials = grpc::experimental::TlsCredentials(skip);
  if (!credentials) return Status::InvalidArgument("exporter " + options.name + ": cannot set up TLS");
  return credentials;
}

}  // namespace

Result<std::unique_ptr<Transport>> MakeGrpcTransport(const ExporterOptions& options) {
  // The Collector's rules: an http:// endpoint is plaintext, https:// is TLS, a bare
  // host:port follows tls.insecure.
  std::string target = options.endpoint;
  bool plaintext = options.tls.insecure;
  if (StartsWith(target, "http://")) {
    target.erase(0, 7);
    plaintext = true;
  } else if (StartsWith(target, "https://")) {
    target.erase(0, 8);
    plaintext = false;
  }
  while (!target.empty() && target.back() == '/') target.pop_back();
  if (target.empty()) return Status::InvalidArgument("exporter " + options.name + ": `endpoint` is required (host:port)");
  auto credentials = Credentials(options, plaintext);
  if (!credentials.ok()) return credentials.status();
  grpc::ChannelArguments arguments;
  if (!options.tls.server_name_override.empty())
    arguments.SetSslTargetNameOverride(options.tls.server_name_override);
  // Reconnect soon after the backend comes back: the exporter's own backoff paces attempts.
  arguments.SetInt(GRPC_ARG_INITIAL_RECONNECT_BACKOFF_MS, 100);
  arguments.SetInt(GRPC_ARG_MAX_RECONNECT_BACKOFF_MS, 1000);
  arguments.SetInt(GRPC_ARG_MAX_SEND_MESSAGE_LENGTH, -1);
  auto channel = grpc::CreateCustomChannel(target, *credentials, arguments);
  return std::unique_ptr<Transport>(std::make_unique<GrpcTransport>(options, target, std::move(channel)));
}

}  // namespace tracery::exporter::detail
