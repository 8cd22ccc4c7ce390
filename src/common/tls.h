// TLS for tracery's listeners: the settings a listener's config block holds (Tempo's
// server.http_tls_config and the Collector's receiver `tls` blocks map onto the same struct),
// the OpenSSL server context built from them, and a source of that context that rebuilds it
// when the certificate files change on disk.
//
// Names are Go's, since both Tempo (dskit) and the Collector take Go's: client auth types
// (NoClientCert ... RequireAndVerifyClientCert), versions (VersionTLS12 or "1.2") and cipher
// suites (TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256, mapped to OpenSSL's names here).
//
//   auto source = TlsContextSource::Create(settings, "server.http_tls_config");
//   ... on each accepted connection: std::shared_ptr<ssl::context> context = (*source)->Current();
#pragma once

#include <chrono>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include <boost/asio/ssl/context.hpp>

#include "common/status.h"

namespace tracery {

// Go's crypto/tls.ClientAuthType, in its order (least to most strict).
enum class ClientAuth { kNoClientCert, kRequestClientCert, kRequireAnyClientCert, kVerifyClientCertIfGiven, kRequireAndVerifyClientCert };
enum class TlsVersion { kTls12, kTls13 };

struct TlsSettings {
  std::string cert_file;       // PEM certificate chain; with key_file, turns TLS on
  std::string key_file;        // PEM private key
  std::string client_ca_file;  // PEM CAs client certificates are verified against
  // Tempo's client_auth_type. The Collector's blocks have no such key: there a client_ca_file
  // means RequireAndVerifyClientCert (the config sets it so).
  ClientAuth client_auth = ClientAuth::kNoClientCert;
  TlsVersion min_version = TlsVersion::kTls12;
  TlsVersion max_version = TlsVersion::kTls13;
  std::vector<std::string> cipher_suites;  // Go names; empty: OpenSSL's defaults
  // How often the files are looked at for changes; zero: the default (kDefaultReloadInterval).
  std::chrono::nanoseconds reload_interval{0};

  bool enabled() const { return !cert_file.empty() || !key_file.empty(); }
  std::chrono::seconds EffectiveReloadInterval() const;
};

inline constexpr std::chrono::seconds kDefaultReloadInterval{5};

// Parsers for config values; errors list what is accepted.
Result<ClientAuth> ParseClientAuth(const std::string& text);
Result<TlsVersion> ParseTlsVersion(const std::string& text);  // VersionTLS12, VersionTLS13, 1.2, 1.3
std::string TlsVersionName(TlsVersion version);               // "1.2"
std::string ClientAuthName(ClientAuth auth);                  // Go's name
// Splits Tempo's comma-separated list (spaces allowed) into names.
std::vector<std::string> SplitCipherSuiteList(const std::string& text);
// OpenSSL's cipher list (TLS 1.2 and below) and TLS 1.3 suite list for Go names; an unknown
// name is an error naming it. TLS 1.3 names restrict the 1.3 suites, else 1.3 keeps all.
struct OpenSslCiphers {
  std::string tls12;  // for SSL_CTX_set_cipher_list; empty: defaults
  std::string tls13;  // for SSL_CTX_set_ciphersuites; empty: defaults
};
Result<OpenSslCiphers> MapCipherSuites(const std::vector<std::string>& go_names);

// Checks the settings hang together (cert and key both given, versions in order, client auth
// that verifies has a CA) and builds a server context from the files. Errors name `what` (the
// config block) and the file that failed.
Result<std::shared_ptr<boost::asio::ssl::context>> BuildServerContext(const TlsSettings& settings, const std::string& what);

// The current server context of one listener. Current() is cheap and thread-safe; at most
// every reload interval it compares the files' modification times and sizes with those the
// context was built from, and rebuilds it when they differ. A rebuild that fails keeps the
// old context (logged once per change), so a half-written file never takes a listener down.
// Connections hold the context they started with; new connections get the new one.
class TlsContextSource {
 public:
  static Result<std::shared_ptr<TlsContextSource>> Create(const TlsSettings& settings, const std::string& what);
  std::shared_ptr<boost::asio::ssl::context> Current();
  // Looks at the files now, whatever the interval; true when the context was replaced.
  bool ReloadIfChanged();
  const TlsSettings& settings() const { return settings_; }
  // Called for each connection's context when the listener also serves HTTP/2: ALPN offers
  // h2 before http/1.1 (set before the first Current()).
  void OfferHttp2();

 private:
  TlsContextSource(TlsSettings settings, std::string what) : settings_(std::move(settings)), what_(std::move(what)) {}
  std::string FileStamps() const;
  Result<std::shared_ptr<boost::asio::ssl::context>> Build() const;

  const TlsSettings settings_;
  const std::string what_;
  bool offer_http2_ = false;
  std::mutex mutex_;
  std::shared_ptr<boost::asio::ssl::context> context_;
  std::string stamps_;         // of the files context_ was built from
  std::string failed_stamps_;  // of files that failed to build (not retried until they change)
  std::chrono::steady_clock::time_point checked_;
};

// The ALPN protocol a finished handshake chose ("" when none).
std::string NegotiatedAlpn(const SSL* ssl);

}  // namespace tracery
