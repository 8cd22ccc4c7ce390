// The gateway's components as the Collector's config names them: the otlp receiver, the otlp
// and otlphttp exporters, the memory_limiter and batch processors. Key names and defaults are
// the Collector's; docs/gateway.md lists what is accepted.
#include <set>

#include "server/collector_config_internal.h"
#include "server/config_internal.h"

namespace tracery::server::collector_detail {
namespace {

using config_detail::ParseBool;
using config_detail::ParseConfigBytes;
using config_detail::ParseConfigDuration;
using config_detail::ParseDouble;
using config_detail::ParseUnsigned;

// The Collector's server `tls` block of a receiver protocol.
void ReadServerTls(Reader& reader, const MergedNode& node, const std::string& path, TlsSettings& tls) {
  auto version = [&](TlsVersion& out) -> Reader::Handler {
    return [&reader, &out](const MergedNode& value, const std::string& key_path) {
      if (value.IsNull()) return;
      auto parsed = value.IsScalar() ? ParseTlsVersion(value.node.Scalar()) : Result<TlsVersion>(Status::InvalidArgument("not a string"));
      if (!parsed.ok()) return reader.BadValue(value, key_path, parsed.status().message());
      out = *parsed;
    };
  };
  reader.Walk(node, path,
              {{"cert_file", reader.String(tls.cert_file)},
               {"key_file", reader.String(tls.key_file)},
               {"client_ca_file", reader.String(tls.client_ca_file)},
               {"min_version", version(tls.min_version)},
               {"max_version", version(tls.max_version)},
               {"cipher_suites", reader.Strings(tls.cipher_suites)},
               {"reload_interval", reader.Duration(tls.reload_interval)}});
  // The Collector's server blocks have no client_auth_type: a client CA means verified client
  // certificates are required.
  if (!tls.client_ca_file.empty()) tls.client_auth = ClientAuth::kRequireAndVerifyClientCert;
  if (tls.cert_file.empty() != tls.key_file.empty()) reader.Error(node, "`" + path + "`: cert_file and key_file go together");
}

Reader::Handler Protocol(Reader& reader, OtlpProtocolConfig& out, const char* default_endpoint, bool grpc) {
  return [&reader, &out, default_endpoint, grpc](const MergedNode& value, const std::string& path) {
    out.enabled = true;
    std::map<std::string, Reader::Handler> keys = {
        {"endpoint", reader.String(out.endpoint)},
        {"tls", [&](const MergedNode& tls, const std::string& tls_path) { ReadServerTls(reader, tls, tls_path, out.tls); }},
        {"include_metadata", reader.Ignored()}};
    if (grpc) {
      keys["max_recv_msg_size_mib"] = [&](const MergedNode& v, const std::string& p) {
        uint64_t mib = 0;
        reader.Unsigned(mib)(v, p);
        out.max_request_bytes = mib << 20;
      };
    } else {
      keys["max_request_body_size"] = [&](const MergedNode& v, const std::string& p) {
        if (v.IsNull()) return;
        auto bytes = v.IsScalar() ? ParseConfigBytes(v.node.Scalar()) : std::nullopt;
        if (!bytes) return reader.BadValue(v, p, "not a number of bytes");
        out.max_request_bytes = *bytes;
      };
    }
    reader.Walk(value, path, keys);
    if (out.endpoint.empty()) out.endpoint = default_endpoint;
    if (out.endpoint.rfind("localhost:", 0) == 0) out.endpoint = "127.0.0.1" + out.endpoint.substr(9);
    if (!config_detail::ValidEndpoint(out.endpoint)) {
      const MergedNode* at = value.Find("endpoint");
      reader.Error(at ? *at : value, "bad value `" + out.endpoint + "` for `" + path + ".endpoint`: expected host:port");
    }
  };
}

void ReadClientTls(Reader& reader, const MergedNode& node, const std::string& path, exporter::ClientTlsOptions& tls) {
  reader.Walk(node, path,
              {{"insecure", reader.Bool(tls.insecure)},
               {"insecure_skip_verify", reader.Bool(tls.insecure_skip_verify)},
               {"ca_file", reader.String(tls.ca_file)},
               {"cert_file", reader.String(tls.cert_file)},
               {"key_file", reader.String(tls.key_file)},
               {"server_name_override", reader.String(tls.server_name_override)}});
  if (tls.cert_file.empty() != tls.key_file.empty()) reader.Error(node, "`" + path + "`: cert_file and key_file go together");
}

void ReadRetry(Reader& reader, const MergedNode& node, const std::string& path, exporter::RetryOptions& retry) {
  reader.Walk(node, path,
              {{"enabled", reader.Bool(retry.enabled)},
               {"initial_interval", reader.Duration(retry.initial_interval, false)},
               {"max_interval", reader.Duration(retry.max_interval, false)},
               {"max_elapsed_time", reader.Duration(retry.max_elapsed_time)},
               {"multiplier", reader.Double(retry.multiplier)},
               {"randomization_factor", reader.Double(retry.randomization_factor)}});
  if (retry.multiplier < 1) reader.Error(node, "`" + path + ".multiplier` must be at least 1");
  if (retry.randomization_factor < 0 || retry.randomization_factor >= 1)
    reader.Error(node, "`" + path + ".randomization_factor` must be in [0, 1)");
}

// The exporter keys shared by otlp, otlphttp and tracery.peer_exporter.
std::map<std::string, Reader::Handler> CommonExporterKeys(Reader& reader, exporter::ExporterOptions& out) {
  return {
      {"tls", [&](const MergedNode& v, const std::string& p) { ReadClientTls(reader, v, p, out.tls); }},
      {"headers",
       [&](const MergedNode& v, const std::string& p) {
         if (v.IsNull()) return;
         if (!v.is_map) return reader.BadValue(v, p, "expected a mapping of header name to value");
         for (const auto& [name, value] : v.children) {
           if (!value.IsScalar()) reader.BadValue(value, p + "." + name, "not a string");
           else out.headers.emplace_back(name, value.node.Scalar());
         }
       }},
      {"compression",
       [&](const MergedNode& v, const std::string& p) {
         if (v.IsNull()) return;
         std::string text = v.IsScalar() ? v.node.Scalar() : "?";
         if (text == "gzip") out.compression = exporter::Compression::kGzip;
         else if (text == "none" || text.empty()) out.compression = exporter::Compression::kNone;
         else reader.BadValue(v, p, "tracery's exporters compress with gzip or none");
       }},
      {"timeout", reader.Duration(out.timeout, false)},
      {"retry_on_failure", [&](const MergedNode& v, const std::string& p) { ReadRetry(reader, v, p, out.retry); }},
      // The WAL is the queue (docs/gateway.md): the keys are accepted and change nothing.
      {"sending_queue",
       [&](const MergedNode& v, const std::string& p) {
         reader.Walk(v, p,
                     {{"enabled", reader.Ignored()}, {"num_consumers", reader.Ignored()}, {"queue_size", reader.Ignored()},
                      {"storage", reader.Ignored()}, {"blocking", reader.Ignored()}, {"sizer", reader.Ignored()}});
       }},
  };
}

}  // namespace

void ReadReceiver(Reader& reader, const std::string& id, const MergedNode& node, OtlpReceiverConfig& out) {
  out.id = id;
  const std::string path = "receivers." + id;
  reader.Walk(node, path, {{"protocols", [&](const MergedNode& protocols, const std::string& p) {
                              reader.Walk(protocols, p,
                                          {{"grpc", Protocol(reader, out.grpc, "0.0.0.0:4317", true)},
                                           {"http", Protocol(reader, out.http, "0.0.0.0:4318", false)}});
                            }}});
  if (!out.grpc.enabled && !out.http.enabled)
    reader.Error(node, "`" + path + "` must enable at least one protocol (protocols.grpc or protocols.http)");
}

void ReadExporter(Reader& reader, const std::string& id, const std::string& type, const MergedNode& node,
                  exporter::ExporterOptions& out) {
  out.name = id;
  out.protocol = type == "otlphttp" ? exporter::Protocol::kHttp : exporter::Protocol::kGrpc;
  const std::string path = "exporters." + id;
  auto keys = CommonExporterKeys(reader, out);
  keys["endpoint"] = reader.String(out.endpoint);
  if (type == "otlphttp") {
    keys["traces_endpoint"] = reader.String(out.traces_endpoint);
    keys["encoding"] = [&](const MergedNode& v, const std::string& p) {
      if (v.IsScalar() && v.node.Scalar() != "proto")
        reader.BadValue(v, p, "tracery's otlphttp exporter sends protobuf (`proto`) only");
    };
  }
  reader.Walk(node, path, keys);
  if (out.endpoint.empty() && out.traces_endpoint.empty())
    reader.Error(node, "`" + path + "`: `endpoint` is required");
  if (type == "otlphttp" && !out.endpoint.empty() && out.endpoint.rfind("http://", 0) != 0 && out.endpoint.rfind("https://", 0) != 0)
    reader.Error(*node.Find("endpoint"), "bad value `" + out.endpoint + "` for `" + path + ".endpoint`: expected a URL (http:// or https://)");
}

void ReadPeerExporter(Reader& reader, const MergedNode& node, exporter::ExporterOptions& out) {
  reader.Walk(node, "tracery.peer_exporter", CommonExporterKeys(reader, out));
}

void ReadMemoryLimiter(Reader& reader, const std::string& path, const MergedNode& node, MemoryLimiterConfig& out) {
  out.defined = true;
  reader.Walk(node, path,
              {{"check_interval", reader.Duration(out.check_interval, false)},
               {"limit_mib", reader.Unsigned(out.limit_mib)},
               {"spike_limit_mib", reader.Unsigned(out.spike_limit_mib)},
               {"limit_percentage", reader.Unsigned(out.limit_percentage)},
               {"spike_limit_percentage", reader.Unsigned(out.spike_limit_percentage)}});
  if (out.limit_mib > 0 && out.limit_percentage > 0)
    reader.Error(node, "`" + path + "`: set limit_mib or limit_percentage, not both");
  if (out.limit_percentage > 100 || out.spike_limit_percentage > 100)
    reader.Error(node, "`" + path + "`: percentages are at most 100");
  if (out.limit_mib > 0 && out.spike_limit_mib >= out.limit_mib)
    reader.Error(node, "`" + path + ".spike_limit_mib` must be smaller than limit_mib");
  if (out.limit_percentage > 0 && out.spike_limit_percentage >= out.limit_percentage)
    reader.Error(node, "`" + path + ".spike_limit_percentage` must be smaller than limit_percentage");
}

void ReadBatch(Reader& reader, const std::string& path, const MergedNode& node, BatchConfig& out) {
  out.defined = true;
  reader.Walk(node, path,
              {{"timeout", reader.Duration(out.timeout)},
               {"send_batch_size", reader.Unsigned(out.send_batch_size)},
               {"send_batch_max_size", reader.Unsigned(out.send_batch_max_size)},
               {"metadata_keys", reader.Ignored()},
               {"metadata_cardinality_limit", reader.Ignored()}});
}

// ---- Reader ----

Status Reader::Report() const {
  if (errors_.empty()) return Status::Ok();
  std::string message = errors_.size() > 1 ? std::to_string(errors_.size()) + " problems:\n" : "";
  for (size_t i = 0; i < errors_.size(); ++i) message += (i ? "\n" : "") + errors_[i];
  return Status::InvalidArgument(message);
}

void Reader::Walk(const MergedNode& node, const std::string& path, const std::map<std::string, Handler>& handlers) {
  if (node.IsNull()) return;
  if (!node.is_map) return Error(node, "`" + (path.empty() ? "the top level" : path) + "` must be a mapping");
  for (const auto& [key, child] : node.children) {
    const std::string key_path = path.empty() ? key : path + "." + key;
    auto handler = handlers.find(key);
    if (handler == handlers.end()) {
      ErrorAtKey(child, "unknown key `" + key_path + "`");
      continue;
    }
    handler->second(child, key_path);
  }
}

Reader::Handler Reader::Bool(bool& out) {
  return [this, &out](const MergedNode& value, const std::string& path) {
    if (value.IsNull()) return;
    if (!value.IsScalar() || !ParseBool(value.node.Scalar(), out)) BadValue(value, path, "not a boolean (true or false)");
  };
}

Reader::Handler Reader::Unsigned(uint64_t& out) {
  return [this, &out](const MergedNode& value, const std::string& path) {
    if (value.IsNull()) return;
    if (!value.IsScalar() || !ParseUnsigned(value.node.Scalar(), out)) BadValue(value, path, "not a non-negative integer");
  };
}

Reader::Handler Reader::Double(double& out) {
  return [this, &out](const MergedNode& value, const std::string& path) {
    if (value.IsNull()) return;
    if (!value.IsScalar() || !ParseDouble(value.node.Scalar(), out)) BadValue(value, path, "not a number");
  };
}

Reader::Handler Reader::String(std::string& out) {
  return [this, &out](const MergedNode& value, const std::string& path) {
    if (value.IsNull()) return;
    if (!value.IsScalar()) return BadValue(value, path, "not a string");
    out = value.node.Scalar();
  };
}

Reader::Handler Reader::Strings(std::vector<std::string>& out) {
  return [this, &out](const MergedNode& value, const std::string& path) {
    if (value.IsNull()) return;
    if (!value.IsSequence()) return BadValue(value, path, "not a list of strings");
    out.clear();
    for (const auto& item : value.node) {
      if (!item.IsScalar()) BadValue(value, path, "not a list of strings");
      else out.push_back(item.Scalar());
    }
  };
}

Reader::Handler Reader::Duration(std::chrono::nanoseconds& out, bool allow_zero) {
  return [this, &out, allow_zero](const MergedNode& value, const std::string& path) {
    if (value.IsNull()) return;
    auto d = value.IsScalar() ? ParseConfigDuration(value.node.Scalar()) : std::nullopt;
    if (!d || d->count() < 0) return BadValue(value, path, "not a duration (e.g. 5s, 500ms)");
    if (!allow_zero && d->count() == 0) return BadValue(value, path, "must be more than zero");
    out = *d;
  };
}

Reader::Handler Reader::Ignored() {
  return [](const MergedNode&, const std::string&) {};
}

}  // namespace tracery::server::collector_detail
