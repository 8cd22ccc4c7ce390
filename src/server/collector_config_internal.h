// Private to collector_config*.cpp: the files merged into one tree that remembers, for every
// key, the file and node it came from (so errors name the right file and line), and a reader
// that walks it collecting every problem.
#pragma once

#include <functional>
#include <map>
#include <string>
#include <vector>

#include <yaml-cpp/yaml.h>

#include "common/status.h"
#include "server/collector_config.h"

namespace tracery::server::collector_detail {

// A node of the merged configuration. A mapping keeps its keys in first-seen order; any other
// node (scalar, list, null) is the last file's.
struct MergedNode {
  YAML::Node node;  // for a mapping: the last file's mapping node
  YAML::Node key;   // the key node naming this entry (for the line of unknown keys)
  std::string file;
  bool is_map = false;
  int map_files = 0;  // files that contributed a mapping here
  std::vector<std::pair<std::string, MergedNode>> children;

  const MergedNode* Find(const std::string& name) const {
    for (const auto& [child_name, child] : children)
      if (child_name == name) return &child;
    return nullptr;
  }
  bool IsNull() const { return !is_map && (!node || node.IsNull()); }
  bool IsScalar() const { return !is_map && node && node.IsScalar(); }
  bool IsSequence() const { return !is_map && node && node.IsSequence(); }
  int Line() const { return node ? node.Mark().line + 1 : 0; }
};

// Merges `node` (from `file`) into `into`, as the Collector merges its config files.
void Merge(MergedNode& into, const YAML::Node& node, const YAML::Node& key, const std::string& file);

class Reader {
 public:
  void Error(const MergedNode& at, const std::string& message) { errors_.push_back(Where(at) + message); }
  void ErrorAtKey(const MergedNode& at, const std::string& message) {
    int line = at.key && at.key.Mark().line >= 0 ? at.key.Mark().line + 1 : at.Line();
    errors_.push_back(at.file + ":" + std::to_string(line) + ": " + message);
  }
  void AddRaw(const std::string& line) { errors_.push_back(line); }
  void BadValue(const MergedNode& value, const std::string& path, const std::string& why) {
    std::string shown = value.IsScalar() ? "`" + value.node.Scalar() + "` " : "";
    Error(value, "bad value " + shown + "for `" + path + "`: " + why);
  }
  bool ok() const { return errors_.empty(); }
  Status Report() const;

  using Handler = std::function<void(const MergedNode& value, const std::string& path)>;
  // Walks a mapping: every key must have a handler (else "unknown key", at the key's line).
  // Handlers also get keys with no value (a receiver's `grpc:` turns the protocol on); the
  // value handlers below keep the default for them.
  void Walk(const MergedNode& node, const std::string& path, const std::map<std::string, Handler>& handlers);

  Handler Bool(bool& out);
  Handler Unsigned(uint64_t& out);
  Handler Double(double& out);
  Handler String(std::string& out);
  Handler Strings(std::vector<std::string>& out);
  Handler Duration(std::chrono::nanoseconds& out, bool allow_zero = true);
  Handler Ignored();  // accepted, no effect (docs/gateway.md lists them)

 private:
  static std::string Where(const MergedNode& at) { return at.file + ":" + std::to_string(at.Line()) + ": "; }
  std::vector<std::string> errors_;
};

// `type` of a component ID "type" or "type/name" (empty when the ID is malformed).
std::string ComponentType(const std::string& id);

// Components (collector_config_components.cpp). Each reads one entry of its section.
void ReadReceiver(Reader& reader, const std::string& id, const MergedNode& node, OtlpReceiverConfig& out);
void ReadExporter(Reader& reader, const std::string& id, const std::string& type, const MergedNode& node,
                  exporter::ExporterOptions& out);
// An exporter block without `endpoint` (tracery.peer_exporter).
void ReadPeerExporter(Reader& reader, const MergedNode& node, exporter::ExporterOptions& out);
void ReadMemoryLimiter(Reader& reader, const std::string& path, const MergedNode& node, MemoryLimiterConfig& out);
void ReadBatch(Reader& reader, const std::string& path, const MergedNode& node, BatchConfig& out);

}  // namespace tracery::server::collector_detail
