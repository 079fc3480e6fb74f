// The wrappers: every name in interpose.def. When no backup runs, a write path is one flag
// load and the real call; everything else happens only while capturing.
#include <algorithm>
#include <cerrno>
#include <climits>
#include <cstdarg>
#include <cstdlib>
#include <cstring>
#include <fcntl.h>
#include <csignal>
#include <linux/membarrier.h>
#include <mutex>
#include <set>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <unistd.h>

#include "control.h"
#include "files.h"
#include "hotbackup.h"
#include "paths.h"
#include "real.h"
#include "session.h"
#include "state.h"

#define HB_EXPORT extern "C" __attribute__((visibility("default")))

namespace hb {
namespace {

bool g_served = false;

inline bool tracking() { return g_tracking.load(std::memory_order_relaxed); }

// The open file behind fd, if it is a regular file. The identity is checked every time:
// an fd number closed behind the shim's back and reused (by a socket, say) must never lead
// to another file's backup copy. Capture-only cost.
std::shared_ptr<OpenFile> open_file(int fd) {
  struct stat st;
  auto of = files().lookup(fd);
  if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
    if (of) files().untrack(fd);
    return nullptr;
  }
  if (of && of->file->id == Identity{st.st_dev, st.st_ino}) return of;
  files().track_open(fd);
  return files().lookup(fd);
}

size_t iov_total(const struct iovec *iov, int cnt) {
  size_t n = 0;
  for (int i = 0; i < cnt; i++) n += iov[i].iov_len;
  return n;
}

// ---- content writes while capturing ---------------------------------------------------

// The bytes of one captured write, copied once before the real call, which then writes the
// copy: the backup gets exactly the bytes the kernel was given. A server may change its buffer
// while its write runs (InnoDB appends mini-transactions to the redo block it is writing, after
// releasing the log latch); mirroring the caller's buffer after the call recorded bytes the file
// never had, and a cut before the block's next write left them in the backup (the torn-index
// evidence of 2026-12-04). Each segment keeps its address modulo the page size, so O_DIRECT
// accepts or refuses the copy exactly as it would the original. Huge writes, many segments, no
// memory or process_vm_readv refused (a seccomp filter): the caller's buffers are used as before.
constexpr size_t kSnapshotAlign = 4096;
constexpr size_t kMaxSnapshot = 64 << 20;
constexpr size_t kKeptSnapshot = 8 << 20;  // a thread keeps at most this much between writes

struct SnapshotBuffer {
  void *p = nullptr;
  size_t cap = 0;
  ~SnapshotBuffer() { std::free(p); }
  void *reserve(size_t n) {
    if (n <= cap) return p;
    std::free(p);
    cap = 0;
    if (posix_memalign(&p, kSnapshotAlign, n) != 0) return p = nullptr;
    cap = n;
    return p;
  }
  void trim() {
    if (cap <= kKeptSnapshot) return;
    std::free(p);
    p = nullptr;
    cap = 0;
  }
};
thread_local SnapshotBuffer t_snapshot;

class WriteSnapshot {
 public:
  WriteSnapshot(const struct iovec *iov, int cnt) : iov_(iov), cnt_(cnt) {
    size_t need = 0;
    for (int i = 0; i < cnt && cnt <= kSegments; i++) need += slot(iov[i]);
    if (cnt <= 0 || cnt > kSegments || need > kMaxSnapshot) return;
    char *at = static_cast<char *>(t_snapshot.reserve(need));
    if (!at) return;
    for (int i = 0; i < cnt; i++) {
      copy_[i] = {at + reinterpret_cast<uintptr_t>(iov[i].iov_base) % kSnapshotAlign, iov[i].iov_len};
      at += slot(iov[i]);
    }
    // The kernel's copy, not memcpy: a buffer that is only partly readable makes the real call
    // write the readable part (or fail with EFAULT), and must not crash the shim.
    ssize_t got = process_vm_readv(getpid(), copy_, static_cast<unsigned long>(cnt), iov,
                                   static_cast<unsigned long>(cnt), 0);
    if (got <= 0) return;  // nothing readable (or no such call): the real call decides, as before
    size_t left = static_cast<size_t>(got);
    for (int i = 0; i < cnt; i++) {  // the readable prefix is what the kernel would have written
      copy_[i].iov_len = std::min(copy_[i].iov_len, left);
      left -= copy_[i].iov_len;
    }
    iov_ = copy_;
  }
  ~WriteSnapshot() { t_snapshot.trim(); }
  WriteSnapshot(const WriteSnapshot &) = delete;
  WriteSnapshot &operator=(const WriteSnapshot &) = delete;
  const struct iovec *iov() const { return iov_; }
  int cnt() const { return cnt_; }

 private:
  static constexpr int kSegments = 16;
  static size_t slot(const struct iovec &v) {
    size_t n = reinterpret_cast<uintptr_t>(v.iov_base) % kSnapshotAlign + v.iov_len;
    return (n + kSnapshotAlign - 1) / kSnapshotAlign * kSnapshotAlign;
  }
  const struct iovec *iov_;
  int cnt_;
  struct iovec copy_[kSegments];
};

// Writes at the file offset (write, writev, pwritev2 with offset -1, O_APPEND, RWF_APPEND):
// the offset is found and the write done under the open file's lock, so the bytes are
// mirrored where they landed. `call(iov, cnt)` makes the real call with the given buffers.
template <class CallFn>
ssize_t capture_at_offset(int fd, const struct iovec *iov, int cnt, bool force_append, CallFn call) {
  auto of = t_state.internal ? nullptr : open_file(fd);
  if (!of) return call(iov, cnt);
  CaptureScope cs;
  Session *s = cs.session();
  if (!s) return call(iov, cnt);
  WriteSnapshot snap(iov, cnt);
  std::lock_guard<std::mutex> og(of->offset_mu);
  bool append = force_append || of->append;
  off_t off = append ? 0 : lseek(fd, 0, SEEK_CUR);
  if (off < 0) return call(snap.iov(), snap.cnt());
  RangeGuard g(of->file->ranges, off, append ? kToEnd : off + static_cast<off_t>(iov_total(iov, cnt)));
  ssize_t r = call(snap.iov(), snap.cnt());
  ErrnoKeeper keep;
  if (r > 0) {
    // An append holds the whole file, so the size now ends exactly where its bytes went
    // (pwrite on an O_APPEND fd appends without moving the file offset).
    struct stat st;
    off_t landed = !append ? off : fstat(fd, &st) == 0 ? st.st_size - r : -1;
    if (landed >= 0) s->mirror_iov(*of->file, landed, snap.iov(), snap.cnt(), static_cast<size_t>(r));
  }
  return r;
}

// Writes at a given offset (pwrite, pwritev, pwritev2).
template <class CallFn>
ssize_t capture_positioned(int fd, const struct iovec *iov, int cnt, off_t off, CallFn call) {
  auto of = t_state.internal ? nullptr : open_file(fd);
  if (!of) return call(iov, cnt);
  // On Linux a positioned write to an O_APPEND file appends, whatever the offset.
  if (of->append) return capture_at_offset(fd, iov, cnt, true, call);
  CaptureScope cs;
  Session *s = cs.session();
  if (!s) return call(iov, cnt);
  WriteSnapshot snap(iov, cnt);
  RangeGuard g(of->file->ranges, off, off + static_cast<off_t>(iov_total(iov, cnt)));
  ssize_t r = call(snap.iov(), snap.cnt());
  ErrnoKeeper keep;
  if (r > 0) s->mirror_iov(*of->file, off, snap.iov(), snap.cnt(), static_cast<size_t>(r));
  return r;
}

ssize_t capture_write(int fd, const void *buf, size_t n) {
  struct iovec one = {const_cast<void *>(buf), n};
  return capture_at_offset(fd, &one, 1, false,
                           [&](const struct iovec *v, int) { return real.write(fd, v->iov_base, v->iov_len); });
}

ssize_t capture_writev(int fd, const struct iovec *iov, int cnt) {
  return capture_at_offset(fd, iov, cnt, false, [&](const struct iovec *v, int c) { return real.writev(fd, v, c); });
}

ssize_t capture_pwrite(int fd, const void *buf, size_t n, off_t off) {
  struct iovec one = {const_cast<void *>(buf), n};
  return capture_positioned(fd, &one, 1, off,
                            [&](const struct iovec *v, int) { return real.pwrite64(fd, v->iov_base, v->iov_len, off); });
}

ssize_t capture_pwritev(int fd, const struct iovec *iov, int cnt, off_t off) {
  return capture_positioned(fd, iov, cnt, off, [&](const struct iovec *v, int c) { return real.pwritev64(fd, v, c, off); });
}

// pwritev2: offset -1 means the file offset, RWF_APPEND an append.
ssize_t capture_pwritev2(int fd, const struct iovec *iov, int cnt, off_t off, int flags) {
  auto call = [&](const struct iovec *v, int c) { return real.pwritev64v2(fd, v, c, off, flags); };
  if (off == -1 || (flags & RWF_APPEND)) return capture_at_offset(fd, iov, cnt, (flags & RWF_APPEND) != 0, call);
  return capture_positioned(fd, iov, cnt, off, call);
}

// Writes done by the kernel from another fd: the bytes are read back from the target.
template <class CallFn>
ssize_t capture_kernel_copy(int outfd, off64_t *outoff, size_t len, CallFn call) {
  auto of = t_state.internal ? nullptr : open_file(outfd);
  if (!of) return call();
  CaptureScope cs;
  Session *s = cs.session();
  if (!s) return call();
  std::unique_lock<std::mutex> og(of->offset_mu, std::defer_lock);
  off_t off;
  if (outoff) off = *outoff;
  else {
    og.lock();
    off = lseek(outfd, 0, SEEK_CUR);
    if (off < 0) return call();
  }
  RangeGuard g(of->file->ranges, off, off + static_cast<off_t>(len));
  ssize_t r = call();
  ErrnoKeeper keep;
  if (r > 0) s->mirror_from_fd(*of->file, outfd, off, static_cast<size_t>(r));
  return r;
}

// ---- size and allocation ----------------------------------------------------------------

template <class CallFn, class MirrorFn>
int capture_whole_file(int fd, CallFn call, MirrorFn mirror) {
  auto of = t_state.internal ? nullptr : open_file(fd);
  if (!of) return call();
  CaptureScope cs;
  Session *s = cs.session();
  if (!s) return call();
  RangeGuard g(of->file->ranges, 0, kToEnd);
  int r = call();
  ErrnoKeeper keep;
  if (r == 0) mirror(s, *of->file);
  return r;
}

// ---- namespace --------------------------------------------------------------------------

// When not capturing, removing or replacing a file's last name still has to be recorded:
// a new file may receive the same inode number.
template <class CallFn>
int forgetting(int dirfd, const char *path, bool applies, CallFn call) {
  Identity id{};
  bool forget = applies && tracking() && last_link(dirfd, path, &id);
  int r = call();
  if (r == 0 && forget) {
    ErrnoKeeper keep;
    files().forget(id);
  }
  return r;
}

int do_openat(int dirfd, const char *path, int flags, mode_t mode) {
  int fd;
  if (flags & (O_CREAT | O_TRUNC)) {
    BusyMark m(kPathCall);
    if (capture_requested() && !t_state.internal) {
      m.clear();
      CaptureScope cs;
      if (Session *s = cs.session()) return s->open_creating(dirfd, path, flags, mode, real.openat);
      fd = real.openat(dirfd, path, flags, mode);
    } else {
      fd = real.openat(dirfd, path, flags, mode);
    }
  } else {
    fd = real.openat(dirfd, path, flags, mode);
  }
  if (fd >= 0) {
    ErrnoKeeper keep;
    files().track_open(fd, flags);
  }
  return fd;
}

int do_renameat2(int fromfd, const char *from, int tofd, const char *to, unsigned flags) {
  BusyMark m(kPathCall);
  if (capture_requested() && !t_state.internal) {
    m.clear();
    CaptureScope cs;
    if (Session *s = cs.session()) return s->rename(fromfd, from, tofd, to, flags);
  }
  return forgetting(tofd, to, !(flags & RENAME_EXCHANGE),
                    [&] { return real.renameat2(fromfd, from, tofd, to, flags); });
}

int do_unlinkat(int dirfd, const char *path, int flags) {
  BusyMark m(kPathCall);
  if (capture_requested() && !t_state.internal) {
    m.clear();
    CaptureScope cs;
    if (Session *s = cs.session()) return s->unlink(dirfd, path, flags);
  }
  return forgetting(dirfd, path, !(flags & AT_REMOVEDIR), [&] { return real.unlinkat(dirfd, path, flags); });
}

// ---- stdio ------------------------------------------------------------------------------

std::mutex g_streams_mu;
std::set<FILE *> *g_streams = new std::set<FILE *>();  // streams open for writing

bool writes(const char *mode) { return mode && (std::strpbrk(mode, "wa+") != nullptr); }

// libc writes a stream's buffer (and truncates for "w") with its own internal calls, which no
// wrapper sees. So the stdio entry points are write paths of their own: they mark the thread
// busy before reading the flag (a starting backup waits for a flush already under way), and
// while capturing they run the real call and the whole-file resync under one CaptureScope (the
// cut cannot fall between a flush and its mirror).
bool stdio_captured() { return capture_requested() && !t_state.internal; }

FILE *track_stream(FILE *f, const char *mode, Session *s) {
  if (!f || !tracking()) return f;
  ErrnoKeeper keep;
  files().track_open(fileno(f));
  if (!writes(mode)) return f;
  {
    std::lock_guard<std::mutex> g(g_streams_mu);
    g_streams->insert(f);
  }
  if (s) s->resync_fd(fileno(f));  // "w" truncated it
  return f;
}

template <class OpenFn>
FILE *open_stream(const char *mode, OpenFn open) {
  if (!tracking() || !writes(mode)) return track_stream(open(), mode, nullptr);
  BusyMark busy(kPathCall);
  if (!stdio_captured()) return track_stream(open(), mode, nullptr);
  busy.clear();
  CaptureScope cs;
  return track_stream(open(), mode, cs.session());
}

// fflush(NULL) flushes every stream, pipes included: a starting backup must not wait on those.
long stream_mark(FILE *stream) { return stream ? fileno(stream) : kIdle; }

}  // namespace

bool served() { return g_served; }

// ---- load, fork ---------------------------------------------------------------------------

namespace {
bool listed(const char *list, const std::string &name) {
  std::string l = list;
  size_t start = 0;
  while (start <= l.size()) {
    size_t comma = l.find(',', start);
    if (comma == std::string::npos) comma = l.size();
    std::string item = l.substr(start, comma - start);
    if (item == "*" || item == name) return true;
    start = comma + 1;
  }
  return false;
}

bool should_serve() {
  std::string exe;
  char buf[PATH_MAX];
  ssize_t n = readlink("/proc/self/exe", buf, sizeof buf - 1);
  if (n > 0) exe = base_name(std::string(buf, static_cast<size_t>(n)));
  std::string argv0 = program_invocation_short_name ? program_invocation_short_name : "";
  if (const char *list = getenv("HOTBACKUP_SERVE")) {
    if (!listed(list, exe) && !listed(list, argv0)) return false;
  } else {
    static const char *const wrappers =
        "sh,bash,dash,zsh,ksh,env,mysqld_safe,mariadbd-safe,mysqld_multi,sudo,su,runuser,nohup,timeout,numactl,"
        "taskset,setsid,stdbuf";
    if (listed(wrappers, exe) || listed(wrappers, argv0)) return false;
  }
  // A served ancestor passes its pid down: its children stay inert.
  if (const char *pid = getenv("HOTBACKUP_SERVED_PID")) {
    long p = std::strtol(pid, nullptr, 10);
    if (p > 0 && p != getpid() && (kill(static_cast<pid_t>(p), 0) == 0 || errno == EPERM)) return false;
  }
  return true;
}

void after_fork_in_child() {
  // Only the forking thread exists here; the copier and the socket live in the parent.
  g_served = false;
  g_tracking = false;
  g_capturing = false;
}

__attribute__((constructor)) void shim_init() {
  resolve_real_calls();
  if (!should_serve()) return;
  g_served = true;
  g_test_hooks = getenv("HOTBACKUP_TEST_HOOKS") && std::strcmp(getenv("HOTBACKUP_TEST_HOOKS"), "1") == 0;
  setenv("HOTBACKUP_SERVED_PID", std::to_string(getpid()).c_str(), 1);
  real.syscall(__NR_membarrier, MEMBARRIER_CMD_REGISTER_PRIVATE_EXPEDITED, 0, 0);
  pthread_atfork(nullptr, nullptr, after_fork_in_child);
  g_tracking = true;
  start_control_socket();
}

__attribute__((destructor)) void shim_fini() {
  if (!g_served) return;
  stop_control_socket();
}
}  // namespace

}  // namespace hb

using namespace hb;

// ============================== the exported names ==============================

// ---- opens
HB_EXPORT int open(const char *path, int flags, ...) {
  mode_t mode = 0;
  if (flags & (O_CREAT | __O_TMPFILE)) { va_list ap; va_start(ap, flags); mode = va_arg(ap, mode_t); va_end(ap); }
  if (!tracking()) return real.open(path, flags, mode);
  return do_openat(AT_FDCWD, path, flags, mode);
}
HB_EXPORT int open64(const char *path, int flags, ...) {
  mode_t mode = 0;
  if (flags & (O_CREAT | __O_TMPFILE)) { va_list ap; va_start(ap, flags); mode = va_arg(ap, mode_t); va_end(ap); }
  if (!tracking()) return real.open64(path, flags, mode);
  return do_openat(AT_FDCWD, path, flags, mode);
}
HB_EXPORT int openat(int dirfd, const char *path, int flags, ...) {
  mode_t mode = 0;
  if (flags & (O_CREAT | __O_TMPFILE)) { va_list ap; va_start(ap, flags); mode = va_arg(ap, mode_t); va_end(ap); }
  if (!tracking()) return real.openat(dirfd, path, flags, mode);
  return do_openat(dirfd, path, flags, mode);
}
HB_EXPORT int openat64(int dirfd, const char *path, int flags, ...) {
  mode_t mode = 0;
  if (flags & (O_CREAT | __O_TMPFILE)) { va_list ap; va_start(ap, flags); mode = va_arg(ap, mode_t); va_end(ap); }
  if (!tracking()) return real.openat64(dirfd, path, flags, mode);
  return do_openat(dirfd, path, flags, mode);
}
HB_EXPORT int creat(const char *path, mode_t mode) {
  if (!tracking()) return real.creat(path, mode);
  return do_openat(AT_FDCWD, path, O_CREAT | O_WRONLY | O_TRUNC, mode);
}
HB_EXPORT int creat64(const char *path, mode_t mode) {
  if (!tracking()) return real.creat64(path, mode);
  return do_openat(AT_FDCWD, path, O_CREAT | O_WRONLY | O_TRUNC, mode);
}
HB_EXPORT int __open_2(const char *path, int flags) {
  if (!tracking()) return real.__open_2(path, flags);
  return do_openat(AT_FDCWD, path, flags, 0);
}
HB_EXPORT int __open64_2(const char *path, int flags) {
  if (!tracking()) return real.__open64_2(path, flags);
  return do_openat(AT_FDCWD, path, flags, 0);
}
HB_EXPORT int __openat_2(int dirfd, const char *path, int flags) {
  if (!tracking()) return real.__openat_2(dirfd, path, flags);
  return do_openat(dirfd, path, flags, 0);
}
HB_EXPORT int __openat64_2(int dirfd, const char *path, int flags) {
  if (!tracking()) return real.__openat64_2(dirfd, path, flags);
  return do_openat(dirfd, path, flags, 0);
}

// ---- descriptor lifetime
HB_EXPORT int close(int fd) {
  if (tracking() && files().is_tracked(fd)) files().untrack(fd);
  return real.close(fd);
}
HB_EXPORT int close_range(unsigned int first, unsigned int last, int flags) {
  if (tracking() && !(flags & CLOSE_RANGE_CLOEXEC)) files().untrack_range(first, last);
  return real.close_range(first, last, flags);
}
HB_EXPORT void closefrom(int lowfd) {
  if (tracking() && lowfd >= 0) files().untrack_range(static_cast<unsigned>(lowfd), UINT_MAX);
  real.closefrom(lowfd);
}
HB_EXPORT int dup(int fd) {
  int r = real.dup(fd);
  if (r >= 0 && tracking()) files().track_dup(fd, r);
  return r;
}
HB_EXPORT int dup2(int fd, int fd2) {
  int r = real.dup2(fd, fd2);
  if (r >= 0 && fd != fd2 && tracking()) files().track_dup(fd, fd2);
  return r;
}
HB_EXPORT int dup3(int fd, int fd2, int flags) {
  int r = real.dup3(fd, fd2, flags);
  if (r >= 0 && tracking()) files().track_dup(fd, fd2);
  return r;
}
HB_EXPORT int fcntl(int fd, int cmd, ...) {
  va_list ap; va_start(ap, cmd); void *arg = va_arg(ap, void *); va_end(ap);
  int r = real.fcntl(fd, cmd, arg);
  if (r >= 0 && (cmd == F_DUPFD || cmd == F_DUPFD_CLOEXEC) && tracking()) { ErrnoKeeper k; files().track_dup(fd, r); }
  if (r == 0 && cmd == F_SETFL && tracking()) files().set_append(fd, (reinterpret_cast<intptr_t>(arg) & O_APPEND) != 0);
  return r;
}
HB_EXPORT int fcntl64(int fd, int cmd, ...) {
  va_list ap; va_start(ap, cmd); void *arg = va_arg(ap, void *); va_end(ap);
  int r = real.fcntl64(fd, cmd, arg);
  if (r >= 0 && (cmd == F_DUPFD || cmd == F_DUPFD_CLOEXEC) && tracking()) { ErrnoKeeper k; files().track_dup(fd, r); }
  if (r == 0 && cmd == F_SETFL && tracking()) files().set_append(fd, (reinterpret_cast<intptr_t>(arg) & O_APPEND) != 0);
  return r;
}

// ---- writes: the idle path is the BusyMark store, one flag load and the real call.
#define IDLE_OR(mark, real_call, capture_call)                              \
  do {                                                                      \
    BusyMark busy_(mark);                                                   \
    if (__builtin_expect(!capture_requested(), 1)) return real_call;        \
    busy_.clear();                                                          \
    return capture_call;                                                    \
  } while (0)

HB_EXPORT ssize_t write(int fd, const void *buf, size_t n) {
  IDLE_OR(fd, real.write(fd, buf, n), capture_write(fd, buf, n));
}
HB_EXPORT ssize_t pwrite(int fd, const void *buf, size_t n, off_t off) {
  IDLE_OR(fd, real.pwrite(fd, buf, n, off), capture_pwrite(fd, buf, n, off));
}
HB_EXPORT ssize_t pwrite64(int fd, const void *buf, size_t n, off64_t off) {
  IDLE_OR(fd, real.pwrite64(fd, buf, n, off), capture_pwrite(fd, buf, n, off));
}
HB_EXPORT ssize_t writev(int fd, const struct iovec *iov, int cnt) {
  IDLE_OR(fd, real.writev(fd, iov, cnt), capture_writev(fd, iov, cnt));
}
HB_EXPORT ssize_t pwritev(int fd, const struct iovec *iov, int cnt, off_t off) {
  IDLE_OR(fd, real.pwritev(fd, iov, cnt, off), capture_pwritev(fd, iov, cnt, off));
}
HB_EXPORT ssize_t pwritev64(int fd, const struct iovec *iov, int cnt, off64_t off) {
  IDLE_OR(fd, real.pwritev64(fd, iov, cnt, off), capture_pwritev(fd, iov, cnt, off));
}
HB_EXPORT ssize_t pwritev2(int fd, const struct iovec *iov, int cnt, off_t off, int flags) {
  IDLE_OR(fd, real.pwritev2(fd, iov, cnt, off, flags), capture_pwritev2(fd, iov, cnt, off, flags));
}
HB_EXPORT ssize_t pwritev64v2(int fd, const struct iovec *iov, int cnt, off64_t off, int flags) {
  IDLE_OR(fd, real.pwritev64v2(fd, iov, cnt, off, flags), capture_pwritev2(fd, iov, cnt, off, flags));
}

// ---- size and allocation
namespace {
int capture_ftruncate(int fd, off_t len) {
  return capture_whole_file(fd, [&] { return real.ftruncate64(fd, len); },
                            [&](Session *s, FileObj &f) { s->mirror_truncate(f, len); });
}
int capture_fallocate(int fd, int mode, off_t off, off_t len) {
  return capture_whole_file(fd, [&] { return real.fallocate64(fd, mode, off, len); },
                            [&](Session *s, FileObj &f) { s->mirror_fallocate(f, fd, mode, off, len); });
}
int capture_posix_fallocate(int fd, off_t off, off_t len) {
  return capture_whole_file(fd, [&] { return real.posix_fallocate64(fd, off, len); },
                            [&](Session *s, FileObj &f) { s->mirror_posix_fallocate(f, off, len); });
}
int capture_truncate(const char *path, off_t len) {
  if (t_state.internal) return real.truncate64(path, len);
  CaptureScope cs;
  if (Session *s = cs.session()) return s->truncate_path(path, len);
  return real.truncate64(path, len);
}
}  // namespace
HB_EXPORT int ftruncate(int fd, off_t len) { IDLE_OR(fd, real.ftruncate(fd, len), capture_ftruncate(fd, len)); }
HB_EXPORT int ftruncate64(int fd, off64_t len) { IDLE_OR(fd, real.ftruncate64(fd, len), capture_ftruncate(fd, len)); }
HB_EXPORT int truncate(const char *path, off_t len) {
  IDLE_OR(kPathCall, real.truncate(path, len), capture_truncate(path, len));
}
HB_EXPORT int truncate64(const char *path, off64_t len) {
  IDLE_OR(kPathCall, real.truncate64(path, len), capture_truncate(path, len));
}
HB_EXPORT int fallocate(int fd, int mode, off_t off, off_t len) {
  IDLE_OR(fd, real.fallocate(fd, mode, off, len), capture_fallocate(fd, mode, off, len));
}
HB_EXPORT int fallocate64(int fd, int mode, off64_t off, off64_t len) {
  IDLE_OR(fd, real.fallocate64(fd, mode, off, len), capture_fallocate(fd, mode, off, len));
}
HB_EXPORT int posix_fallocate(int fd, off_t off, off_t len) {
  IDLE_OR(fd, real.posix_fallocate(fd, off, len), capture_posix_fallocate(fd, off, len));
}
HB_EXPORT int posix_fallocate64(int fd, off64_t off, off64_t len) {
  IDLE_OR(fd, real.posix_fallocate64(fd, off, len), capture_posix_fallocate(fd, off, len));
}

// ---- namespace
HB_EXPORT int rename(const char *from, const char *to) {
  if (!tracking()) return real.rename(from, to);
  return do_renameat2(AT_FDCWD, from, AT_FDCWD, to, 0);
}
HB_EXPORT int renameat(int fromfd, const char *from, int tofd, const char *to) {
  if (!tracking()) return real.renameat(fromfd, from, tofd, to);
  return do_renameat2(fromfd, from, tofd, to, 0);
}
HB_EXPORT int renameat2(int fromfd, const char *from, int tofd, const char *to, unsigned int flags) {
  if (!tracking()) return real.renameat2(fromfd, from, tofd, to, flags);
  return do_renameat2(fromfd, from, tofd, to, flags);
}
HB_EXPORT int unlink(const char *path) {
  if (!tracking()) return real.unlink(path);
  return do_unlinkat(AT_FDCWD, path, 0);
}
HB_EXPORT int unlinkat(int dirfd, const char *path, int flags) {
  if (!tracking()) return real.unlinkat(dirfd, path, flags);
  return do_unlinkat(dirfd, path, flags);
}
HB_EXPORT int rmdir(const char *path) {
  if (!tracking()) return real.rmdir(path);
  return do_unlinkat(AT_FDCWD, path, AT_REMOVEDIR);
}
HB_EXPORT int remove(const char *path) {
  if (!tracking()) return real.remove(path);
  BusyMark m(kPathCall);
  if (capture_requested() && !t_state.internal) {
    m.clear();
    CaptureScope cs;
    if (Session *s = cs.session()) return s->remove(path);
  }
  return forgetting(AT_FDCWD, path, true, [&] { return real.remove(path); });
}
namespace {
int do_mkdirat(int dirfd, const char *path, mode_t mode) {
  BusyMark m(kPathCall);
  if (capture_requested() && !t_state.internal) {
    m.clear();
    CaptureScope cs;
    if (Session *s = cs.session()) return s->mkdir(dirfd, path, mode);
  }
  return real.mkdirat(dirfd, path, mode);
}
int do_linkat(int fromfd, const char *from, int tofd, const char *to, int flags) {
  BusyMark m(kPathCall);
  if (capture_requested() && !t_state.internal) {
    m.clear();
    CaptureScope cs;
    if (Session *s = cs.session()) return s->link(fromfd, from, tofd, to, flags);
  }
  return real.linkat(fromfd, from, tofd, to, flags);
}
int do_symlinkat(const char *target, int dirfd, const char *path) {
  BusyMark m(kPathCall);
  if (capture_requested() && !t_state.internal) {
    m.clear();
    CaptureScope cs;
    if (Session *s = cs.session()) return s->symlink(target, dirfd, path);
  }
  return real.symlinkat(target, dirfd, path);
}
}  // namespace
HB_EXPORT int mkdir(const char *path, mode_t mode) {
  if (!tracking()) return real.mkdir(path, mode);
  return do_mkdirat(AT_FDCWD, path, mode);
}
HB_EXPORT int mkdirat(int dirfd, const char *path, mode_t mode) {
  if (!tracking()) return real.mkdirat(dirfd, path, mode);
  return do_mkdirat(dirfd, path, mode);
}
HB_EXPORT int link(const char *from, const char *to) {
  if (!tracking()) return real.link(from, to);
  return do_linkat(AT_FDCWD, from, AT_FDCWD, to, 0);
}
HB_EXPORT int linkat(int fromfd, const char *from, int tofd, const char *to, int flags) {
  if (!tracking()) return real.linkat(fromfd, from, tofd, to, flags);
  return do_linkat(fromfd, from, tofd, to, flags);
}
HB_EXPORT int symlink(const char *target, const char *path) {
  if (!tracking()) return real.symlink(target, path);
  return do_symlinkat(target, AT_FDCWD, path);
}
HB_EXPORT int symlinkat(const char *target, int dirfd, const char *path) {
  if (!tracking()) return real.symlinkat(target, dirfd, path);
  return do_symlinkat(target, dirfd, path);
}

// ---- copies done by the kernel
HB_EXPORT ssize_t copy_file_range(int infd, off64_t *inoff, int outfd, off64_t *outoff, size_t len,
                                  unsigned int flags) {
  IDLE_OR(outfd, real.copy_file_range(infd, inoff, outfd, outoff, len, flags),
          capture_kernel_copy(outfd, outoff, len, [&] { return real.copy_file_range(infd, inoff, outfd, outoff, len, flags); }));
}
HB_EXPORT ssize_t sendfile(int outfd, int infd, off_t *inoff, size_t count) {
  IDLE_OR(outfd, real.sendfile(outfd, infd, inoff, count),
          capture_kernel_copy(outfd, nullptr, count, [&] { return real.sendfile(outfd, infd, inoff, count); }));
}
HB_EXPORT ssize_t sendfile64(int outfd, int infd, off64_t *inoff, size_t count) {
  IDLE_OR(outfd, real.sendfile64(outfd, infd, inoff, count),
          capture_kernel_copy(outfd, nullptr, count, [&] { return real.sendfile64(outfd, infd, inoff, count); }));
}

// ---- stdio
HB_EXPORT FILE *fopen(const char *path, const char *mode) {
  return open_stream(mode, [&] { return real.fopen(path, mode); });
}
HB_EXPORT FILE *fopen64(const char *path, const char *mode) {
  return open_stream(mode, [&] { return real.fopen64(path, mode); });
}
HB_EXPORT FILE *freopen(const char *path, const char *mode, FILE *stream) {
  return open_stream(mode, [&] { return real.freopen(path, mode, stream); });
}
HB_EXPORT FILE *freopen64(const char *path, const char *mode, FILE *stream) {
  return open_stream(mode, [&] { return real.freopen64(path, mode, stream); });
}
HB_EXPORT FILE *fdopen(int fd, const char *mode) { return open_stream(mode, [&] { return real.fdopen(fd, mode); }); }
HB_EXPORT int fflush(FILE *stream) {
  if (!tracking()) return real.fflush(stream);
  BusyMark busy(stream_mark(stream));
  if (!stdio_captured()) return real.fflush(stream);
  busy.clear();
  CaptureScope cs;
  int r = real.fflush(stream);
  Session *s = cs.session();
  if (!s) return r;
  ErrnoKeeper keep;
  std::vector<int> fds;
  {
    std::lock_guard<std::mutex> g(g_streams_mu);
    if (stream) {
      if (g_streams->count(stream)) fds.push_back(fileno(stream));
    } else {
      for (FILE *f : *g_streams) fds.push_back(fileno(f));
    }
  }
  for (int fd : fds) s->resync_fd(fd);
  return r;
}
HB_EXPORT int fclose(FILE *stream) {
  if (!tracking() || !stream) return real.fclose(stream);
  int fd = fileno(stream);
  bool wrote;
  {
    std::lock_guard<std::mutex> g(g_streams_mu);
    wrote = g_streams->erase(stream) > 0;
  }
  BusyMark busy(wrote ? fd : kIdle);
  if (wrote && stdio_captured()) {
    busy.clear();
    // Flush, copy the file again while the stream's fd still names it, then close.
    CaptureScope cs;
    real.fflush(stream);
    ErrnoKeeper keep;
    if (Session *s = cs.session()) s->resync_fd(fd);
  }
  files().untrack(fd);
  return real.fclose(stream);
}

// ---- mappings
HB_EXPORT void *mmap(void *addr, size_t len, int prot, int flags, int fd, off_t off) {
  void *p = real.mmap(addr, len, prot, flags, fd, off);
  if (p != MAP_FAILED && fd >= 0 && (prot & PROT_WRITE) && (flags & MAP_SHARED) && capture_requested() &&
      !t_state.internal) {
    ErrnoKeeper keep;
    CaptureScope cs;
    if (Session *s = cs.session()) s->mirror_shared_mapping(fd);
  }
  return p;
}
HB_EXPORT void *mmap64(void *addr, size_t len, int prot, int flags, int fd, off64_t off) {
  return mmap(addr, len, prot, flags, fd, off);
}

// ---- native asynchronous I/O: unavailable in the served process, so servers fall back to
// synchronous pwrite, which the shim sees.
HB_EXPORT int io_uring_queue_init(unsigned int entries, void *ring, unsigned int flags) {
  if (served() || !real.io_uring_queue_init) return -ENOSYS;
  return real.io_uring_queue_init(entries, ring, flags);
}
HB_EXPORT int io_uring_queue_init_params(unsigned int entries, void *ring, void *params) {
  if (served() || !real.io_uring_queue_init_params) return -ENOSYS;
  return real.io_uring_queue_init_params(entries, ring, params);
}
HB_EXPORT int io_setup(unsigned int nr, void *ctx) {
  if (served() || !real.io_setup) return -ENOSYS;
  return real.io_setup(nr, ctx);
}

// ---- syscall(): libuv closes and copies files through it
HB_EXPORT long syscall(long number, ...) {
  va_list ap;
  va_start(ap, number);
  long a1 = va_arg(ap, long), a2 = va_arg(ap, long), a3 = va_arg(ap, long);
  long a4 = va_arg(ap, long), a5 = va_arg(ap, long), a6 = va_arg(ap, long);
  va_end(ap);
  switch (number) {
    case SYS_close:
      return close(static_cast<int>(a1));
    case SYS_copy_file_range:
      return copy_file_range(static_cast<int>(a1), reinterpret_cast<off64_t *>(a2), static_cast<int>(a3),
                             reinterpret_cast<off64_t *>(a4), static_cast<size_t>(a5), static_cast<unsigned>(a6));
    case SYS_io_uring_setup:
    case SYS_io_setup:
      if (served()) {
        errno = ENOSYS;
        return -1;
      }
      break;
    default:
      break;
  }
  return real.syscall(number, a1, a2, a3, a4, a5, a6);
}

// ---- the C API
HB_EXPORT char *hotbackup_request(const char *request_json) {
  std::string reply = handle_request(request_json ? request_json : "");
  char *out = static_cast<char *>(std::malloc(reply.size() + 1));
  if (out) std::memcpy(out, reply.c_str(), reply.size() + 1);
  return out;
}
HB_EXPORT void hotbackup_free(char *reply) { std::free(reply); }
HB_EXPORT int hotbackup_is_served(void) { return served() ? 1 : 0; }
