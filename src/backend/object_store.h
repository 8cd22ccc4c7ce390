// The object store seam: blocks are named objects ("<tenant>/<block id>/data") read whole or
// by range. The local filesystem implements it today; S3-compatible storage will implement
// the same interface, so the block layout is the same on both.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "common/status.h"

namespace tracery::backend {

class ObjectStore {
 public:
  virtual ~ObjectStore() = default;
  // Writes an object atomically: readers see the old object, none, or all of the new one.
  virtual Status Write(const std::string& name, std::string_view data) = 0;
  virtual Result<std::string> Read(const std::string& name) = 0;
  virtual Result<std::string> ReadRange(const std::string& name, uint64_t offset, uint64_t length) = 0;
  // Names directly below `prefix` (a "folder"), without the prefix, sorted.
  virtual Result<std::vector<std::string>> List(const std::string& prefix) = 0;
  virtual Status Delete(const std::string& name) = 0;
};

// True when `name` is a relative path of plain components: no "", ".", ".." or leading "/".
bool IsSafeObjectName(std::string_view name);

std::unique_ptr<ObjectStore> NewLocalObjectStore(const std::string& root);

}  // namespace tracery::backend
