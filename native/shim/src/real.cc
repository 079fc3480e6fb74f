#include "real.h"

#include <cerrno>
#include <cstdarg>
#include <cstring>
#include <dlfcn.h>
#include <mutex>
#include <type_traits>
#include <unistd.h>
#include <sys/syscall.h>

#include "state.h"

namespace hb {
namespace {

template <class R>
R missing_symbol() {
  errno = ENOSYS;
  if constexpr (std::is_pointer_v<R>) return nullptr;
  else return static_cast<R>(-1);
}

// Trampolines: each resolves the whole table, then forwards.
#define WRAP(ret, name, params, args) \
  ret stub_##name params {            \
    resolve_real_calls();             \
    return real.name args;            \
  }
#define WRAP_VARIADIC(ret, name, params, args)
#include "interpose.def"
#undef WRAP
#undef WRAP_VARIADIC

int stub_open(const char *path, int flags, ...) {
  va_list ap; va_start(ap, flags); mode_t mode = va_arg(ap, mode_t); va_end(ap);
  resolve_real_calls();
  return real.open(path, flags, mode);
}
int stub_open64(const char *path, int flags, ...) {
  va_list ap; va_start(ap, flags); mode_t mode = va_arg(ap, mode_t); va_end(ap);
  resolve_real_calls();
  return real.open64(path, flags, mode);
}
int stub_openat(int dirfd, const char *path, int flags, ...) {
  va_list ap; va_start(ap, flags); mode_t mode = va_arg(ap, mode_t); va_end(ap);
  resolve_real_calls();
  return real.openat(dirfd, path, flags, mode);
}
int stub_openat64(int dirfd, const char *path, int flags, ...) {
  va_list ap; va_start(ap, flags); mode_t mode = va_arg(ap, mode_t); va_end(ap);
  resolve_real_calls();
  return real.openat64(dirfd, path, flags, mode);
}
int stub_fcntl(int fd, int cmd, ...) {
  va_list ap; va_start(ap, cmd); void *arg = va_arg(ap, void *); va_end(ap);
  resolve_real_calls();
  return real.fcntl(fd, cmd, arg);
}
int stub_fcntl64(int fd, int cmd, ...) {
  va_list ap; va_start(ap, cmd); void *arg = va_arg(ap, void *); va_end(ap);
  resolve_real_calls();
  return real.fcntl64(fd, cmd, arg);
}
long stub_syscall(long number, ...) {
  va_list ap; va_start(ap, number);
  long a1 = va_arg(ap, long), a2 = va_arg(ap, long), a3 = va_arg(ap, long);
  long a4 = va_arg(ap, long), a5 = va_arg(ap, long), a6 = va_arg(ap, long);
  va_end(ap);
  resolve_real_calls();
  return real.syscall(number, a1, a2, a3, a4, a5, a6);
}

}  // namespace

RealCalls real = {
#define WRAP(ret, name, params, args) stub_##name,
#define WRAP_VARIADIC(ret, name, params, args) stub_##name,
#include "interpose.def"
#undef WRAP
#undef WRAP_VARIADIC
};

void resolve_real_calls() {
  static std::once_flag once;
  std::call_once(once, [] {
    RealCalls r;
#define WRAP(ret, name, params, args)                                               \
  r.name = reinterpret_cast<decltype(r.name)>(dlsym(RTLD_NEXT, #name));            \
  if (!r.name) r.name = [] params -> ret { return missing_symbol<ret>(); };
#define WRAP_VARIADIC(ret, name, params, args) \
  r.name = reinterpret_cast<decltype(r.name)>(dlsym(RTLD_NEXT, #name));
#include "interpose.def"
#undef WRAP
#undef WRAP_VARIADIC
    // The asynchronous-I/O entries live in liburing/libaio, which may not be loaded: the
    // wrappers treat a null pointer as "not available".
    real = r;
  });
}

// ---------------------------------------------------------------------------------------
// Fault injection and counting of backup-side calls.

namespace {
constexpr int kCalls = static_cast<int>(Call::count);
const char *const kCallNames[kCalls] = {"open",     "write", "close",   "rename", "unlink", "mkdir",
                                         "fsync",    "read",  "truncate", "link",  "symlink", "rmdir"};
std::atomic<long> g_counts[kCalls];
std::atomic<long> g_fault_nth[kCalls];
std::atomic<int> g_fault_errno[kCalls];

// True when this backup-side call must fail (errno is then set).
bool inject(Call c) {
  int i = static_cast<int>(c);
  long n = g_counts[i].fetch_add(1, std::memory_order_relaxed) + 1;
  long nth = g_fault_nth[i].load(std::memory_order_relaxed);
  if (nth != 0 && n == nth) {
    errno = g_fault_errno[i].load(std::memory_order_relaxed);
    return true;
  }
  return false;
}
}  // namespace

const char *call_name(Call c) { return kCallNames[static_cast<int>(c)]; }

bool call_from_name(const char *name, Call *out) {
  for (int i = 0; i < kCalls; i++)
    if (std::strcmp(kCallNames[i], name) == 0) {
      *out = static_cast<Call>(i);
      return true;
    }
  return false;
}

namespace faults {
void arm(Call c, long nth, int err) {
  g_fault_errno[static_cast<int>(c)] = err;
  g_fault_nth[static_cast<int>(c)] = nth;
}
void reset_counts() {
  for (auto &c : g_counts) c = 0;
}
long count(Call c) { return g_counts[static_cast<int>(c)].load(); }
}  // namespace faults

// Where the shim's own descriptors are opened and closed. ThreadSanitizer follows
// descriptors through its interceptors, which dlsym(RTLD_NEXT) skips; in TSan builds these
// calls go through the public names (and so through the shim's own wrappers, as internal
// calls), or TSan would take the reuse of a descriptor number for a race.
namespace {
#if defined(__SANITIZE_THREAD__)
int own_open(int dirfd, const char *path, int flags, mode_t mode) {
  static auto fn = reinterpret_cast<int (*)(int, const char *, int, ...)>(dlsym(RTLD_DEFAULT, "openat"));
  InternalScope internal;
  return fn(dirfd, path, flags, mode);
}
int own_close(int fd) {
  static auto fn = reinterpret_cast<int (*)(int)>(dlsym(RTLD_DEFAULT, "close"));
  InternalScope internal;
  return fn(fd);
}
#else
int own_open(int dirfd, const char *path, int flags, mode_t mode) { return real.openat(dirfd, path, flags, mode); }
int own_close(int fd) { return real.close(fd); }
#endif
}  // namespace

namespace sys {
int open(const char *path, int flags, mode_t mode) { return inject(Call::open) ? -1 : own_open(AT_FDCWD, path, flags, mode); }
int openat(int dirfd, const char *path, int flags, mode_t mode) {
  return inject(Call::open) ? -1 : own_open(dirfd, path, flags, mode);
}
int close(int fd) {
  if (inject(Call::close)) {
    own_close(fd);  // the descriptor must not leak even when the failure is simulated
    errno = g_fault_errno[static_cast<int>(Call::close)].load();
    return -1;
  }
  return own_close(fd);
}
int open_quietly(const char *path, int flags) { return own_open(AT_FDCWD, path, flags, 0); }
int close_quietly(int fd) { return own_close(fd); }
ssize_t pread(int fd, void *buf, size_t n, off_t off) {
  if (inject(Call::read)) return -1;
  for (;;) {
    ssize_t r = ::pread(fd, buf, n, off);
    if (r < 0 && errno == EINTR) continue;
    return r;
  }
}
ssize_t pwrite_all(int fd, const void *buf, size_t n, off_t off) {
  if (inject(Call::write)) return -1;
  const char *p = static_cast<const char *>(buf);
  size_t done = 0;
  while (done < n) {
    ssize_t r = real.pwrite64(fd, p + done, n - done, off + static_cast<off_t>(done));
    if (r < 0 && errno == EINTR) continue;
    if (r < 0) return -1;
    if (r == 0) {
      errno = ENOSPC;
      return -1;
    }
    done += static_cast<size_t>(r);
  }
  return static_cast<ssize_t>(n);
}
ssize_t copy_range(int infd, off_t off, int outfd, size_t n) {
  if (inject(Call::write)) return -1;
  off64_t in = off, out = off;
  return real.copy_file_range(infd, &in, outfd, &out, n, 0);
}
int ftruncate(int fd, off_t len) { return inject(Call::truncate) ? -1 : real.ftruncate(fd, len); }
int fallocate(int fd, int mode, off_t off, off_t len) {
  return inject(Call::write) ? -1 : real.fallocate(fd, mode, off, len);
}
int fsync(int fd) { return inject(Call::fsync) ? -1 : ::fsync(fd); }
int rename(const char *from, const char *to, unsigned flags) {
  return inject(Call::rename) ? -1 : real.renameat2(AT_FDCWD, from, AT_FDCWD, to, flags);
}
int unlink(const char *path) { return inject(Call::unlink) ? -1 : real.unlink(path); }
int rmdir(const char *path) { return inject(Call::rmdir) ? -1 : real.rmdir(path); }
int mkdir(const char *path, mode_t mode) { return inject(Call::mkdir) ? -1 : real.mkdir(path, mode); }
int link(const char *from, const char *to) { return inject(Call::link) ? -1 : real.link(from, to); }
int link_fd(int fd, const char *to) {
  if (inject(Call::link)) return -1;
  char proc[64];
  std::snprintf(proc, sizeof proc, "/proc/self/fd/%d", fd);
  return real.linkat(AT_FDCWD, proc, AT_FDCWD, to, AT_SYMLINK_FOLLOW);
}
int symlink(const char *target, const char *path) {
  return inject(Call::symlink) ? -1 : real.symlink(target, path);
}
}  // namespace sys

}  // namespace hb
