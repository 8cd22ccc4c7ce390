// TLS settings and contexts without a socket: Go's names parsed and mapped, contexts built
// from good and bad files (errors name the file), and the reloading source keeping the old
// context when a changed file does not load. Certificates are made with the `openssl`
// command. TLS on real listeners end to end: tests/e2e/tls.test.mjs.
#include "common/tls.h"

#include <gtest/gtest.h>
#include <openssl/ssl.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>

#include "common/grpc_tls.h"
#include "common/temp_dir_for_tests.h"

namespace tracery {
namespace {

class TlsFilesTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_FALSE(dir_.path().empty());
    Run("openssl ecparam -name prime256v1 -genkey -noout -out ca.key");
    Run("openssl req -x509 -new -key ca.key -out ca.crt -days 2 -subj /CN=test-ca");
    for (const char* name : {"server", "renewed"}) {
      std::string n = name;
      Run("openssl ecparam -name prime256v1 -genkey -noout -out " + n + ".key");
      Run("openssl req -new -key " + n + ".key -out " + n + ".csr -subj /CN=" + n);
      Run("openssl x509 -req -in " + n + ".csr -CA ca.crt -CAkey ca.key -CAcreateserial -out " + n + ".crt -days 2");
    }
    Write("garbage.pem", "not a certificate\n");
  }
  void Run(const std::string& command) {
    std::string line = "cd '" + dir_.path() + "' && " + command + " >/dev/null 2>&1";
    ASSERT_EQ(std::system(line.c_str()), 0) << command;
  }
  void Write(const std::string& name, const std::string& text) { std::ofstream(Path(name)) << text; }
  std::string Path(const std::string& name) const { return dir_.path() + "/" + name; }
  TlsSettings Settings() const {
    TlsSettings settings;
    settings.cert_file = Path("server.crt");
    settings.key_file = Path("server.key");
    return settings;
  }
  static std::string SubjectOf(const std::shared_ptr<boost::asio::ssl::context>& context) {
    X509* cert = SSL_CTX_get0_certificate(context->native_handle());
    char name[256] = {};
    X509_NAME_oneline(X509_get_subject_name(cert), name, sizeof name);
    return name;
  }

  TempDir dir_{"tracery-tls-test"};
};

TEST(TlsNamesTest, ClientAuthTypesAreGos) {
  EXPECT_EQ(*ParseClientAuth("NoClientCert"), ClientAuth::kNoClientCert);
  EXPECT_EQ(*ParseClientAuth(""), ClientAuth::kNoClientCert);
  EXPECT_EQ(*ParseClientAuth("RequestClientCert"), ClientAuth::kRequestClientCert);
  EXPECT_EQ(*ParseClientAuth("RequireAnyClientCert"), ClientAuth::kRequireAnyClientCert);
  EXPECT_EQ(*ParseClientAuth("VerifyClientCertIfGiven"), ClientAuth::kVerifyClientCertIfGiven);
  EXPECT_EQ(*ParseClientAuth("RequireAndVerifyClientCert"), ClientAuth::kRequireAndVerifyClientCert);
  auto bad = ParseClientAuth("requireandverifyclientcert");
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(bad.status().message().find("RequireAndVerifyClientCert"), std::string::npos);
}

TEST(TlsNamesTest, VersionsInBothSpellings) {
  EXPECT_EQ(*ParseTlsVersion("VersionTLS12"), TlsVersion::kTls12);
  EXPECT_EQ(*ParseTlsVersion("1.2"), TlsVersion::kTls12);
  EXPECT_EQ(*ParseTlsVersion("VersionTLS13"), TlsVersion::kTls13);
  EXPECT_EQ(*ParseTlsVersion("1.3"), TlsVersion::kTls13);
  EXPECT_FALSE(ParseTlsVersion("VersionTLS10").ok());
  EXPECT_FALSE(ParseTlsVersion("1.1").ok());
  EXPECT_FALSE(ParseTlsVersion("TLS1.2").ok());
}

TEST(TlsNamesTest, GoCipherSuitesMapToOpenSsl) {
  auto names = SplitCipherSuiteList(" TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256, TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305,,"
                                    "TLS_AES_256_GCM_SHA384");
  ASSERT_EQ(names.size(), 3u);
  auto mapped = MapCipherSuites(names);
  ASSERT_TRUE(mapped.ok());
  EXPECT_EQ(mapped->tls12, "ECDHE-RSA-AES128-GCM-SHA256:ECDHE-ECDSA-CHACHA20-POLY1305");
  EXPECT_EQ(mapped->tls13, "TLS_AES_256_GCM_SHA384");
  auto unknown = MapCipherSuites({"TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256", "TLS_RSA_WITH_RC4_128_SHA"});
  ASSERT_FALSE(unknown.ok());
  EXPECT_NE(unknown.status().message().find("TLS_RSA_WITH_RC4_128_SHA"), std::string::npos);
  EXPECT_TRUE(MapCipherSuites({})->tls12.empty());
}

TEST_F(TlsFilesTest, BuildsAContextFromGoodFiles) {
  TlsSettings settings = Settings();
  settings.client_ca_file = Path("ca.crt");
  settings.client_auth = ClientAuth::kRequireAndVerifyClientCert;
  settings.min_version = TlsVersion::kTls13;
  settings.cipher_suites = {"TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256"};
  auto context = BuildServerContext(settings, "server.http_tls_config");
  ASSERT_TRUE(context.ok()) << context.status().message();
  SSL_CTX* ctx = (*context)->native_handle();
  EXPECT_EQ(SSL_CTX_get_min_proto_version(ctx), TLS1_3_VERSION);
  EXPECT_EQ(SSL_CTX_get_verify_mode(ctx), SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT);
  EXPECT_EQ(SubjectOf(*context), "/CN=server");
}

TEST_F(TlsFilesTest, BadFilesAreNamed) {
  auto expect_error = [](const TlsSettings& settings, const std::string& expected) {
    auto context = BuildServerContext(settings, "distributor.receivers.otlp.protocols.http.tls");
    ASSERT_FALSE(context.ok()) << expected;
    EXPECT_NE(context.status().message().find(expected), std::string::npos) << context.status().message();
  };
  TlsSettings settings = Settings();
  settings.cert_file = Path("garbage.pem");
  expect_error(settings, "tls.cert_file: " + Path("garbage.pem") + " is not a PEM certificate");
  settings = Settings();
  settings.key_file = Path("garbage.pem");
  expect_error(settings, "tls.key_file: " + Path("garbage.pem") + " is not a PEM private key");
  settings = Settings();
  settings.key_file = Path("renewed.key");
  expect_error(settings, "does not match the certificate");
  settings = Settings();
  settings.cert_file = Path("missing.crt");
  expect_error(settings, "cannot read " + Path("missing.crt"));
  settings = Settings();
  settings.key_file.clear();
  expect_error(settings, "cert_file and key_file must be given together");
  settings = Settings();
  settings.client_auth = ClientAuth::kRequireAndVerifyClientCert;
  expect_error(settings, "needs client_ca_file");
  settings = Settings();
  settings.client_ca_file = Path("ca.crt");
  expect_error(settings, "client_ca_file is given but client_auth_type is NoClientCert");
  settings = Settings();
  settings.client_ca_file = Path("garbage.pem");
  settings.client_auth = ClientAuth::kVerifyClientCertIfGiven;
  expect_error(settings, "client_ca_file: " + Path("garbage.pem"));
}

TEST_F(TlsFilesTest, SourceReloadsChangedFilesAndKeepsTheOldOnAFailure) {
  TlsSettings settings = Settings();
  auto source = TlsContextSource::Create(settings, "server.http_tls_config");
  ASSERT_TRUE(source.ok()) << source.status().message();
  auto first = (*source)->Current();
  EXPECT_EQ(SubjectOf(first), "/CN=server");
  EXPECT_FALSE((*source)->ReloadIfChanged());  // nothing changed

  // A broken certificate: the old context stays.
  std::filesystem::copy_file(Path("garbage.pem"), Path("server.crt"), std::filesystem::copy_options::overwrite_existing);
  EXPECT_FALSE((*source)->ReloadIfChanged());
  EXPECT_EQ((*source)->Current(), first);

  // The renewed pair: new connections get it; the old context lives on for its connections.
  std::filesystem::copy_file(Path("renewed.key"), Path("server.key"), std::filesystem::copy_options::overwrite_existing);
  std::filesystem::copy_file(Path("renewed.crt"), Path("server.crt"), std::filesystem::copy_options::overwrite_existing);
  EXPECT_TRUE((*source)->ReloadIfChanged());
  EXPECT_EQ(SubjectOf((*source)->Current()), "/CN=renewed");
  EXPECT_EQ(SubjectOf(first), "/CN=server");
}

TEST_F(TlsFilesTest, GrpcCredentialsRefuseWhatGrpcCannotEnforce) {
  EXPECT_TRUE(MakeGrpcServerCredentials(TlsSettings{}, "x").ok());  // TLS off: insecure
  TlsSettings settings = Settings();
  EXPECT_TRUE(MakeGrpcServerCredentials(settings, "x").ok());
  settings.min_version = TlsVersion::kTls13;
  EXPECT_FALSE(MakeGrpcServerCredentials(settings, "x").ok());
  settings = Settings();
  settings.cipher_suites = {"TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256"};
  EXPECT_FALSE(MakeGrpcServerCredentials(settings, "x").ok());
  settings = Settings();
  settings.cert_file = Path("garbage.pem");
  auto bad = MakeGrpcServerCredentials(settings, "distributor.receivers.otlp.protocols.grpc.tls");
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(bad.status().message().find("garbage.pem"), std::string::npos);
}

}  // namespace
}  // namespace tracery
