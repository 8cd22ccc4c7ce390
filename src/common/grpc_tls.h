// gRPC server credentials from a listener's TlsSettings (common/tls.h): TLS through gRPC's own
// stack, the certificate files watched by grpc::experimental::FileWatcherCertificateProvider
// (new connections get a changed certificate; a file that does not load keeps the old one).
//
// gRPC 1.51's C++ API has no minimum TLS version and no cipher suite list per server (its
// suites are process-wide, from GRPC_SSL_CIPHER_SUITES): settings asking for either are
// refused here rather than silently not enforced. Client auth maps one to one onto gRPC's
// grpc_ssl_client_certificate_request_type.
#pragma once

#include <memory>
#include <string>

#include <grpcpp/security/server_credentials.h>

#include "common/status.h"
#include "common/tls.h"

namespace tracery {

// Insecure credentials when TLS is off. Files are loaded once here as well, so that a bad
// certificate or key stops the start with the file's name (`what` names the config block).
Result<std::shared_ptr<grpc::ServerCredentials>> MakeGrpcServerCredentials(const TlsSettings& settings,
                                                                           const std::string& what);

}  // namespace tracery
