// Local filesystem object store: one file per object below a root directory. Writes go to a
// temporary file that is synced and renamed into place, so a crash never leaves half an object.
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cstring>
#include <filesystem>

#include "backend/object_store.h"

namespace tracery::backend {
namespace fs = std::filesystem;

bool IsSafeObjectName(std::string_view name) {
  if (name.empty() || name.front() == '/') return false;
  size_t start = 0;
  while (start <= name.size()) {
    size_t end = name.find('/', start);
    if (end == std::string_view::npos) end = name.size();
    std::string_view part = name.substr(start, end - start);
    if (part.empty() || part == "." || part == "..") return false;
    for (char c : part)
      if (c == '\0') return false;
    start = end + 1;
  }
  return true;
}

namespace {

Status Errno(const std::string& what) { return Status::IoError(what + ": " + std::strerror(errno)); }

class LocalObjectStore final : public ObjectStore {
 public:
  explicit LocalObjectStore(std::string root) : root_(std::move(root)) {}

  Status Write(const std::string& name, std::string_view data) override {
    if (!IsSafeObjectName(name)) return Status::InvalidArgument("unsafe object name: " + name);
    fs::path path = Path(name);
    std::error_code ec;
    fs::create_directories(path.parent_path(), ec);
    if (ec) return Status::IoError("create " + path.parent_path().string() + ": " + ec.message());
    std::string temp = path.string() + ".tmp" + std::to_string(counter_.fetch_add(1));
    int fd = ::open(temp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0) return Errno("open " + temp);
    const char* p = data.data();
    size_t left = data.size();
    while (left > 0) {
      ssize_t n = ::write(fd, p, left);
      if (n < 0 && errno == EINTR) continue;
      if (n < 0) {
        Status s = Errno("write " + temp);
        ::close(fd);
        ::unlink(temp.c_str());
        return s;
      }
      p += n;
      left -= size_t(n);
    }
    if (::fdatasync(fd) != 0) {
      Status s = Errno("sync " + temp);
      ::close(fd);
      return s;
    }
    ::close(fd);
    if (::rename(temp.c_str(), path.c_str()) != 0) return Errno("rename " + temp);
    // The rename is durable only once the directory is synced: WAL segments are deleted on
    // the strength of this write.
    int dir = ::open(path.parent_path().c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dir < 0) return Errno("open " + path.parent_path().string());
    int rc = ::fsync(dir);
    ::close(dir);
    if (rc != 0) return Errno("sync " + path.parent_path().string());
    return Status::Ok();
  }

  Result<std::string> Read(const std::string& name) override {
    if (!IsSafeObjectName(name)) return Status::InvalidArgument("unsafe object name: " + name);
    int fd = ::open(Path(name).c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) return errno == ENOENT ? Status::NotFound(name) : Errno("open " + name);
    struct stat st {};
    ::fstat(fd, &st);
    Result<std::string> out = ReadAt(fd, name, 0, uint64_t(st.st_size));
    ::close(fd);
    return out;
  }

  Result<std::string> ReadRange(const std::string& name, uint64_t offset, uint64_t length) override {
    if (!IsSafeObjectName(name)) return Status::InvalidArgument("unsafe object name: " + name);
    int fd = ::open(Path(name).c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) return errno == ENOENT ? Status::NotFound(name) : Errno("open " + name);
    Result<std::string> out = ReadAt(fd, name, offset, length);
    ::close(fd);
    return out;
  }

  Result<std::vector<std::string>> List(const std::string& prefix) override {
    if (!prefix.empty() && !IsSafeObjectName(prefix)) return Status::InvalidArgument("unsafe prefix: " + prefix);
    std::vector<std::string> names;
    std::error_code ec;
    fs::path dir = prefix.empty() ? fs::path(root_) : Path(prefix);
    if (!fs::exists(dir, ec)) return names;
    for (const auto& entry : fs::directory_iterator(dir, ec)) {
      std::string name = entry.path().filename().string();
      if (name.find(".tmp") == std::string::npos) names.push_back(name);
    }
    if (ec) return Status::IoError("list " + dir.string() + ": " + ec.message());
    std::sort(names.begin(), names.end());
    return names;
  }

  Status Delete(const std::string& name) override {
    if (!IsSafeObjectName(name)) return Status::InvalidArgument("unsafe object name: " + name);
    std::error_code ec;
    fs::remove_all(Path(name), ec);
    if (ec) return Status::IoError("delete " + name + ": " + ec.message());
    return Status::Ok();
  }

 private:
  fs::path Path(const std::string& name) const { return fs::path(root_) / name; }

  static Result<std::string> ReadAt(int fd, const std::string& name, uint64_t offset, uint64_t length) {
    std::string out(length, '\0');
    size_t got = 0;
    while (got < length) {
      ssize_t n = ::pread(fd, out.data() + got, length - got, off_t(offset + got));
      if (n < 0 && errno == EINTR) continue;
      if (n < 0) return Errno("read " + name);
      if (n == 0) return Status::Corruption("short read of " + name);
      got += size_t(n);
    }
    return out;
  }

  std::string root_;
  std::atomic<uint64_t> counter_{0};
};

}  // namespace

std::unique_ptr<ObjectStore> NewLocalObjectStore(const std::string& root) {
  return std::make_unique<LocalObjectStore>(root);
}

}  // namespace tracery::backend
