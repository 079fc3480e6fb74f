// The file table: fd → open file → file (identity (st_dev, st_ino)), kept from process start,
// and the per-file byte-range lock that makes copy and capture commute.
#pragma once
#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <memory>
#include <mutex>
#include <shared_mutex>
#include <sys/types.h>
#include <unordered_map>
#include <vector>

namespace hb {

constexpr off_t kToEnd = INT64_MAX;

// Byte-range lock: holders of overlapping ranges exclude each other; disjoint ones don't.
class RangeLock {
 public:
  void lock(off_t begin, off_t end);
  void unlock(off_t begin, off_t end);

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  std::vector<std::pair<off_t, off_t>> held_;
};

class RangeGuard {
 public:
  RangeGuard(RangeLock &l, off_t begin, off_t end) : l_(l), b_(begin), e_(end) { l_.lock(b_, e_); }
  ~RangeGuard() { l_.unlock(b_, e_); }
  RangeGuard(const RangeGuard &) = delete;
  RangeGuard &operator=(const RangeGuard &) = delete;

 private:
  RangeLock &l_;
  off_t b_, e_;
};

// The backup's copy of one source file, owned by the session that created it.
struct DstFile {
  int fd = -1;
  uint64_t session = 0;
  ino_t ino = 0;  // the backup file's inode, to find it again by path at the seal
  // CRC32C of [0, crc_len) as the copier wrote it, in order; valid while nothing else wrote
  // the file. Capture sets `changed`, and the seal then reads the file back instead.
  uint32_t crc = 0;
  uint64_t crc_len = 0;
  bool crc_valid = true;           // copier thread only
  std::atomic<bool> changed{false};
};

struct Identity {
  dev_t dev;
  ino_t ino;
  bool operator==(const Identity &o) const { return dev == o.dev && ino == o.ino; }
};
struct IdentityHash {
  size_t operator()(const Identity &i) const { return std::hash<uint64_t>()(i.ino * 1000003u ^ i.dev); }
};

// One file (inode). Shared by every fd open on it and by the copier.
struct FileObj {
  explicit FileObj(Identity i) : id(i) {}
  const Identity id;
  RangeLock ranges;
  std::mutex mu;                 // guards dst
  std::shared_ptr<DstFile> dst;  // where captured writes go while a session mirrors this file

  std::shared_ptr<DstFile> mirror() {
    std::lock_guard<std::mutex> g(mu);
    return dst;
  }
};

// One open file description; dup'd fds share it.
struct OpenFile {
  OpenFile(std::shared_ptr<FileObj> f, bool app) : file(std::move(f)), append(app) {}
  std::shared_ptr<FileObj> file;
  std::atomic<bool> append;  // O_APPEND, kept current by fcntl(F_SETFL)
  std::mutex offset_mu;  // makes "find the offset, write, mirror" atomic for writes at the file offset
};

class FileTable {
 public:
  // The file with this identity, created if unknown.
  std::shared_ptr<FileObj> file(Identity id);
  // The last name of the file is gone: a new file may get the same inode number, so the
  // identity must stop leading to this file (fds open on it keep it).
  void forget(Identity id);

  // After a successful open: fstat, track regular files. `flags` are the open flags when
  // known (else -1: asked of the kernel).
  void track_open(int fd, int flags = -1);
  void set_append(int fd, bool append);  // fcntl(F_SETFL) changed it
  void track_dup(int from, int to);   // `to` now shares `from`'s open file
  void untrack(int fd);
  void untrack_range(unsigned first, unsigned last);
  std::shared_ptr<OpenFile> lookup(int fd);
  bool is_tracked(int fd);

 private:
  void put_locked(int fd, std::shared_ptr<OpenFile> of);
  std::shared_mutex mu_;
  std::vector<std::shared_ptr<OpenFile>> by_fd_;
  std::unordered_map<Identity, std::weak_ptr<FileObj>, IdentityHash> by_id_;
  size_t sweep_at_ = 1024;
};

FileTable &files();

}  // namespace hb

namespace hb {
// True when `path` (relative to dirfd, not followed) is a regular file with one link, i.e.
// the call about to remove or replace it removes the file: *id gets its identity, which the
// caller forgets afterwards (the inode number may be reused by a new file).
bool last_link(int dirfd, const char *path, Identity *id);
}  // namespace hb
