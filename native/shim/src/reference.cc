#include "reference.h"

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <dirent.h>
#include <fcntl.h>
#include <limits.h>
#include <sys/stat.h>
#include <unistd.h>

#include "paths.h"
#include "real.h"
#include "state.h"

namespace hb {

namespace {
constexpr size_t kBuf = 1 << 20;
constexpr size_t kPage = 4096;

std::string failure(const char *what, const std::string &path, int err) {
  return std::string(what) + " " + path + ": " + strerror(err);
}

std::string copy_file(const std::string &src, const std::string &dst, mode_t mode, void *buf) {
  int in = sys::open_quietly(src.c_str(), O_RDONLY | O_NOFOLLOW | O_CLOEXEC | O_DIRECT);
  bool direct = in >= 0;
  if (!direct) in = sys::open_quietly(src.c_str(), O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
  if (in < 0) return errno == ENOENT ? "" : failure("cannot read", src, errno);
  int out = sys::open(dst.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
  if (out < 0 || fchmod(out, mode & 07777) != 0) {  // the server's umask must not change the mode
    int e = errno;
    sys::close_quietly(in);
    if (out >= 0) sys::close_quietly(out);
    return failure("cannot create", dst, e);
  }
  std::string err;
  for (off_t off = 0;;) {
    ssize_t n = sys::pread(in, buf, kBuf, off);
    if (n < 0 && errno == EINVAL && direct) {  // the file system refuses direct reads after all
      sys::close_quietly(in);
      in = sys::open_quietly(src.c_str(), O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
      direct = false;
      if (in < 0) {
        err = failure("cannot read", src, errno);
        break;
      }
      continue;
    }
    if (n < 0) {
      err = failure("cannot read", src, errno);
      break;
    }
    if (n == 0) break;
    if (sys::pwrite_all(out, buf, static_cast<size_t>(n), off) < 0) {
      err = failure("cannot write", dst, errno);
      break;
    }
    off += n;
  }
  if (in >= 0) sys::close_quietly(in);
  if (sys::close(out) != 0 && err.empty()) err = failure("cannot close", dst, errno);
  return err;
}

std::string copy_tree(const std::string &src, const std::string &dst, void *buf) {
  struct stat st;
  if (lstat(src.c_str(), &st) != 0) return errno == ENOENT ? "" : failure("cannot stat", src, errno);
  if (S_ISREG(st.st_mode)) return copy_file(src, dst, st.st_mode, buf);
  if (S_ISLNK(st.st_mode)) {
    char target[PATH_MAX];
    ssize_t n = readlink(src.c_str(), target, sizeof target - 1);
    if (n < 0) return failure("cannot read link", src, errno);
    target[n] = 0;
    return sys::symlink(target, dst.c_str()) == 0 ? "" : failure("cannot create link", dst, errno);
  }
  if (!S_ISDIR(st.st_mode)) return "";  // sockets, FIFOs, devices: not data, not in the backup
  if (sys::mkdir(dst.c_str(), 0700) != 0 && errno != EEXIST) return failure("cannot create", dst, errno);
  DIR *d = opendir(src.c_str());
  if (!d) return failure("cannot list", src, errno);
  std::string err;
  while (struct dirent *e = readdir(d)) {
    if (!std::strcmp(e->d_name, ".") || !std::strcmp(e->d_name, "..") || is_sqlite_shm(e->d_name)) continue;
    err = copy_tree(join_path(src, e->d_name), join_path(dst, e->d_name), buf);
    if (!err.empty()) break;
  }
  closedir(d);
  if (err.empty() && chmod(dst.c_str(), st.st_mode & 07777) != 0) err = failure("cannot set the mode of", dst, errno);
  return err;
}
}  // namespace

std::string reference_dir_requested() {
  const char *dir = g_test_hooks ? getenv("HOTBACKUP_TEST_REFERENCE") : nullptr;
  return dir ? dir : "";
}

std::string copy_reference(const std::vector<std::string> &sources, const std::vector<std::string> &roots,
                           const std::string &ref) {
  if (ref.empty() || ref[0] != '/') return "the reference directory must be an absolute path: " + ref;
  if (sys::mkdir(ref.c_str(), 0700) != 0) return failure("cannot create the reference directory", ref, errno);
  void *buf = nullptr;
  if (posix_memalign(&buf, kPage, kBuf) != 0) return "cannot allocate the reference copy's buffer";
  std::string err;
  for (size_t i = 0; i < sources.size() && err.empty(); i++) err = copy_tree(sources[i], join_path(ref, roots[i]), buf);
  std::free(buf);
  return err;
}

}  // namespace hb
