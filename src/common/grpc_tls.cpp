#include "common/grpc_tls.h"

#include <grpcpp/security/tls_certificate_provider.h>
#include <grpcpp/security/tls_credentials_options.h>

namespace tracery {

Result<std::shared_ptr<grpc::ServerCredentials>> MakeGrpcServerCredentials(const TlsSettings& settings,
                                                                           const std::string& what) {
  if (!settings.enabled()) return grpc::InsecureServerCredentials();
  if (settings.min_version != TlsVersion::kTls12)
    return Status::InvalidArgument(what + ": min_version 1.3 cannot be enforced on a gRPC listener (gRPC 1.51 offers "
                                          "TLS 1.2 and 1.3 with no setting); remove it to accept both");
  if (settings.max_version != TlsVersion::kTls13)
    return Status::InvalidArgument(what + ": max_version cannot be set on a gRPC listener (gRPC 1.51 offers TLS 1.2 and 1.3)");
  if (!settings.cipher_suites.empty())
    return Status::InvalidArgument(what + ": cipher suites cannot be chosen per gRPC listener (gRPC 1.51 takes them "
                                          "process-wide from GRPC_SSL_CIPHER_SUITES)");
  // The same checks and loading as the HTTP listeners: errors name the file.
  auto checked = BuildServerContext(settings, what);
  if (!checked.ok()) return checked.status();

  using grpc::experimental::FileWatcherCertificateProvider;
  auto interval = static_cast<unsigned>(settings.EffectiveReloadInterval().count());
  std::shared_ptr<FileWatcherCertificateProvider> provider =
      settings.client_ca_file.empty()
          ? std::make_shared<FileWatcherCertificateProvider>(settings.key_file, settings.cert_file, interval)
          : std::make_shared<FileWatcherCertificateProvider>(settings.key_file, settings.cert_file,
                                                             settings.client_ca_file, interval);
  grpc::experimental::TlsServerCredentialsOptions options(provider);
  options.watch_identity_key_cert_pairs();
  if (!settings.client_ca_file.empty()) options.watch_root_certs();
  grpc_ssl_client_certificate_request_type request = GRPC_SSL_DONT_REQUEST_CLIENT_CERTIFICATE;
  switch (settings.client_auth) {
    case ClientAuth::kNoClientCert: request = GRPC_SSL_DONT_REQUEST_CLIENT_CERTIFICATE; break;
    case ClientAuth::kRequestClientCert: request = GRPC_SSL_REQUEST_CLIENT_CERTIFICATE_BUT_DONT_VERIFY; break;
    case ClientAuth::kRequireAnyClientCert: request = GRPC_SSL_REQUEST_AND_REQUIRE_CLIENT_CERTIFICATE_BUT_DONT_VERIFY; break;
    case ClientAuth::kVerifyClientCertIfGiven: request = GRPC_SSL_REQUEST_CLIENT_CERTIFICATE_AND_VERIFY; break;
    case ClientAuth::kRequireAndVerifyClientCert:
      request = GRPC_SSL_REQUEST_AND_REQUIRE_CLIENT_CERTIFICATE_AND_VERIFY;
      break;
  }
  options.set_cert_request_type(request);
  auto credentials = grpc::experimental::TlsServerCredentials(options);
  if (!credentials) return Status::Internal(what + ": gRPC could not make TLS server credentials");
  return credentials;
}

}  // namespace tracery
