#include "common/tls.h"

#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <sys/stat.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <map>

#include <spdlog/spdlog.h>

namespace tracery {
namespace ssl = boost::asio::ssl;

namespace {

struct CipherName {
  const char* go;
  const char* openssl;
  bool tls13;
};

// Go's crypto/tls names (CipherSuites() and InsecureCipherSuites()) against OpenSSL's. The
// RC4 suites Go still names are not in OpenSSL 3 and are refused as unknown.
constexpr CipherName kCipherNames[] = {
    {"TLS_AES_128_GCM_SHA256", "TLS_AES_128_GCM_SHA256", true},
    {"TLS_AES_256_GCM_SHA384", "TLS_AES_256_GCM_SHA384", true},
    {"TLS_CHACHA20_POLY1305_SHA256", "TLS_CHACHA20_POLY1305_SHA256", true},
    {"TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256", "ECDHE-ECDSA-AES128-GCM-SHA256", false},
    {"TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384", "ECDHE-ECDSA-AES256-GCM-SHA384", false},
    {"TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256", "ECDHE-RSA-AES128-GCM-SHA256", false},
    {"TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384", "ECDHE-RSA-AES256-GCM-SHA384", false},
    {"TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256", "ECDHE-ECDSA-CHACHA20-POLY1305", false},
    {"TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305", "ECDHE-ECDSA-CHACHA20-POLY1305", false},
    {"TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256", "ECDHE-RSA-CHACHA20-POLY1305", false},
    {"TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305", "ECDHE-RSA-CHACHA20-POLY1305", false},
    {"TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA", "ECDHE-ECDSA-AES128-SHA", false},
    {"TLS_ECDHE_ECDSA_WITH_AES_256_CBC_SHA", "ECDHE-ECDSA-AES256-SHA", false},
    {"TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA", "ECDHE-RSA-AES128-SHA", false},
    {"TLS_ECDHE_RSA_WITH_AES_256_CBC_SHA", "ECDHE-RSA-AES256-SHA", false},
    {"TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA256", "ECDHE-ECDSA-AES128-SHA256", false},
    {"TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA256", "ECDHE-RSA-AES128-SHA256", false},
    {"TLS_ECDHE_RSA_WITH_3DES_EDE_CBC_SHA", "ECDHE-RSA-DES-CBC3-SHA", false},
    {"TLS_RSA_WITH_AES_128_GCM_SHA256", "AES128-GCM-SHA256", false},
    {"TLS_RSA_WITH_AES_256_GCM_SHA384", "AES256-GCM-SHA384", false},
    {"TLS_RSA_WITH_AES_128_CBC_SHA256", "AES128-SHA256", false},
    {"TLS_RSA_WITH_AES_128_CBC_SHA", "AES128-SHA", false},
    {"TLS_RSA_WITH_AES_256_CBC_SHA", "AES256-SHA", false},
    {"TLS_RSA_WITH_3DES_EDE_CBC_SHA", "DES-CBC3-SHA", false},
};

// OpenSSL's error queue as one line (and emptied, so the next call starts clean).
std::string OpenSslErrors() {
  std::string out;
  while (unsigned long code = ERR_get_error()) {
    char text[256];
    ERR_error_string_n(code, text, sizeof text);
    if (!out.empty()) out += "; ";
    out += text;
  }
  return out.empty() ? "unknown OpenSSL error" : out;
}

Status Readable(const std::string& key, const std::string& path, const std::string& what) {
  std::FILE* file = std::fopen(path.c_str(), "rb");
  if (!file) return Status::InvalidArgument(what + "." + key + ": cannot read " + path + ": " + std::strerror(errno));
  std::fclose(file);
  return Status::Ok();
}

bool IsPemPrivateKey(const std::string& path) {
  std::FILE* file = std::fopen(path.c_str(), "rb");
  if (!file) return false;
  EVP_PKEY* key = PEM_read_PrivateKey(file, nullptr, nullptr, nullptr);
  std::fclose(file);
  ERR_clear_error();
  if (!key) return false;
  EVP_PKEY_free(key);
  return true;
}

// Request a client certificate but take whatever is sent (Go's RequestClientCert and
// RequireAnyClientCert do not verify it).
int AcceptAnyCertificate(int, X509_STORE_CTX*) { return 1; }

// Chooses h2 when the client offers it, else http/1.1, else no ALPN at all.
int SelectAlpn(SSL*, const unsigned char** out, unsigned char* out_length, const unsigned char* offered,
               unsigned int offered_length, void*) {
  static const unsigned char kServerProtocols[] = "\x02h2\x08http/1.1";
  unsigned char* selected = nullptr;
  if (SSL_select_next_proto(&selected, out_length, kServerProtocols, sizeof kServerProtocols - 1, offered,
                            offered_length) != OPENSSL_NPN_NEGOTIATED)
    return SSL_TLSEXT_ERR_NOACK;
  *out = selected;
  return SSL_TLSEXT_ERR_OK;
}

int OpenSslVersion(TlsVersion version) { return version == TlsVersion::kTls13 ? TLS1_3_VERSION : TLS1_2_VERSION; }

}  // namespace

std::chrono::seconds TlsSettings::EffectiveReloadInterval() const {
  auto seconds = std::chrono::duration_cast<std::chrono::seconds>(reload_interval);
  return seconds.count() > 0 ? seconds : kDefaultReloadInterval;
}

Result<ClientAuth> ParseClientAuth(const std::string& text) {
  if (text.empty() || text == "NoClientCert") return ClientAuth::kNoClientCert;
  if (text == "RequestClientCert") return ClientAuth::kRequestClientCert;
  if (text == "RequireAnyClientCert" || text == "RequireClientCert") return ClientAuth::kRequireAnyClientCert;
  if (text == "VerifyClientCertIfGiven") return ClientAuth::kVerifyClientCertIfGiven;
  if (text == "RequireAndVerifyClientCert") return ClientAuth::kRequireAndVerifyClientCert;
  return Status::InvalidArgument("unknown client auth type `" + text +
                                 "` (known: NoClientCert, RequestClientCert, RequireAnyClientCert, "
                                 "VerifyClientCertIfGiven, RequireAndVerifyClientCert)");
}

std::string ClientAuthName(ClientAuth auth) {
  switch (auth) {
    case ClientAuth::kNoClientCert: return "NoClientCert";
    case ClientAuth::kRequestClientCert: return "RequestClientCert";
    case ClientAuth::kRequireAnyClientCert: return "RequireAnyClientCert";
    case ClientAuth::kVerifyClientCertIfGiven: return "VerifyClientCertIfGiven";
    case ClientAuth::kRequireAndVerifyClientCert: return "RequireAndVerifyClientCert";
  }
  return "?";
}

Result<TlsVersion> ParseTlsVersion(const std::string& text) {
  if (text == "VersionTLS12" || text == "1.2") return TlsVersion::kTls12;
  if (text == "VersionTLS13" || text == "1.3") return TlsVersion::kTls13;
  if (text == "VersionTLS10" || text == "VersionTLS11" || text == "1.0" || text == "1.1")
    return Status::InvalidArgument("TLS version `" + text + "` is not offered: TLS 1.0 and 1.1 are obsolete (use 1.2 or 1.3)");
  return Status::InvalidArgument("unknown TLS version `" + text + "` (known: VersionTLS12, VersionTLS13, 1.2, 1.3)");
}

std::string TlsVersionName(TlsVersion version) { return version == TlsVersion::kTls13 ? "1.3" : "1.2"; }

std::vector<std::string> SplitCipherSuiteList(const std::string& text) {
  std::vector<std::string> names;
  std::string current;
  auto flush = [&] {
    if (!current.empty()) names.push_back(current);
    current.clear();
  };
  for (char c : text) {
    if (c == ',') flush();
    else if (c != ' ' && c != '\t') current += c;
  }
  flush();
  return names;
}

Result<OpenSslCiphers> MapCipherSuites(const std::vector<std::string>& go_names) {
  OpenSslCiphers out;
  for (const std::string& name : go_names) {
    const CipherName* found = nullptr;
    for (const CipherName& known : kCipherNames)
      if (name == known.go) found = &known;
    if (!found)
      return Status::InvalidArgument("unknown cipher suite `" + name +
                                     "` (Go's names, e.g. TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256)");
    std::string& list = found->tls13 ? out.tls13 : out.tls12;
    list += (list.empty() ? "" : ":") + std::string(found->openssl);
  }
  return out;
}

Result<std::shared_ptr<ssl::context>> BuildServerContext(const TlsSettings& settings, const std::string& what) {
  if (settings.cert_file.empty() || settings.key_file.empty())
    return Status::InvalidArgument(what + ": cert_file and key_file must be given together");
  if (settings.min_version > settings.max_version)
    return Status::InvalidArgument(what + ": min_version is above max_version");
  const ClientAuth auth = settings.client_auth;
  bool verifies = auth == ClientAuth::kVerifyClientCertIfGiven || auth == ClientAuth::kRequireAndVerifyClientCert;
  if (verifies && settings.client_ca_file.empty())
    return Status::InvalidArgument(what + ": client_auth_type " + ClientAuthName(auth) +
                                   " needs client_ca_file (the CAs client certificates are verified against)");
  if (!settings.client_ca_file.empty() && auth == ClientAuth::kNoClientCert)
    return Status::InvalidArgument(what + ": client_ca_file is given but client_auth_type is NoClientCert (as Tempo: "
                                          "set client_auth_type, e.g. RequireAndVerifyClientCert)");
  auto ciphers = MapCipherSuites(settings.cipher_suites);
  if (!ciphers.ok()) return Status::InvalidArgument(what + ": " + ciphers.status().message());
  TRACERY_RETURN_IF_ERROR(Readable("cert_file", settings.cert_file, what));
  TRACERY_RETURN_IF_ERROR(Readable("key_file", settings.key_file, what));
  if (!settings.client_ca_file.empty()) TRACERY_RETURN_IF_ERROR(Readable("client_ca_file", settings.client_ca_file, what));

  auto context = std::make_shared<ssl::context>(ssl::context::tls_server);
  SSL_CTX* ctx = context->native_handle();
  ERR_clear_error();
  SSL_CTX_set_options(ctx, SSL_OP_NO_COMPRESSION | SSL_OP_NO_RENEGOTIATION | SSL_OP_CIPHER_SERVER_PREFERENCE);
  SSL_CTX_set_min_proto_version(ctx, OpenSslVersion(settings.min_version));
  SSL_CTX_set_max_proto_version(ctx, OpenSslVersion(settings.max_version));
  if (SSL_CTX_use_certificate_chain_file(ctx, settings.cert_file.c_str()) != 1)
    return Status::InvalidArgument(what + ".cert_file: " + settings.cert_file + " is not a PEM certificate: " + OpenSslErrors());
  if (SSL_CTX_use_PrivateKey_file(ctx, settings.key_file.c_str(), SSL_FILETYPE_PEM) != 1) {
    std::string errors = OpenSslErrors();
    if (IsPemPrivateKey(settings.key_file))  // OpenSSL also refuses a good key of another certificate
      return Status::InvalidArgument(what + ": the key in " + settings.key_file + " does not match the certificate in " +
                                     settings.cert_file);
    return Status::InvalidArgument(what + ".key_file: " + settings.key_file + " is not a PEM private key: " + errors);
  }
  if (SSL_CTX_check_private_key(ctx) != 1)
    return Status::InvalidArgument(what + ": the key in " + settings.key_file + " does not match the certificate in " +
                                   settings.cert_file);
  if (!ciphers->tls12.empty() && SSL_CTX_set_cipher_list(ctx, ciphers->tls12.c_str()) != 1)
    return Status::InvalidArgument(what + ": cipher suites not available in this OpenSSL: " + ciphers->tls12);
  if (!ciphers->tls13.empty() && SSL_CTX_set_ciphersuites(ctx, ciphers->tls13.c_str()) != 1)
    return Status::InvalidArgument(what + ": TLS 1.3 cipher suites not available: " + ciphers->tls13);
  if (!settings.client_ca_file.empty()) {
    if (SSL_CTX_load_verify_locations(ctx, settings.client_ca_file.c_str(), nullptr) != 1)
      return Status::InvalidArgument(what + ".client_ca_file: " + settings.client_ca_file +
                                     " holds no PEM certificate: " + OpenSslErrors());
    // The CA names are sent in the certificate request, so clients pick the right certificate.
    if (STACK_OF(X509_NAME)* names = SSL_load_client_CA_file(settings.client_ca_file.c_str()))
      SSL_CTX_set_client_CA_list(ctx, names);
  }
  switch (auth) {
    case ClientAuth::kNoClientCert: SSL_CTX_set_verify(ctx, SSL_VERIFY_NONE, nullptr); break;
    case ClientAuth::kRequestClientCert: SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, AcceptAnyCertificate); break;
    case ClientAuth::kRequireAnyClientCert:
      SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT, AcceptAnyCertificate);
      break;
    case ClientAuth::kVerifyClientCertIfGiven: SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, nullptr); break;
    case ClientAuth::kRequireAndVerifyClientCert:
      SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT, nullptr);
      break;
  }
  // Session resumption with client certificates needs a context id (else handshakes fail).
  static const unsigned char kSessionContext[] = "tracery";
  SSL_CTX_set_session_id_context(ctx, kSessionContext, sizeof kSessionContext - 1);
  return context;
}

Result<std::shared_ptr<TlsContextSource>> TlsContextSource::Create(const TlsSettings& settings, const std::string& what) {
  std::shared_ptr<TlsContextSource> source(new TlsContextSource(settings, what));
  source->stamps_ = source->FileStamps();
  auto context = source->Build();
  if (!context.ok()) return context.status();
  source->context_ = std::move(context).value();
  source->checked_ = std::chrono::steady_clock::now();
  return source;
}

void TlsContextSource::OfferHttp2() {
  std::lock_guard lock(mutex_);
  offer_http2_ = true;
  SSL_CTX_set_alpn_select_cb(context_->native_handle(), SelectAlpn, nullptr);
}

Result<std::shared_ptr<ssl::context>> TlsContextSource::Build() const {
  auto context = BuildServerContext(settings_, what_);
  if (context.ok() && offer_http2_) SSL_CTX_set_alpn_select_cb((*context)->native_handle(), SelectAlpn, nullptr);
  return context;
}

std::string TlsContextSource::FileStamps() const {
  std::string out;
  for (const std::string* path : {&settings_.cert_file, &settings_.key_file, &settings_.client_ca_file}) {
    struct stat info {};
    if (path->empty() || ::stat(path->c_str(), &info) != 0) {
      out += "-;";
      continue;
    }
    out += std::to_string(info.st_mtim.tv_sec) + "." + std::to_string(info.st_mtim.tv_nsec) + "/" +
           std::to_string(info.st_size) + "/" + std::to_string(info.st_ino) + ";";
  }
  return out;
}

std::shared_ptr<ssl::context> TlsContextSource::Current() {
  {
    std::lock_guard lock(mutex_);
    if (std::chrono::steady_clock::now() - checked_ < settings_.EffectiveReloadInterval()) return context_;
  }
  ReloadIfChanged();
  std::lock_guard lock(mutex_);
  return context_;
}

bool TlsContextSource::ReloadIfChanged() {
  std::lock_guard lock(mutex_);
  checked_ = std::chrono::steady_clock::now();
  std::string stamps = FileStamps();
  if (stamps == stamps_ || stamps == failed_stamps_) return false;
  auto context = Build();
  if (!context.ok()) {
    // Often a file caught half-written, or the key renewed before the certificate: the next
    // change is tried again; until then the previous certificate keeps being served.
    failed_stamps_ = stamps;
    spdlog::error("{}: certificate files changed but cannot be loaded; keeping the previous certificate: {}", what_,
                  context.status().message());
    return false;
  }
  context_ = std::move(context).value();
  stamps_ = stamps;
  failed_stamps_.clear();
  spdlog::info("{}: certificate reloaded from {}", what_, settings_.cert_file);
  return true;
}

std::string NegotiatedAlpn(const SSL* ssl) {
  const unsigned char* data = nullptr;
  unsigned int length = 0;
  SSL_get0_alpn_selected(ssl, &data, &length);
  return data ? std::string(reinterpret_cast<const char*>(data), length) : std::string();
}

}  // namespace tracery
