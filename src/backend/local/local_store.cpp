// Local filesystem object store: one file per object below a root directory, through the Env.
// An object is written to "<name>~<n>" (a '~' never appears in an object name), synced, renamed
// into place and its directory synced: a crash leaves the old object or the new one, never
// half of one, and a committed object survives a crash.
#include <algorithm>
#include <atomic>

#include "backend/object_store.h"

namespace tracery::backend {

bool IsSafeObjectName(std::string_view name) {
  if (name.empty() || name.front() == '/') return false;
  size_t start = 0;
  while (start <= name.size()) {
    size_t end = name.find('/', start);
    if (end == std::string_view::npos) end = name.size();
    std::string_view part = name.substr(start, end - start);
    if (part.empty() || part == "." || part == "..") return false;
    for (char c : part)
      if (c == '\0' || c == '~') return false;
    start = end + 1;
  }
  return true;
}

Status ObjectStore::Write(const std::string& name, std::string_view data) {
  auto writer = NewWriter(name);
  if (!writer.ok()) return writer.status();
  TRACERY_RETURN_IF_ERROR((*writer)->Append(data));
  return (*writer)->Commit();
}

namespace {

constexpr char kWritingMark = '~';

class LocalObjectWriter final : public ObjectWriter {
 public:
  LocalObjectWriter(Env& env, std::string path, std::string temp, std::unique_ptr<WritableFile> file)
      : env_(env), path_(std::move(path)), temp_(std::move(temp)), file_(std::move(file)) {}
  ~LocalObjectWriter() override {
    if (!committed_) {
      if (file_) (void)file_->Close();
      (void)env_.RemoveFile(temp_);
    }
  }
  Status Append(std::string_view data) override {
    if (!file_) return Status::IoError("object " + path_ + " is already committed or failed");
    Status status = file_->Append(data);
    if (status.ok()) bytes_ += data.size();
    return status;
  }
  Status Commit() override {
    if (!file_) return Status::IoError("object " + path_ + " is already committed or failed");
    Status status = file_->Sync();
    Status closed = file_->Close();
    file_.reset();
    if (status.ok()) status = closed;
    if (status.ok()) status = env_.Rename(temp_, path_);
    if (!status.ok()) return status;
    committed_ = true;
    // The rename is durable only once the directory is synced: WAL data is deleted on the
    // strength of this object.
    return env_.SyncDir(ParentPath(path_));
  }
  uint64_t BytesWritten() const override { return bytes_; }

 private:
  Env& env_;
  std::string path_, temp_;
  std::unique_ptr<WritableFile> file_;
  uint64_t bytes_ = 0;
  bool committed_ = false;
};

class LocalObjectStore final : public ObjectStore {
 public:
  LocalObjectStore(std::string root, Env& env) : root_(std::move(root)), env_(env) {}

  Result<std::unique_ptr<ObjectWriter>> NewWriter(const std::string& name) override {
    if (!IsSafeObjectName(name)) return Status::InvalidArgument("unsafe object name: " + name);
    std::string path = Path(name);
    // Every directory on the way is synced into its parent as it is made.
    TRACERY_RETURN_IF_ERROR(CreateDirs(env_, ParentPath(path)));
    std::string temp = path + kWritingMark + std::to_string(counter_.fetch_add(1));
    auto file = env_.CreateWritable(temp);
    if (!file.ok()) return file.status();
    return std::unique_ptr<ObjectWriter>(new LocalObjectWriter(env_, path, temp, std::move(file).value()));
  }

  Result<std::string> Read(const std::string& name) override {
    if (!IsSafeObjectName(name)) return Status::InvalidArgument("unsafe object name: " + name);
    auto file = env_.OpenReadable(Path(name));
    if (!file.ok()) return file.status();
    auto size = (*file)->Size();
    if (!size.ok()) return size.status();
    std::string out(*size, '\0');
    TRACERY_RETURN_IF_ERROR((*file)->Read(0, out.size(), out.data()));
    return out;
  }

  Result<std::string> ReadRange(const std::string& name, uint64_t offset, uint64_t length) override {
    if (!IsSafeObjectName(name)) return Status::InvalidArgument("unsafe object name: " + name);
    auto file = env_.OpenReadable(Path(name));
    if (!file.ok()) return file.status();
    std::string out(length, '\0');
    TRACERY_RETURN_IF_ERROR((*file)->Read(offset, length, out.data()));
    return out;
  }

  Result<std::vector<std::string>> List(const std::string& prefix) override {
    if (!prefix.empty() && !IsSafeObjectName(prefix)) return Status::InvalidArgument("unsafe prefix: " + prefix);
    std::vector<std::string> names;
    auto entries = env_.ListDir(prefix.empty() ? root_ : Path(prefix));
    if (!entries.ok()) {
      if (entries.status().code() == StatusCode::kNotFound) return names;
      return entries.status();
    }
    for (auto& entry : *entries)
      if (entry.name.find(kWritingMark) == std::string::npos) names.push_back(std::move(entry.name));
    std::sort(names.begin(), names.end());
    return names;
  }

  Status Delete(const std::string& name) override {
    if (!IsSafeObjectName(name)) return Status::InvalidArgument("unsafe object name: " + name);
    Status status = RemoveTree(Path(name));
    if (status.code() == StatusCode::kNotFound) return Status::Ok();
    return status;
  }

  Status RemoveAbandonedWrites() override { return RemoveWritingMarked(root_, 0); }

 private:
  std::string Path(const std::string& name) const { return JoinPath(root_, name); }

  Status RemoveTree(const std::string& path) {
    auto entries = env_.ListDir(path);
    if (!entries.ok()) {
      // Not a directory: a plain object.
      Status removed = env_.RemoveFile(path);
      return removed;
    }
    for (const auto& entry : *entries) {
      std::string child = JoinPath(path, entry.name);
      TRACERY_RETURN_IF_ERROR(entry.is_directory ? RemoveTree(child) : env_.RemoveFile(child));
    }
    return env_.RemoveDir(path);
  }

  Status RemoveWritingMarked(const std::string& directory, int depth) {
    auto entries = env_.ListDir(directory);
    if (!entries.ok()) return entries.status().code() == StatusCode::kNotFound ? Status::Ok() : entries.status();
    for (const auto& entry : *entries) {
      std::string child = JoinPath(directory, entry.name);
      if (entry.is_directory) {
        if (depth < 4) TRACERY_RETURN_IF_ERROR(RemoveWritingMarked(child, depth + 1));
      } else if (entry.name.find(kWritingMark) != std::string::npos) {
        TRACERY_RETURN_IF_ERROR(env_.RemoveFile(child));
      }
    }
    return Status::Ok();
  }

  std::string root_;
  Env& env_;
  std::atomic<uint64_t> counter_{0};
};

}  // namespace

std::unique_ptr<ObjectStore> NewLocalObjectStore(const std::string& root, Env& env) {
  return std::make_unique<LocalObjectStore>(root, env);
}

}  // namespace tracery::backend
