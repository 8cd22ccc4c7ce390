// Reading a Collector-format gateway config: merging the files, the top-level sections, the
// traces pipeline and tracery's own `tracery:` key. The components themselves are read in
// collector_config_components.cpp.
#include "server/collector_config.h"

#include <cctype>
#include <fstream>
#include <set>
#include <sstream>

#include "sampling/policy_config.h"
#include "server/collector_config_internal.h"
#include "server/config_internal.h"

namespace tracery::server {

using collector_detail::ComponentType;
using collector_detail::MergedNode;
using collector_detail::Reader;

namespace collector_detail {

void Merge(MergedNode& into, const YAML::Node& node, const YAML::Node& key, const std::string& file) {
  if (node.IsMap()) {
    if (!into.is_map) {
      into.children.clear();
      into.is_map = true;
      into.map_files = 0;
    }
    into.node = node;
    into.key = key;
    into.file = file;
    into.map_files += 1;
    for (const auto& item : node) {
      std::string name = item.first.IsScalar() ? item.first.Scalar() : "?";
      size_t at = 0;
      while (at < into.children.size() && into.children[at].first != name) ++at;
      if (at == into.children.size()) into.children.emplace_back(name, MergedNode{});
      Merge(into.children[at].second, item.second, item.first, file);
    }
    return;
  }
  // `key:` with nothing in a later file does not erase what earlier files defined there.
  if ((!node || node.IsNull()) && into.is_map) return;
  into = MergedNode{};
  into.node = node;
  into.key = key;
  into.file = file;
}

std::string ComponentType(const std::string& id) {
  std::string type = id.substr(0, id.find('/'));
  if (type.empty() || (id.find('/') != std::string::npos && id.size() == type.size() + 1)) return "";
  return type;
}

}  // namespace collector_detail

namespace {

// The tail_sampling checks report in their own format; their lines join ours.
void AddSamplingProblems(Reader& reader, const Status& status) {
  std::istringstream lines(status.message());
  std::string line;
  bool first = true;
  while (std::getline(lines, line)) {
    bool header = first && line.find(" problems:") != std::string::npos && line.find(':') == line.size() - 1;
    first = false;
    if (!header && !line.empty()) reader.AddRaw(line);
  }
}

class GatewayReader {
 public:
  GatewayReader(Reader& reader, GatewayConfig& config) : reader_(reader), config_(config) {}

  void Read(const MergedNode& root) {
    reader_.Walk(root, "",
                 {{"receivers", [&](const MergedNode& v, const std::string&) { ReadReceivers(v); }},
                  {"processors", [&](const MergedNode& v, const std::string&) { ReadProcessors(v); }},
                  {"exporters", [&](const MergedNode& v, const std::string&) { ReadExporters(v); }},
                  {"service", [&](const MergedNode& v, const std::string&) { ReadService(v); }},
                  {"tracery", [&](const MergedNode& v, const std::string&) { ReadTracery(v); }},
                  {"extensions", Refuse("extensions are not supported: tracery serves /ready and /metrics itself")},
                  {"connectors", Refuse("connectors are not supported: the gateway runs one traces pipeline")}});
    ResolvePipeline();
  }

 private:
  Reader::Handler Refuse(std::string why) {
    return [this, why](const MergedNode& value, const std::string& path) {
      if (value.IsNull() || (value.is_map && value.children.empty())) return;
      reader_.ErrorAtKey(value, "`" + path + "`: " + why);
    };
  }

  // Each entry of a component section, with its ID checked.
  template <typename Read>
  void ForEachComponent(const MergedNode& section, const std::string& name, Read&& read) {
    if (section.IsNull()) return;
    if (!section.is_map) return reader_.Error(section, "`" + name + "` must be a mapping");
    for (const auto& [id, node] : section.children) {
      std::string type = ComponentType(id);
      if (type.empty()) reader_.ErrorAtKey(node, "`" + name + "." + id + "`: a component ID is `type` or `type/name`");
      else read(id, type, node);
    }
  }

  void ReadReceivers(const MergedNode& section) {
    ForEachComponent(section, "receivers", [&](const std::string& id, const std::string& type, const MergedNode& node) {
      if (type != "otlp")
        return reader_.ErrorAtKey(node, "`receivers." + id + "`: unknown or unsupported receiver type `" + type +
                                            "` (the gateway receives OTLP: otlp)");
      OtlpReceiverConfig receiver;
      collector_detail::ReadReceiver(reader_, id, node, receiver);
      receivers_.emplace(id, std::move(receiver));
    });
  }

  void ReadProcessors(const MergedNode& section) {
    ForEachComponent(section, "processors", [&](const std::string& id, const std::string& type, const MergedNode& node) {
      const std::string path = "processors." + id;
      if (type == "tail_sampling") {
        if (node.map_files > 1)
          return reader_.ErrorAtKey(node, "`" + path + "` is defined in more than one file: keep it in one");
        YAML::Node block = node.is_map ? node.node : YAML::Node(YAML::NodeType::Map);
        auto checked = sampling::ParseTailSamplingConfig(block, node.file, path);
        if (!checked.ok()) AddSamplingProblems(reader_, checked.status());
        tail_sampling_.emplace(id, TailSamplingProcessor{id, block, node.file, false});
      } else if (type == "memory_limiter") {
        collector_detail::ReadMemoryLimiter(reader_, path, node, memory_limiters_[id]);
      } else if (type == "batch") {
        collector_detail::ReadBatch(reader_, path, node, batches_[id]);
      } else {
        return reader_.ErrorAtKey(node, "`" + path + "`: unknown or unsupported processor type `" + type +
                                            "` (the gateway has tail_sampling, memory_limiter and batch)");
      }
      processor_types_.emplace(id, type);
    });
  }

  void ReadExporters(const MergedNode& section) {
    ForEachComponent(section, "exporters", [&](const std::string& id, const std::string& type, const MergedNode& node) {
      if (type == "loadbalancing")
        return reader_.ErrorAtKey(node, "`exporters." + id + "`: the loadbalancing exporter is not needed: tracery gateways "
                                        "route spans between themselves by trace ID (list them under `tracery.peers`)");
      if (type != "otlp" && type != "otlphttp")
        return reader_.ErrorAtKey(node, "`exporters." + id + "`: unknown or unsupported exporter type `" + type +
                                            "` (the gateway exports OTLP: otlp, otlphttp)");
      ExporterConfig exporter{id, {}};
      collector_detail::ReadExporter(reader_, id, type, node, exporter.options);
      exporters_.emplace(id, std::move(exporter));
    });
  }

  void ReadService(const MergedNode& service) {
    reader_.Walk(service, "service",
                 {{"pipelines", [&](const MergedNode& v, const std::string&) { ReadPipelines(v); }},
                  {"telemetry", [&](const MergedNode& v, const std::string& p) { ReadTelemetry(v, p); }},
                  {"extensions", Refuse("extensions are not supported: tracery serves /ready and /metrics itself")}});
  }

  void ReadTelemetry(const MergedNode& telemetry, const std::string& path) {
    reader_.Walk(telemetry, path,
                 {{"logs",
                   [&](const MergedNode& logs, const std::string& p) {
                     reader_.Walk(logs, p, {{"level", [&](const MergedNode& v, const std::string& key_path) {
                                               if (v.IsNull()) return;
                                               if (!v.IsScalar()) return reader_.BadValue(v, key_path, "not a string");
                                               std::string level = v.node.Scalar();
                                               for (char& c : level) c = char(std::tolower(static_cast<unsigned char>(c)));
                                               if (level == "warning") level = "warn";
                                               if (level == "debug" || level == "info" || level == "warn" || level == "error")
                                                 config_.log_level = level;
                                               else
                                                 reader_.BadValue(v, key_path, "expected debug, info, warn or error");
                                             }},
                                             {"encoding", reader_.Ignored()}});
                   }},
                  {"metrics", [&](const MergedNode& metrics, const std::string& p) {
                     reader_.Walk(metrics, p, {{"address", reader_.String(config_.metrics_address)}, {"level", reader_.Ignored()}});
                   }}});
  }

  void ReadPipelines(const MergedNode& pipelines) {
    ForEachComponent(pipelines, "service.pipelines", [&](const std::string& id, const std::string& type, const MergedNode& node) {
      const std::string path = "service.pipelines." + id;
      if (type == "metrics" || type == "logs" || type == "profiles")
        return reader_.ErrorAtKey(node, "`" + path + "`: " + type + " pipelines are not supported: the gateway runs one traces pipeline");
      if (type != "traces") return reader_.ErrorAtKey(node, "`" + path + "`: unknown pipeline type `" + type + "`");
      if (pipeline_) return reader_.ErrorAtKey(node, "`" + path + "`: the gateway runs one traces pipeline; `" +
                                                         config_.pipeline_id + "` is already defined");
      pipeline_ = &node;
      config_.pipeline_id = id;
      auto list = [&](const MergedNode*& out) {
        return [&out, this](const MergedNode& value, const std::string& p) {
          if (value.IsNull()) return;
          if (!value.IsSequence()) return reader_.BadValue(value, p, "not a list of component IDs");
          out = &value;
        };
      };
      reader_.Walk(node, path, {{"receivers", list(pipeline_receivers_)},
                                {"processors", list(pipeline_processors_)},
                                {"exporters", list(pipeline_exporters_)}});
    });
  }

  void ReadTracery(const MergedNode& node) {
    reader_.Walk(node, "tracery",
                 {{"peers", reader_.Strings(config_.peers)},
                  {"self", reader_.String(config_.self)},
                  {"wal_path", reader_.String(config_.wal_path)},
                  {"quiet_period",
                   [&](const MergedNode& v, const std::string& p) {
                     std::chrono::nanoseconds period{0};
                     reader_.Duration(period)(v, p);
                     if (!v.IsNull()) config_.quiet_period = period;
                   }},
                  {"multitenancy_enabled", reader_.Bool(config_.multitenancy_enabled)},
                  {"peer_exporter",
                   [&](const MergedNode& v, const std::string&) { collector_detail::ReadPeerExporter(reader_, v, config_.peer_exporter); }}});
    std::set<std::string> seen;
    for (const auto& peer : config_.peers) {
      if (!config_detail::ValidEndpoint(peer)) reader_.Error(*node.Find("peers"), "bad peer `" + peer + "` in `tracery.peers`: expected host:port");
      if (!seen.insert(peer).second) reader_.Error(*node.Find("peers"), "peer `" + peer + "` is listed twice in `tracery.peers`");
    }
    if (!config_.peers.empty() && !seen.count(config_.self))
      reader_.Error(node, "`tracery.self` must be this gateway's entry in `tracery.peers`" +
                              (config_.self.empty() ? std::string() : " (`" + config_.self + "` is not there)"));
    if (config_.peers.empty() && !config_.self.empty()) reader_.Error(node, "`tracery.self` is set but `tracery.peers` is empty");
  }

  // Checks every name the pipeline lists, and collects its components in its order.
  void ResolvePipeline() {
    if (!pipeline_) {
      reader_.AddRaw(config_.files.front() + ": `service.pipelines.traces` is required (receivers, processors, exporters)");
      return;
    }
    const std::string path = "service.pipelines." + config_.pipeline_id;
    auto each = [&](const MergedNode* list, const char* what, auto&& use) {
      if (!list || list->node.size() == 0) {
        if (std::string(what) != "processors")
          reader_.Error(list ? *list : *pipeline_, "`" + path + "." + what + "` must list at least one " + what);
        return;
      }
      for (const auto& item : list->node) {
        std::string id = item.IsScalar() ? item.Scalar() : "";
        auto problem = [&](const std::string& message) {
          reader_.AddRaw(list->file + ":" + std::to_string(item.Mark().line + 1) + ": `" + path + "." + what + "`: " + message);
        };
        use(id, problem);
      }
    };
    each(pipeline_receivers_, "receivers", [&](const std::string& id, auto&& problem) {
      auto found = receivers_.find(id);
      if (found == receivers_.end()) return problem("receiver `" + id + "` is not defined under `receivers`");
      config_.receivers.push_back(found->second);
    });
    each(pipeline_exporters_, "exporters", [&](const std::string& id, auto&& problem) {
      auto found = exporters_.find(id);
      if (found == exporters_.end()) return problem("exporter `" + id + "` is not defined under `exporters`");
      config_.exporters.push_back(found->second);
    });
    each(pipeline_processors_, "processors", [&](const std::string& id, auto&& problem) {
      std::string type = ComponentType(id);
      auto found = processor_types_.find(id);
      // memory_limiter and batch may be named without a definition (the seed's file does):
      // they run with their defaults.
      if (found == processor_types_.end() && type != "memory_limiter" && type != "batch")
        return problem("processor `" + id + "` is not defined under `processors`");
      config_.processors.push_back(id);
      if (type == "memory_limiter") config_.memory_limiter = memory_limiters_[id];
      if (type == "batch") config_.batch = batches_[id];
      if (type == "tail_sampling") {
        if (config_.tail_sampling) return problem("one tail_sampling processor per pipeline (`" + config_.tail_sampling->id + "` is already there)");
        config_.tail_sampling = tail_sampling_.at(id);
        config_.tail_sampling->in_pipeline = true;
      }
    });
    if (!config_.tail_sampling && !tail_sampling_.empty()) config_.tail_sampling = tail_sampling_.begin()->second;
  }

  Reader& reader_;
  GatewayConfig& config_;
  std::map<std::string, OtlpReceiverConfig> receivers_;
  std::map<std::string, ExporterConfig> exporters_;
  std::map<std::string, std::string> processor_types_;  // defined processors: ID -> type
  std::map<std::string, MemoryLimiterConfig> memory_limiters_;
  std::map<std::string, BatchConfig> batches_;
  std::map<std::string, TailSamplingProcessor> tail_sampling_;
  const MergedNode* pipeline_ = nullptr;
  const MergedNode* pipeline_receivers_ = nullptr;
  const MergedNode* pipeline_processors_ = nullptr;
  const MergedNode* pipeline_exporters_ = nullptr;
};

}  // namespace

Result<GatewayConfig> ParseCollectorConfig(const std::vector<ConfigText>& texts) {
  if (texts.empty()) return Status::InvalidArgument("no gateway configuration file given");
  Reader reader;
  MergedNode root;
  GatewayConfig config;
  for (const auto& text : texts) {
    config.files.push_back(text.name);
    YAML::Node document;
    try {
      document = YAML::Load(text.text);
    } catch (const YAML::Exception& e) {
      reader.AddRaw(text.name + ":" + std::to_string(e.mark.line + 1) + ": not valid YAML: " + e.msg);
      continue;
    }
    if (!document || document.IsNull()) continue;
    if (!document.IsMap()) {
      reader.AddRaw(text.name + ":" + std::to_string(document.Mark().line + 1) + ": the top level must be a mapping");
      continue;
    }
    collector_detail::Merge(root, document, YAML::Node(), text.name);
  }
  if (!reader.ok()) return reader.Report();
  GatewayReader(reader, config).Read(root);
  if (!reader.ok()) return reader.Report();
  return config;
}

Result<GatewayConfig> LoadCollectorConfig(const std::vector<std::string>& files) {
  std::vector<ConfigText> texts;
  for (const auto& file : files) {
    std::ifstream in(file, std::ios::binary);
    std::ostringstream contents;
    contents << in.rdbuf();
    if (!in) return Status::InvalidArgument("cannot read the gateway configuration file " + file);
    texts.push_back({file, contents.str()});
  }
  return ParseCollectorConfig(texts);
}

bool LooksLikeCollectorConfig(const YAML::Node& root) {
  if (!root.IsMap()) return false;
  const YAML::Node& view = root;
  return view["receivers"] || view["exporters"] || view["service"];
}

uint64_t MemoryLimiterConfig::LimitBytes(uint64_t total_memory_bytes) const {
  if (limit_mib > 0) return limit_mib << 20;
  if (limit_percentage > 0) return total_memory_bytes / 100 * limit_percentage;
  return 0;
}

uint64_t MemoryLimiterConfig::SoftLimitBytes(uint64_t total_memory_bytes) const {
  uint64_t limit = LimitBytes(total_memory_bytes);
  uint64_t spike = limit / 5;  // the Collector's default: 20 % of the limit
  if (limit_mib > 0 && spike_limit_mib > 0) spike = spike_limit_mib << 20;
  if (limit_percentage > 0 && spike_limit_percentage > 0) spike = total_memory_bytes / 100 * spike_limit_percentage;
  return limit > spike ? limit - spike : 0;
}

uint64_t SystemMemoryBytes() {
  auto read_number = [](const char* path) -> uint64_t {
    std::ifstream in(path);
    std::string text;
    if (!(in >> text)) return 0;
    uint64_t value = 0;
    return config_detail::ParseUnsigned(text, value) ? value : 0;  // "max": no limit
  };
  uint64_t machine = 0;
  std::ifstream meminfo("/proc/meminfo");
  std::string name;
  uint64_t kib = 0;
  while (meminfo >> name >> kib) {
    if (name == "MemTotal:") {
      machine = kib << 10;
      break;
    }
    meminfo.ignore(256, '\n');
  }
  uint64_t cgroup = read_number("/sys/fs/cgroup/memory.max");
  if (cgroup == 0) cgroup = read_number("/sys/fs/cgroup/memory/memory.limit_in_bytes");
  if (cgroup > 0 && (machine == 0 || cgroup < machine)) return cgroup;
  return machine;
}

}  // namespace tracery::server
