#include "files.h"

#include "real.h"

#include <fcntl.h>
#include <sys/stat.h>

namespace hb {

void RangeLock::lock(off_t begin, off_t end) {
  std::unique_lock<std::mutex> g(mu_);
  auto overlaps = [&] {
    for (auto &r : held_)
      if (r.first < end && begin < r.second) return true;
    return false;
  };
  cv_.wait(g, [&] { return !overlaps(); });
  held_.emplace_back(begin, end);
}

void RangeLock::unlock(off_t begin, off_t end) {
  {
    std::lock_guard<std::mutex> g(mu_);
    for (size_t i = 0; i < held_.size(); i++)
      if (held_[i].first == begin && held_[i].second == end) {
        held_[i] = held_.back();
        held_.pop_back();
        break;
      }
  }
  cv_.notify_all();
}

FileTable &files() {
  static FileTable *table = new FileTable();  // never destroyed: wrappers may run during exit
  return *table;
}

std::shared_ptr<FileObj> FileTable::file(Identity id) {
  std::unique_lock<std::shared_mutex> g(mu_);
  auto it = by_id_.find(id);
  if (it != by_id_.end())
    if (auto f = it->second.lock()) return f;
  auto f = std::make_shared<FileObj>(id);
  by_id_[id] = f;
  if (by_id_.size() > sweep_at_) {
    for (auto i = by_id_.begin(); i != by_id_.end();) i = i->second.expired() ? by_id_.erase(i) : std::next(i);
    sweep_at_ = std::max<size_t>(1024, by_id_.size() * 2);
  }
  return f;
}

void FileTable::forget(Identity id) {
  std::unique_lock<std::shared_mutex> g(mu_);
  by_id_.erase(id);
}

void FileTable::put_locked(int fd, std::shared_ptr<OpenFile> of) {
  if (fd < 0) return;
  if (static_cast<size_t>(fd) >= by_fd_.size()) {
    if (!of) return;
    by_fd_.resize(static_cast<size_t>(fd) * 2 + 16);
  }
  by_fd_[static_cast<size_t>(fd)] = std::move(of);
}

void FileTable::track_open(int fd, int flags) {
  struct stat st;
  if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
    untrack(fd);  // the number may have belonged to a file closed behind our back
    return;
  }
  if (flags < 0) flags = real.fcntl(fd, F_GETFL);
  auto of = std::make_shared<OpenFile>(file(Identity{st.st_dev, st.st_ino}), flags >= 0 && (flags & O_APPEND));
  std::unique_lock<std::shared_mutex> g(mu_);
  put_locked(fd, std::move(of));
}

void FileTable::track_dup(int from, int to) {
  std::unique_lock<std::shared_mutex> g(mu_);
  std::shared_ptr<OpenFile> of;
  if (from >= 0 && static_cast<size_t>(from) < by_fd_.size()) of = by_fd_[static_cast<size_t>(from)];
  put_locked(to, std::move(of));
}

void FileTable::untrack(int fd) {
  std::unique_lock<std::shared_mutex> g(mu_);
  put_locked(fd, nullptr);
}

void FileTable::untrack_range(unsigned first, unsigned last) {
  std::unique_lock<std::shared_mutex> g(mu_);
  for (size_t fd = first; fd < by_fd_.size() && fd <= last; fd++) by_fd_[fd].reset();
}

std::shared_ptr<OpenFile> FileTable::lookup(int fd) {
  std::shared_lock<std::shared_mutex> g(mu_);
  if (fd < 0 || static_cast<size_t>(fd) >= by_fd_.size()) return nullptr;
  return by_fd_[static_cast<size_t>(fd)];
}

bool FileTable::is_tracked(int fd) { return lookup(fd) != nullptr; }

void FileTable::set_append(int fd, bool append) {
  if (auto of = lookup(fd)) of->append = append;
}

}  // namespace hb

namespace hb {
bool last_link(int dirfd, const char *path, Identity *id) {
  struct stat st;
  if (fstatat(dirfd, path, &st, AT_SYMLINK_NOFOLLOW) != 0 || !S_ISREG(st.st_mode) || st.st_nlink != 1) return false;
  *id = Identity{st.st_dev, st.st_ino};
  return true;
}
}  // namespace hb
