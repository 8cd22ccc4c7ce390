// DefaultEnv: POSIX files and the system clocks.
#include "common/env.h"

#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <chrono>
#include <climits>
#include <cstring>

namespace tracery {
namespace {

Status Errno(const std::string& what, const std::string& path, int error) {
  if (error == ENOENT) return Status::NotFound(what + " " + path + ": " + std::strerror(error));
  return Status::IoError(what + " " + path + ": " + std::strerror(error));
}

class PosixWritableFile final : public WritableFile {
 public:
  PosixWritableFile(std::string path, int fd, uint64_t position)
      : path_(std::move(path)), fd_(fd), position_(position), reserved_(position) {}
  ~PosixWritableFile() override {
    if (fd_ >= 0) ::close(fd_);
  }

  Status Append(const std::string_view* parts, size_t count) override {
    // One gather write per IOV_MAX parts; short writes continue where the kernel stopped.
    iovec vectors[IOV_MAX];
    size_t next = 0, skip = 0;  // first part not fully written, and bytes of it already written
    while (next < count) {
      int used = 0;
      for (size_t i = next; i < count && used < IOV_MAX; ++i) {
        size_t from = i == next ? skip : 0;
        if (parts[i].size() == from) continue;
        vectors[used].iov_base = const_cast<char*>(parts[i].data() + from);
        vectors[used].iov_len = parts[i].size() - from;
        used++;
      }
      if (used == 0) break;
      ssize_t n = ::pwritev(fd_, vectors, used, off_t(position_));
      if (n < 0) {
        if (errno == EINTR) continue;
        return Errno("write", path_, errno);
      }
      size_t written = size_t(n);
      position_ += written;
      while (next < count && written >= parts[next].size() - skip) {
        written -= parts[next].size() - skip;
        skip = 0;
        next++;
      }
      skip += written;
    }
    return Status::Ok();
  }

  Status Sync() override {
    if (::fdatasync(fd_) != 0) return Errno("sync", path_, errno);
    return Status::Ok();
  }

  Status Reserve(uint64_t size) override {
    // Zeros written, not only allocated: space that fallocate leaves unwritten is converted
    // by the first write into it, and the next sync must write that change (the inode) too.
    static const std::array<char, 1 << 16> kZeros{};
    iovec vectors[16];
    for (iovec& vector : vectors) vector = {const_cast<char*>(kZeros.data()), kZeros.size()};
    uint64_t from = std::max(position_, reserved_);
    while (from < size) {
      uint64_t length = std::min<uint64_t>(size - from, sizeof vectors / sizeof vectors[0] * kZeros.size());
      int count = int((length + kZeros.size() - 1) / kZeros.size());
      vectors[count - 1].iov_len = size_t(length - uint64_t(count - 1) * kZeros.size());
      ssize_t n = ::pwritev(fd_, vectors, count, off_t(from));
      vectors[count - 1].iov_len = kZeros.size();
      if (n < 0) {
        if (errno == EINTR) continue;
        return Errno("reserve space in", path_, errno);
      }
      from += uint64_t(n);
      reserved_ = from;
    }
    return Status::Ok();
  }

  Status Truncate(uint64_t size) override {
    if (::ftruncate(fd_, off_t(size)) != 0) return Errno("truncate", path_, errno);
    position_ = std::min(position_, size);
    reserved_ = std::min(reserved_, size);
    return Status::Ok();
  }

  Status Close() override {
    if (fd_ < 0) return Status::Ok();
    int rc = ::close(fd_);
    fd_ = -1;
    if (rc != 0) return Errno("close", path_, errno);
    return Status::Ok();
  }

 private:
  std::string path_;
  int fd_;
  uint64_t position_;  // where the next Append writes (no O_APPEND: reserved space lies past it)
  uint64_t reserved_;  // the file's zeros reach this far (Reserve)
};

class PosixRandomAccessFile final : public RandomAccessFile {
 public:
  PosixRandomAccessFile(std::string path, int fd) : path_(std::move(path)), fd_(fd) {}
  ~PosixRandomAccessFile() override { ::close(fd_); }

  Status Read(uint64_t offset, size_t length, char* out) const override {
    size_t got = 0;
    while (got < length) {
      ssize_t n = ::pread(fd_, out + got, length - got, off_t(offset + got));
      if (n < 0) {
        if (errno == EINTR) continue;
        return Errno("read", path_, errno);
      }
      if (n == 0)
        return Status::Corruption("short read of " + path_ + ": " + std::to_string(length) + " bytes at offset " +
                                  std::to_string(offset) + ", file ends after " + std::to_string(offset + got));
      got += size_t(n);
    }
    return Status::Ok();
  }

  Result<uint64_t> Size() const override {
    struct stat st {};
    if (::fstat(fd_, &st) != 0) return Errno("stat", path_, errno);
    return uint64_t(st.st_size);
  }

 private:
  std::string path_;
  int fd_;
};

class PosixEnv final : public Env {
 public:
  Result<std::unique_ptr<WritableFile>> OpenAppendable(const std::string& path) override {
    return OpenForWrite(path, O_WRONLY | O_CREAT | O_CLOEXEC);
  }
  Result<std::unique_ptr<WritableFile>> CreateWritable(const std::string& path) override {
    return OpenForWrite(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC);
  }
  Result<std::unique_ptr<RandomAccessFile>> OpenReadable(const std::string& path) override {
    int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) return Errno("open", path, errno);
    return std::unique_ptr<RandomAccessFile>(new PosixRandomAccessFile(path, fd));
  }
  Status Rename(const std::string& from, const std::string& to) override {
    if (::rename(from.c_str(), to.c_str()) != 0) return Errno("rename to " + to + ":", from, errno);
    return Status::Ok();
  }
  Status RemoveFile(const std::string& path) override {
    if (::unlink(path.c_str()) != 0) return Errno("remove", path, errno);
    return Status::Ok();
  }
  Status CreateDir(const std::string& path) override {
    if (::mkdir(path.c_str(), 0755) != 0 && errno != EEXIST) return Errno("create directory", path, errno);
    return Status::Ok();
  }
  Status RemoveDir(const std::string& path) override {
    if (::rmdir(path.c_str()) != 0) return Errno("remove directory", path, errno);
    return Status::Ok();
  }
  Status SyncDir(const std::string& path) override {
    int fd = ::open(path.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0) return Errno("open directory", path, errno);
    int rc = ::fsync(fd);
    int error = errno;
    ::close(fd);
    if (rc != 0) return Errno("sync directory", path, error);
    return Status::Ok();
  }
  Result<std::vector<DirectoryEntry>> ListDir(const std::string& path) override {
    DIR* dir = ::opendir(path.c_str());
    if (!dir) return Errno("list", path, errno);
    std::vector<DirectoryEntry> entries;
    errno = 0;
    while (dirent* entry = ::readdir(dir)) {
      std::string name = entry->d_name;
      if (name == "." || name == "..") continue;
      bool is_directory = entry->d_type == DT_DIR;
      if (entry->d_type == DT_UNKNOWN) {
        struct stat st {};
        is_directory = ::stat(JoinPath(path, name).c_str(), &st) == 0 && S_ISDIR(st.st_mode);
      }
      entries.push_back({std::move(name), is_directory});
    }
    int error = errno;
    ::closedir(dir);
    if (error != 0) return Errno("list", path, error);
    return entries;
  }
  Result<uint64_t> FileSize(const std::string& path) override {
    struct stat st {};
    if (::stat(path.c_str(), &st) != 0) return Errno("stat", path, errno);
    return S_ISDIR(st.st_mode) ? 0 : uint64_t(st.st_size);
  }
  int64_t NowUnixNanos() override {
    return std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::system_clock::now().time_since_epoch()).count();
  }
  int64_t NowMonotonicNanos() override {
    return std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::steady_clock::now().time_since_epoch()).count();
  }

 private:
  // Appends start at the file's end as found (empty with O_TRUNC).
  static Result<std::unique_ptr<WritableFile>> OpenForWrite(const std::string& path, int flags) {
    int fd = ::open(path.c_str(), flags, 0644);
    if (fd < 0) return Errno("open", path, errno);
    struct stat st {};
    if (!(flags & O_TRUNC) && ::fstat(fd, &st) != 0) {
      Status status = Errno("stat", path, errno);
      ::close(fd);
      return status;
    }
    return std::unique_ptr<WritableFile>(new PosixWritableFile(path, fd, uint64_t(st.st_size)));
  }
};

}  // namespace

Env& DefaultEnv() {
  static PosixEnv env;
  return env;
}

std::string JoinPath(std::string_view directory, std::string_view name) {
  if (directory.empty()) return std::string(name);
  std::string out(directory);
  if (out.back() != '/') out += '/';
  out += name;
  return out;
}

std::string ParentPath(std::string_view path) {
  while (path.size() > 1 && path.back() == '/') path.remove_suffix(1);
  size_t slash = path.rfind('/');
  if (slash == std::string_view::npos) return ".";
  if (slash == 0) return "/";
  return std::string(path.substr(0, slash));
}

Status CreateDirs(Env& env, const std::string& path) {
  // Find the deepest existing ancestor, then create the rest top-down. A new directory's entry
  // lives in its parent, so each parent is synced after its child is made; the last parent is
  // synced even when nothing was created, in case an earlier attempt made the directory but
  // failed before its sync.
  std::vector<std::string> missing;
  std::string at = path;
  while (!at.empty() && at != "." && at != "/" && env.FileSize(at).status().code() == StatusCode::kNotFound) {
    missing.push_back(at);
    at = ParentPath(at);
  }
  for (auto it = missing.rbegin(); it != missing.rend(); ++it) {
    TRACERY_RETURN_IF_ERROR(env.CreateDir(*it));
    TRACERY_RETURN_IF_ERROR(env.SyncDir(ParentPath(*it)));
  }
  if (missing.empty() && !path.empty() && path != "." && path != "/") return env.SyncDir(ParentPath(path));
  return Status::Ok();
}

}  // namespace tracery
