// The object store seam: blocks are named objects ("<tenant>/<block id>/data") written whole
// or streamed, read whole or by range. The local filesystem implements it today; S3-compatible
// storage will implement the same interface (a streamed object maps onto a multipart upload),
// so the block layout is the same on both.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "common/env.h"
#include "common/status.h"

namespace tracery::backend {

// An object being written. Nothing of it is visible until Commit succeeds; an object that is
// not committed (destroyed, or Commit failed) leaves nothing behind.
class ObjectWriter {
 public:
  virtual ~ObjectWriter() = default;
  virtual Status Append(std::string_view data) = 0;
  // Makes the object visible and durable, replacing any object of the same name atomically.
  virtual Status Commit() = 0;
  virtual uint64_t BytesWritten() const = 0;
};

class ObjectStore {
 public:
  virtual ~ObjectStore() = default;
  virtual Result<std::unique_ptr<ObjectWriter>> NewWriter(const std::string& name) = 0;
  // Writes an object atomically: readers see the old object, none, or all of the new one.
  Status Write(const std::string& name, std::string_view data);
  virtual Result<std::string> Read(const std::string& name) = 0;
  virtual Result<std::string> ReadRange(const std::string& name, uint64_t offset, uint64_t length) = 0;
  // Names directly below `prefix` (a "folder"), without the prefix, sorted. Objects being
  // written are never listed.
  virtual Result<std::vector<std::string>> List(const std::string& prefix) = 0;
  // Deletes an object, or a "folder" with everything below it.
  virtual Status Delete(const std::string& name) = 0;
  // Removes what writes interrupted by a crash left behind.
  virtual Status RemoveAbandonedWrites() = 0;
};

// True when `name` is a relative path of plain components: no "", ".", ".." or leading "/",
// and no '~' (reserved for objects being written).
bool IsSafeObjectName(std::string_view name);

// Objects as files below `root`, through `env` (DefaultEnv() for the process).
std::unique_ptr<ObjectStore> NewLocalObjectStore(const std::string& root, Env& env);

}  // namespace tracery::backend
