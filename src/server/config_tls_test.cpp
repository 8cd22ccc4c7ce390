// The TLS keys of the configuration: Tempo's server blocks (dskit names) and the Collector's
// receiver `tls` blocks land in the listeners' TlsSettings; bad values are refused with the key.
#include <gtest/gtest.h>

#include "server/config.h"

namespace tracery::server {
namespace {

TEST(ConfigTlsTest, TemposServerBlocks) {
  auto config = ParseConfig(R"(
server:
  http_tls_config:
    cert_file: /etc/tempo/server.crt
    key_file: /etc/tempo/server.key
    client_auth_type: RequireAndVerifyClientCert
    client_ca_file: /etc/tempo/ca.crt
  grpc_tls_config:
    cert_file: /etc/tempo/grpc.crt
    key_file: /etc/tempo/grpc.key
  tls_min_version: VersionTLS13
  tls_cipher_suites: TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256, TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384
)", "tempo.yaml");
  ASSERT_TRUE(config.ok()) << config.status().message();
  EXPECT_EQ(config->http_tls.cert_file, "/etc/tempo/server.crt");
  EXPECT_EQ(config->http_tls.key_file, "/etc/tempo/server.key");
  EXPECT_EQ(config->http_tls.client_ca_file, "/etc/tempo/ca.crt");
  EXPECT_EQ(config->http_tls.client_auth, ClientAuth::kRequireAndVerifyClientCert);
  EXPECT_EQ(config->http_tls.min_version, TlsVersion::kTls13);
  EXPECT_EQ(config->grpc_tls.min_version, TlsVersion::kTls13);
  EXPECT_EQ(config->http_tls.cipher_suites.size(), 2u);
  EXPECT_EQ(config->grpc_tls.cert_file, "/etc/tempo/grpc.crt");
  EXPECT_FALSE(config->otlp_grpc_tls.enabled());
}

TEST(ConfigTlsTest, CollectorReceiverBlocks) {
  auto config = ParseConfig(R"(
distributor:
  receivers:
    otlp:
      protocols:
        grpc:
          tls:
            cert_file: /certs/otlp.crt
            key_file: /certs/otlp.key
            client_ca_file: /certs/ca.crt
        http:
          tls:
            cert_file: /certs/otlp.crt
            key_file: /certs/otlp.key
            min_version: "1.3"
            reload_interval: 30s
            cipher_suites: [TLS_AES_128_GCM_SHA256]
)", "tempo.yaml");
  ASSERT_TRUE(config.ok()) << config.status().message();
  EXPECT_TRUE(config->otlp_grpc_enabled);
  EXPECT_TRUE(config->otlp_http_enabled);
  // The Collector has no client auth key: a client CA means mutual TLS.
  EXPECT_EQ(config->otlp_grpc_tls.client_auth, ClientAuth::kRequireAndVerifyClientCert);
  EXPECT_EQ(config->otlp_http_tls.client_auth, ClientAuth::kNoClientCert);
  EXPECT_EQ(config->otlp_http_tls.min_version, TlsVersion::kTls13);
  EXPECT_EQ(config->otlp_http_tls.EffectiveReloadInterval(), std::chrono::seconds(30));
  EXPECT_EQ(config->otlp_http_tls.cipher_suites, std::vector<std::string>{"TLS_AES_128_GCM_SHA256"});
}

TEST(ConfigTlsTest, BadValuesAreRefusedWithTheirKey) {
  for (auto [yaml, expected] : std::vector<std::pair<std::string, std::string>>{
           {"server:\n  tls_cipher_suites: TLS_MADE_UP\n", "server.tls_cipher_suites"},
           {"server:\n  tls_min_version: VersionTLS11\n", "server.tls_min_version"},
           {"server:\n  http_tls_config:\n    client_auth_type: Always\n", "server.http_tls_config.client_auth_type"},
           {"distributor:\n  receivers:\n    otlp:\n      protocols:\n        grpc:\n          tls:\n            min_version: "
            "\"1.0\"\n",
            "tls.min_version"},
           {"distributor:\n  receivers:\n    otlp:\n      protocols:\n        http:\n          tls:\n            cert_fle: x\n",
            "tls.cert_fle"},
       }) {
    auto config = ParseConfig(yaml, "tempo.yaml");
    ASSERT_FALSE(config.ok()) << yaml;
    EXPECT_NE(config.status().message().find(expected), std::string::npos) << config.status().message();
  }
}

}  // namespace
}  // namespace tracery::server
