// FaultInjectionEnv: the in-memory file system, its durability model and the fault rules.
#include "common/fault_env.h"

#include <algorithm>
#include <cctype>
#include <cstring>
#include <map>
#include <mutex>
#include <optional>
#include <random>
#include <unordered_set>

namespace tracery {

// Shared by the env and every file it opened; every member is guarded by `mutex`.
class FaultInjectionState {
 public:
  struct Inode {
    explicit Inode(bool directory) : is_directory(directory) {}
    const bool is_directory;

    // Files. `data` is what reads see (the page cache). Its durable data (as of the last Sync)
    // is the first `durable_size` bytes of `data`, except that the bytes from `rewritten_from`
    // on were rewritten since (appends over reserved zeros) and their durable bytes are kept
    // in `rewritten`: appending and syncing never copy the file. A Truncate below the durable
    // size first moves the durable bytes into `durable_copy`, which then holds them until the
    // next Sync.
    std::string data;
    uint64_t durable_size = 0;
    uint64_t rewritten_from = 0;  // meaningful while `rewritten` is set
    std::optional<std::string> rewritten;  // durable bytes [rewritten_from, durable_size)
    std::optional<std::string> durable_copy;
    // Current directory entries naming this file: its bytes count as used space while > 0.
    uint64_t links = 0;

    // Directories: the current entries, and those as of the last SyncDir. Ordered, so that a
    // seeded torn crash visits files in the same order every time.
    std::map<std::string, std::shared_ptr<Inode>> entries;
    std::map<std::string, std::shared_ptr<Inode>> durable_entries;
  };
  using InodePtr = std::shared_ptr<Inode>;

  // Where a path leads: its parent directory (null for the root), its last component, and the
  // inode that entry names (null when there is none).
  struct Location {
    InodePtr parent;
    std::string name;
    InodePtr inode;
  };

  struct Injection {
    int error = 0;
    bool partial = false;
  };

  struct ActiveRule {
    FaultRule rule;
    uint64_t matched = 0;
    uint64_t failed = 0;
  };

  mutable std::mutex mutex;
  InodePtr root = std::make_shared<Inode>(true);
  std::vector<ActiveRule> rules;
  uint64_t space_limit = 0;  // 0: none
  uint64_t used_bytes = 0;   // current data of every linked file
  std::optional<uint64_t> operations_before_death;
  bool dead = false;
  uint64_t operation_count = 0;
  uint64_t failed_operations = 0;
  uint64_t epoch = 0;  // bumped by Crash: files opened in an earlier epoch are dead
  std::optional<int64_t> manual_unix_nanos;
  std::optional<int64_t> manual_monotonic_nanos;

  // "No such file or directory" -> "open /a/b: no such file or directory"; ENOENT is NotFound.
  static Status Error(std::string_view what, std::string_view path, int error, std::string_view note = "") {
    std::string text = std::strerror(error);
    if (!text.empty()) text[0] = char(std::tolower(static_cast<unsigned char>(text[0])));
    std::string message = std::string(what) + " " + std::string(path) + ": " + text + std::string(note);
    if (error == ENOENT) return Status::NotFound(std::move(message));
    return Status::IoError(std::move(message));
  }

  static Status Injected(std::string_view what, std::string_view path, int error) {
    return Error(what, path, error, " (injected fault)");
  }

  // Counts one operation and applies the crash point: Ok when the process is alive to run it.
  Status Admit(std::string_view what, std::string_view path) {
    operation_count++;
    if (!dead && operations_before_death) {
      if (*operations_before_death == 0) dead = true;
      else --*operations_before_death;
    }
    if (!dead) return Status::Ok();
    failed_operations++;
    return Status::IoError(std::string(what) + " " + std::string(path) + ": process has died");
  }

  // The first rule that fails this operation, if any. Every matching rule counts it up to that one.
  std::optional<Injection> MatchFault(FaultOp op, std::string_view path, std::string_view other_path = "") {
    for (ActiveRule& active : rules) {
      const FaultRule& rule = active.rule;
      if (rule.op != op) continue;
      if (!rule.path_contains.empty() && path.find(rule.path_contains) == std::string_view::npos &&
          other_path.find(rule.path_contains) == std::string_view::npos)
        continue;
      if (++active.matched <= rule.skip || active.failed >= rule.times) continue;
      active.failed++;
      failed_operations++;
      return Injection{rule.error, rule.partial};
    }
    return std::nullopt;
  }

  // "/a//b/./c/" and "a/b/c" -> {a, b, c}; ".." steps up, never above the root.
  static std::vector<std::string> SplitPath(std::string_view path) {
    std::vector<std::string> parts;
    size_t start = 0;
    while (start <= path.size()) {
      size_t slash = std::min(path.find('/', start), path.size());
      std::string_view part = path.substr(start, slash - start);
      if (part == "..") {
        if (!parts.empty()) parts.pop_back();
      } else if (!part.empty() && part != ".") {
        parts.emplace_back(part);
      }
      start = slash + 1;
    }
    return parts;
  }

  // Walks to the parent of `path`: NotFound when a directory on the way is missing, ENOTDIR
  // when one is a file.
  Result<Location> Resolve(std::string_view what, const std::string& path) const {
    std::vector<std::string> parts = SplitPath(path);
    if (parts.empty()) return Location{nullptr, "", root};
    InodePtr directory = root;
    for (size_t i = 0; i + 1 < parts.size(); ++i) {
      auto it = directory->entries.find(parts[i]);
      if (it == directory->entries.end()) return Error(what, path, ENOENT);
      if (!it->second->is_directory) return Error(what, path, ENOTDIR);
      directory = it->second;
    }
    auto it = directory->entries.find(parts.back());
    return Location{directory, parts.back(), it == directory->entries.end() ? nullptr : it->second};
  }

  // Like Resolve, and NotFound when nothing is at `path`; with `directory`, ENOTDIR for a file.
  Result<Location> ResolveExisting(std::string_view what, const std::string& path, bool directory = false) const {
    Result<Location> at = Resolve(what, path);
    if (!at.ok()) return at;
    if (!at->inode) return Error(what, path, ENOENT);
    if (directory && !at->inode->is_directory) return Error(what, path, ENOTDIR);
    return at;
  }

  // Room left under the space limit for a write to `file`. Unlinked files (removed while
  // open) hold no space in this model.
  uint64_t Room(const Inode& file) const {
    if (space_limit == 0 || file.links == 0) return UINT64_MAX;
    return space_limit > used_bytes ? space_limit - used_bytes : 0;
  }

  void Link(Inode& inode) {
    if (!inode.is_directory && inode.links++ == 0) used_bytes += inode.data.size();
  }
  void Unlink(Inode& inode) {
    if (!inode.is_directory && --inode.links == 0) used_bytes -= inode.data.size();
  }

  // Writes the parts at `position` (at most `limit` bytes; what passes the end extends the
  // file) and returns the bytes written.
  uint64_t WriteBytes(Inode& file, uint64_t position, const std::string_view* parts, size_t count, uint64_t limit) {
    uint64_t before = file.data.size();
    uint64_t total = 0;
    for (size_t i = 0; i < count; ++i) total += parts[i].size();
    total = std::min(total, limit);
    if (position < file.durable_size && !file.durable_copy && total > 0) KeepRewritten(file, position);
    if (file.data.size() < position + total) file.data.resize(size_t(position + total), '\0');
    uint64_t at = position;
    for (size_t i = 0; i < count && at < position + total; ++i) {
      size_t take = size_t(std::min<uint64_t>(parts[i].size(), position + total - at));
      std::memcpy(file.data.data() + at, parts[i].data(), take);
      at += take;
    }
    if (file.links > 0) used_bytes += file.data.size() - before;
    return total;
  }

  // Before bytes from `position` on are rewritten: keeps their durable bytes (those not kept yet).
  static void KeepRewritten(Inode& file, uint64_t position) {
    if (file.rewritten && file.rewritten_from <= position) return;
    uint64_t end = file.rewritten ? file.rewritten_from : file.durable_size;
    std::string kept = file.data.substr(size_t(position), size_t(end - position));
    if (file.rewritten) kept += *file.rewritten;
    file.rewritten = std::move(kept);
    file.rewritten_from = position;
  }

  // The file's durable bytes (see Inode) and where the bytes written since the last Sync begin.
  static std::string DurableBytes(const Inode& file, uint64_t& unsynced_from) {
    if (file.durable_copy) {
      unsynced_from = file.durable_copy->size();
      return *file.durable_copy;
    }
    std::string durable = file.data.substr(0, size_t(file.durable_size));
    unsynced_from = file.durable_size;
    if (file.rewritten) {
      durable.replace(size_t(file.rewritten_from), std::string::npos, *file.rewritten);
      unsynced_from = file.rewritten_from;
    }
    return durable;
  }

  void Resize(Inode& file, uint64_t size) {
    if (file.links > 0) used_bytes = used_bytes - file.data.size() + size;
    if (size < file.durable_size && !file.durable_copy) {
      uint64_t unused;
      file.durable_copy = DurableBytes(file, unused);
      file.rewritten.reset();
    }
    file.data.resize(size_t(size), '\0');
  }

  static void MakeDurable(Inode& file) {
    file.durable_copy.reset();
    file.rewritten.reset();
    file.durable_size = file.data.size();
  }

  // Reverts a file to its durable data; with `torn`, a prefix of the data written since the
  // last Sync stays.
  static void RevertFile(Inode& file, bool torn, std::mt19937_64& random) {
    uint64_t unsynced_from = 0;
    std::string durable = DurableBytes(file, unsynced_from);
    // After a Truncate, appends extend the durable data again when they rewrote nothing of it.
    bool extends = !file.durable_copy || (file.data.size() > durable.size() &&
                                          file.data.compare(0, durable.size(), durable) == 0);
    uint64_t kept = 0;
    if (torn && extends && file.data.size() > unsynced_from) {
      kept = std::uniform_int_distribution<uint64_t>(0, file.data.size() - unsynced_from)(random);
    }
    if (durable.size() < unsynced_from + kept) durable.resize(size_t(unsynced_from + kept), '\0');
    std::memcpy(durable.data() + unsynced_from, file.data.data() + unsynced_from, size_t(kept));
    if (kept > 0 && random() % 2 == 0) {
      uint64_t zeros = std::uniform_int_distribution<uint64_t>(1, std::min<uint64_t>(kept, 512))(random);
      std::fill_n(durable.begin() + ptrdiff_t(unsynced_from + kept - zeros), zeros, '\0');
    }
    file.data = std::move(durable);
    MakeDurable(file);  // what the restarted machine finds is on disk
  }

  // Resets the tree under `directory` to its durable entries, reverting files and recounting
  // links and used space. `seen` guards against reaching an inode twice (an unsynced rename
  // can leave a durable entry for it in two directories).
  void Revert(Inode& directory, bool torn, std::mt19937_64& random, std::unordered_set<Inode*>& seen) {
    directory.entries = directory.durable_entries;
    for (auto& [name, child] : directory.entries) {
      bool first = seen.insert(child.get()).second;
      if (child->is_directory) {
        if (first) Revert(*child, torn, random, seen);
        continue;
      }
      if (first) {
        RevertFile(*child, torn, random);
        child->links = 0;
      }
      Link(*child);
    }
  }
};

namespace {

using Inode = FaultInjectionState::Inode;
using InodePtr = FaultInjectionState::InodePtr;

// Checks shared by every operation on an open file, after the operation was admitted.
Status CheckHandle(const FaultInjectionState& state, uint64_t epoch, bool closed, std::string_view what,
                   const std::string& path) {
  if (epoch != state.epoch) return Status::IoError(std::string(what) + " " + path + ": file was opened before a crash");
  if (closed) return FaultInjectionState::Error(what, path, EBADF);
  return Status::Ok();
}

class FaultWritableFile final : public WritableFile {
 public:
  FaultWritableFile(std::shared_ptr<FaultInjectionState> state, std::string path, InodePtr file)
      : state_(std::move(state)), path_(std::move(path)), file_(std::move(file)), epoch_(state_->epoch) {}

  Status Append(const std::string_view* parts, size_t count) override {
    std::lock_guard lock(state_->mutex);
    TRACERY_RETURN_IF_ERROR(Check("write"));
    uint64_t total = 0;
    for (size_t i = 0; i < count; ++i) total += parts[i].size();
    auto injection = state_->MatchFault(FaultOp::kWrite, path_);
    uint64_t allowed = injection ? (injection->partial ? total / 2 : 0) : total;
    // Bytes over space the file has (reserved, or a Truncate's gap) need no room.
    uint64_t inside = std::min<uint64_t>(allowed, file_->data.size() - std::min<uint64_t>(position_, file_->data.size()));
    uint64_t room = state_->Room(*file_);
    bool disk_full = allowed - inside > room;
    position_ += state_->WriteBytes(*file_, position_, parts, count, inside + std::min(allowed - inside, room));
    if (injection) return state_->Injected("write", path_, injection->error);
    if (!disk_full) return Status::Ok();
    state_->failed_operations++;
    return FaultInjectionState::Error("write", path_, ENOSPC);
  }

  Status Reserve(uint64_t size) override {
    std::lock_guard lock(state_->mutex);
    TRACERY_RETURN_IF_ERROR(Check("reserve"));
    if (auto injection = state_->MatchFault(FaultOp::kReserve, path_)) {
      return state_->Injected("reserve space in", path_, injection->error);
    }
    if (size <= file_->data.size()) return Status::Ok();
    if (size - file_->data.size() > state_->Room(*file_)) {
      state_->failed_operations++;
      return FaultInjectionState::Error("reserve space in", path_, ENOSPC);
    }
    state_->Resize(*file_, size);
    return Status::Ok();
  }

  Status Sync() override {
    std::lock_guard lock(state_->mutex);
    TRACERY_RETURN_IF_ERROR(Check("sync"));
    if (auto injection = state_->MatchFault(FaultOp::kSync, path_)) {
      return state_->Injected("sync", path_, injection->error);
    }
    FaultInjectionState::MakeDurable(*file_);
    return Status::Ok();
  }

  Status Truncate(uint64_t size) override {
    std::lock_guard lock(state_->mutex);
    TRACERY_RETURN_IF_ERROR(Check("truncate"));
    if (auto injection = state_->MatchFault(FaultOp::kTruncate, path_)) {
      return state_->Injected("truncate", path_, injection->error);
    }
    if (size > file_->data.size() && size - file_->data.size() > state_->Room(*file_)) {
      state_->failed_operations++;
      return FaultInjectionState::Error("truncate", path_, ENOSPC);
    }
    state_->Resize(*file_, size);
    position_ = std::min(position_, size);
    return Status::Ok();
  }

  Status Close() override {
    std::lock_guard lock(state_->mutex);
    TRACERY_RETURN_IF_ERROR(state_->Admit("close", path_));
    if (closed_) return Status::Ok();
    TRACERY_RETURN_IF_ERROR(CheckHandle(*state_, epoch_, false, "close", path_));
    closed_ = true;
    if (auto injection = state_->MatchFault(FaultOp::kClose, path_)) {
      return state_->Injected("close", path_, injection->error);
    }
    return Status::Ok();
  }

 private:
  Status Check(std::string_view what) {
    TRACERY_RETURN_IF_ERROR(state_->Admit(what, path_));
    return CheckHandle(*state_, epoch_, closed_, what, path_);
  }

  std::shared_ptr<FaultInjectionState> state_;
  const std::string path_;
  const InodePtr file_;
  const uint64_t epoch_;
  uint64_t position_ = file_->data.size();  // where the next Append writes: the end when opened
  bool closed_ = false;
};

class FaultRandomAccessFile final : public RandomAccessFile {
 public:
  FaultRandomAccessFile(std::shared_ptr<FaultInjectionState> state, std::string path, InodePtr file)
      : state_(std::move(state)), path_(std::move(path)), file_(std::move(file)), epoch_(state_->epoch) {}

  Status Read(uint64_t offset, size_t length, char* out) const override {
    std::lock_guard lock(state_->mutex);
    TRACERY_RETURN_IF_ERROR(Check("read"));
    const std::string& data = file_->data;
    if (offset > data.size() || length > data.size() - offset) {
      return Status::Corruption("short read of " + path_ + ": " + std::to_string(length) + " bytes at offset " +
                                std::to_string(offset) + ", file ends after " + std::to_string(data.size()));
    }
    std::memcpy(out, data.data() + offset, length);
    return Status::Ok();
  }

  Result<uint64_t> Size() const override {
    std::lock_guard lock(state_->mutex);
    TRACERY_RETURN_IF_ERROR(Check("stat"));
    return uint64_t(file_->data.size());
  }

 private:
  Status Check(std::string_view what) const {
    TRACERY_RETURN_IF_ERROR(state_->Admit(what, path_));
    TRACERY_RETURN_IF_ERROR(CheckHandle(*state_, epoch_, false, what, path_));
    if (auto injection = state_->MatchFault(FaultOp::kRead, path_)) {
      return state_->Injected(what, path_, injection->error);
    }
    return Status::Ok();
  }

  std::shared_ptr<FaultInjectionState> state_;
  const std::string path_;
  const InodePtr file_;
  const uint64_t epoch_;
};

// Admits an Env operation and applies the fault rules for it.
Status Begin(FaultInjectionState& state, FaultOp op, std::string_view what, const std::string& path) {
  TRACERY_RETURN_IF_ERROR(state.Admit(what, path));
  if (auto injection = state.MatchFault(op, path)) return state.Injected(what, path, injection->error);
  return Status::Ok();
}

// Opens, and with `create` makes, the file at `path`; with `truncate` empties it.
Result<InodePtr> OpenFile(FaultInjectionState& state, const std::string& path, bool create, bool truncate) {
  TRACERY_RETURN_IF_ERROR(Begin(state, FaultOp::kOpen, "open", path));
  Result<FaultInjectionState::Location> at = state.Resolve("open", path);
  if (!at.ok()) return at.status();
  if (at->inode && at->inode->is_directory) return FaultInjectionState::Error("open", path, EISDIR);
  if (!at->inode) {
    if (!create) return FaultInjectionState::Error("open", path, ENOENT);
    at->inode = std::make_shared<Inode>(false);
    at->parent->entries[at->name] = at->inode;
    state.Link(*at->inode);
  }
  if (truncate) state.Resize(*at->inode, 0);
  return at->inode;
}

}  // namespace

FaultInjectionEnv::FaultInjectionEnv() : state_(std::make_shared<FaultInjectionState>()) {}
FaultInjectionEnv::~FaultInjectionEnv() = default;

Result<std::unique_ptr<WritableFile>> FaultInjectionEnv::OpenAppendable(const std::string& path) {
  std::lock_guard lock(state_->mutex);
  Result<InodePtr> file = OpenFile(*state_, path, /*create=*/true, /*truncate=*/false);
  if (!file.ok()) return file.status();
  return std::unique_ptr<WritableFile>(new FaultWritableFile(state_, path, *file));
}

Result<std::unique_ptr<WritableFile>> FaultInjectionEnv::CreateWritable(const std::string& path) {
  std::lock_guard lock(state_->mutex);
  Result<InodePtr> file = OpenFile(*state_, path, /*create=*/true, /*truncate=*/true);
  if (!file.ok()) return file.status();
  return std::unique_ptr<WritableFile>(new FaultWritableFile(state_, path, *file));
}

Result<std::unique_ptr<RandomAccessFile>> FaultInjectionEnv::OpenReadable(const std::string& path) {
  std::lock_guard lock(state_->mutex);
  Result<InodePtr> file = OpenFile(*state_, path, /*create=*/false, /*truncate=*/false);
  if (!file.ok()) return file.status();
  return std::unique_ptr<RandomAccessFile>(new FaultRandomAccessFile(state_, path, *file));
}

Status FaultInjectionEnv::Rename(const std::string& from, const std::string& to) {
  std::lock_guard lock(state_->mutex);
  const std::string both = from + " to " + to;
  TRACERY_RETURN_IF_ERROR(state_->Admit("rename", both));
  if (auto injection = state_->MatchFault(FaultOp::kRename, from, to)) {
    return state_->Injected("rename", both, injection->error);
  }
  Result<FaultInjectionState::Location> source = state_->ResolveExisting("rename", from);
  if (!source.ok()) return source.status();
  Result<FaultInjectionState::Location> target = state_->Resolve("rename", to);
  if (!target.ok()) return target.status();
  if (!source->parent || !target->parent) return FaultInjectionState::Error("rename", both, EBUSY);
  if (source->inode == target->inode) return Status::Ok();
  if (source->inode->is_directory) {
    // A directory cannot move into itself or below itself.
    std::vector<std::string> from_parts = FaultInjectionState::SplitPath(from);
    std::vector<std::string> to_parts = FaultInjectionState::SplitPath(to);
    if (to_parts.size() > from_parts.size() && std::equal(from_parts.begin(), from_parts.end(), to_parts.begin())) {
      return FaultInjectionState::Error("rename", both, EINVAL);
    }
  }
  if (const InodePtr& replaced = target->inode) {
    if (source->inode->is_directory && !replaced->is_directory) return FaultInjectionState::Error("rename", both, ENOTDIR);
    if (!source->inode->is_directory && replaced->is_directory) return FaultInjectionState::Error("rename", both, EISDIR);
    if (!replaced->entries.empty()) return FaultInjectionState::Error("rename", both, ENOTEMPTY);
    state_->Unlink(*replaced);
  }
  source->parent->entries.erase(source->name);
  target->parent->entries[target->name] = source->inode;
  return Status::Ok();
}

Status FaultInjectionEnv::RemoveFile(const std::string& path) {
  std::lock_guard lock(state_->mutex);
  TRACERY_RETURN_IF_ERROR(Begin(*state_, FaultOp::kRemove, "remove", path));
  Result<FaultInjectionState::Location> at = state_->ResolveExisting("remove", path);
  if (!at.ok()) return at.status();
  if (at->inode->is_directory) return FaultInjectionState::Error("remove", path, EISDIR);
  at->parent->entries.erase(at->name);
  state_->Unlink(*at->inode);
  return Status::Ok();
}

Status FaultInjectionEnv::CreateDir(const std::string& path) {
  std::lock_guard lock(state_->mutex);
  TRACERY_RETURN_IF_ERROR(Begin(*state_, FaultOp::kCreateDir, "create directory", path));
  Result<FaultInjectionState::Location> at = state_->Resolve("create directory", path);
  if (!at.ok()) return at.status();
  if (at->inode) {
    if (at->inode->is_directory) return Status::Ok();
    return FaultInjectionState::Error("create directory", path, EEXIST);
  }
  at->parent->entries[at->name] = std::make_shared<Inode>(true);
  return Status::Ok();
}

Status FaultInjectionEnv::RemoveDir(const std::string& path) {
  std::lock_guard lock(state_->mutex);
  TRACERY_RETURN_IF_ERROR(Begin(*state_, FaultOp::kRemoveDir, "remove directory", path));
  Result<FaultInjectionState::Location> at = state_->ResolveExisting("remove directory", path, /*directory=*/true);
  if (!at.ok()) return at.status();
  if (!at->parent) return FaultInjectionState::Error("remove directory", path, EBUSY);
  if (!at->inode->entries.empty()) return FaultInjectionState::Error("remove directory", path, ENOTEMPTY);
  at->parent->entries.erase(at->name);
  return Status::Ok();
}

Status FaultInjectionEnv::SyncDir(const std::string& path) {
  std::lock_guard lock(state_->mutex);
  TRACERY_RETURN_IF_ERROR(Begin(*state_, FaultOp::kSyncDir, "sync directory", path));
  Result<FaultInjectionState::Location> at = state_->ResolveExisting("sync directory", path, /*directory=*/true);
  if (!at.ok()) return at.status();
  at->inode->durable_entries = at->inode->entries;
  return Status::Ok();
}

Result<std::vector<DirectoryEntry>> FaultInjectionEnv::ListDir(const std::string& path) {
  std::lock_guard lock(state_->mutex);
  TRACERY_RETURN_IF_ERROR(Begin(*state_, FaultOp::kList, "list", path));
  Result<FaultInjectionState::Location> at = state_->ResolveExisting("list", path, /*directory=*/true);
  if (!at.ok()) return at.status();
  std::vector<DirectoryEntry> entries;
  entries.reserve(at->inode->entries.size());
  for (const auto& [name, inode] : at->inode->entries) entries.push_back({name, inode->is_directory});
  return entries;
}

Result<uint64_t> FaultInjectionEnv::FileSize(const std::string& path) {
  std::lock_guard lock(state_->mutex);
  TRACERY_RETURN_IF_ERROR(Begin(*state_, FaultOp::kList, "stat", path));
  Result<FaultInjectionState::Location> at = state_->ResolveExisting("stat", path);
  if (!at.ok()) return at.status();
  return at->inode->is_directory ? uint64_t(0) : uint64_t(at->inode->data.size());
}

int64_t FaultInjectionEnv::NowUnixNanos() {
  {
    std::lock_guard lock(state_->mutex);
    if (state_->manual_unix_nanos) return *state_->manual_unix_nanos;
  }
  return DefaultEnv().NowUnixNanos();
}

int64_t FaultInjectionEnv::NowMonotonicNanos() {
  {
    std::lock_guard lock(state_->mutex);
    if (state_->manual_monotonic_nanos) return *state_->manual_monotonic_nanos;
  }
  return DefaultEnv().NowMonotonicNanos();
}

void FaultInjectionEnv::AddFault(FaultRule rule) {
  std::lock_guard lock(state_->mutex);
  state_->rules.push_back({std::move(rule)});
}

void FaultInjectionEnv::ClearFaults() {
  std::lock_guard lock(state_->mutex);
  state_->rules.clear();
}

void FaultInjectionEnv::SetSpaceLimit(uint64_t bytes) {
  std::lock_guard lock(state_->mutex);
  state_->space_limit = bytes;
}

uint64_t FaultInjectionEnv::UsedBytes() const {
  std::lock_guard lock(state_->mutex);
  return state_->used_bytes;
}

void FaultInjectionEnv::CrashAfter(uint64_t operations) {
  std::lock_guard lock(state_->mutex);
  state_->operations_before_death = operations;
}

void FaultInjectionEnv::Crash(CrashOptions options) {
  std::lock_guard lock(state_->mutex);
  std::mt19937_64 random(options.seed);
  std::unordered_set<Inode*> seen{state_->root.get()};
  state_->used_bytes = 0;
  state_->Revert(*state_->root, options.torn, random, seen);
  state_->rules.clear();
  state_->operations_before_death.reset();
  state_->dead = false;
  state_->epoch++;
}

uint64_t FaultInjectionEnv::OperationCount() const {
  std::lock_guard lock(state_->mutex);
  return state_->operation_count;
}

uint64_t FaultInjectionEnv::FailedOperations() const {
  std::lock_guard lock(state_->mutex);
  return state_->failed_operations;
}

void FaultInjectionEnv::UseManualClock(int64_t unix_nanos) {
  std::lock_guard lock(state_->mutex);
  state_->manual_unix_nanos = unix_nanos;
  state_->manual_monotonic_nanos = unix_nanos;
}

void FaultInjectionEnv::AdvanceClock(std::chrono::nanoseconds step) {
  int64_t real_unix = DefaultEnv().NowUnixNanos();
  int64_t real_monotonic = DefaultEnv().NowMonotonicNanos();
  std::lock_guard lock(state_->mutex);
  if (!state_->manual_unix_nanos) {
    state_->manual_unix_nanos = real_unix;
    state_->manual_monotonic_nanos = real_monotonic;
  }
  *state_->manual_unix_nanos += step.count();
  *state_->manual_monotonic_nanos += std::max<int64_t>(step.count(), 0);
}

Result<std::string> FaultInjectionEnv::ReadWholeFile(const std::string& path) {
  Result<std::unique_ptr<RandomAccessFile>> file = OpenReadable(path);
  if (!file.ok()) return file.status();
  Result<uint64_t> size = (*file)->Size();
  if (!size.ok()) return size.status();
  std::string data(size_t(*size), '\0');
  TRACERY_RETURN_IF_ERROR((*file)->Read(0, data.size(), data.data()));
  return data;
}

Status FaultInjectionEnv::WriteWholeFile(const std::string& path, std::string_view data, bool sync) {
  Result<std::unique_ptr<WritableFile>> file = CreateWritable(path);
  if (!file.ok()) return file.status();
  TRACERY_RETURN_IF_ERROR((*file)->Append(data));
  if (sync) TRACERY_RETURN_IF_ERROR((*file)->Sync());
  TRACERY_RETURN_IF_ERROR((*file)->Close());
  if (sync) return SyncDir(ParentPath(path));
  return Status::Ok();
}

}  // namespace tracery
