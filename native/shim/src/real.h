// The real libc functions behind every wrapped name, resolved once with dlsym(RTLD_NEXT),
// and the backup side's own system calls (sys::), which go through a fault-injection layer
// so tests can make the k-th backup-side call of a kind fail.
#pragma once
#include <atomic>
#include <cstddef>
#include <cstdio>
#include <fcntl.h>
#include <sys/types.h>
#include <sys/uio.h>

namespace hb {

struct RealCalls {
#define WRAP(ret, name, params, args) ret(*name) params;
#define WRAP_VARIADIC(ret, name, params, args) ret(*name) params;
#include "interpose.def"
#undef WRAP
#undef WRAP_VARIADIC
};

// Starts as trampolines that resolve everything on first use, so calls made before the
// shim's constructor (from other libraries' constructors) still reach libc.
extern RealCalls real;
void resolve_real_calls();

// Kinds of backup-side calls, for fault injection and counting.
enum class Call { open, write, close, rename, unlink, mkdir, fsync, read, truncate, link, symlink, rmdir, count };
const char *call_name(Call c);
bool call_from_name(const char *name, Call *out);

namespace faults {
void arm(Call c, long nth, int err);  // nth 0 disarms
void reset_counts();
long count(Call c);
}  // namespace faults

// Backup-side system calls. Each returns like the libc call (-1 + errno on failure).
namespace sys {
int open(const char *path, int flags, mode_t mode = 0);
int openat(int dirfd, const char *path, int flags, mode_t mode = 0);
int close(int fd);
int open_quietly(const char *path, int flags);  // not counted, never fails on purpose
int close_quietly(int fd);                      // clean-up: never fails on purpose
ssize_t pread(int fd, void *buf, size_t n, off_t off);
ssize_t pwrite_all(int fd, const void *buf, size_t n, off_t off);  // loops; short = error
ssize_t copy_range(int infd, off_t off, int outfd, size_t n);        // copy_file_range at off→off
int ftruncate(int fd, off_t len);
int fallocate(int fd, int mode, off_t off, off_t len);
int fsync(int fd);
int rename(const char *from, const char *to, unsigned flags = 0);
int unlink(const char *path);
int rmdir(const char *path);
int mkdir(const char *path, mode_t mode);
int link(const char *from, const char *to);
int link_fd(int fd, const char *to);  // gives an open file one more name
int symlink(const char *target, const char *path);
}  // namespace sys

}  // namespace hb
