#include "paths.h"

#include <climits>
#include <cstdio>
#include <cstdlib>
#include <fcntl.h>
#include <unistd.h>

namespace hb {

static bool read_link(const char *link, std::string *out) {
  char buf[PATH_MAX];
  ssize_t n = readlink(link, buf, sizeof buf - 1);
  if (n <= 0) return false;
  out->assign(buf, static_cast<size_t>(n));
  return true;
}

bool fd_path(int fd, std::string *out) {
  char link[64];
  std::snprintf(link, sizeof link, "/proc/self/fd/%d", fd);
  if (!read_link(link, out) || (*out)[0] != '/') return false;
  static const std::string deleted = " (deleted)";
  if (out->size() > deleted.size() && out->compare(out->size() - deleted.size(), deleted.size(), deleted) == 0)
    return false;
  return true;
}

bool resolve_at(int dirfd, const char *path, std::string *out) {
  if (!path || !*path) return false;
  std::string full;
  if (path[0] == '/') {
    full = path;
  } else {
    std::string base;
    if (dirfd == AT_FDCWD) {
      char cwd[PATH_MAX];
      if (!getcwd(cwd, sizeof cwd)) return false;
      base = cwd;
    } else if (!fd_path(dirfd, &base)) {
      return false;
    }
    full = join_path(base, path);
  }
  while (full.size() > 1 && full.back() == '/') full.pop_back();
  size_t slash = full.rfind('/');
  std::string parent = slash == 0 ? "/" : full.substr(0, slash);
  std::string last = full.substr(slash + 1);
  if (last == "." || last == ".." || last.empty()) {
    char real[PATH_MAX];
    if (!realpath(full.c_str(), real)) return false;
    *out = real;
    return true;
  }
  char real[PATH_MAX];
  if (!realpath(parent.c_str(), real)) return false;
  *out = join_path(real, last);
  return true;
}

bool path_inside(const std::string &path, const std::string &root, std::string *rel) {
  if (path == root) {
    if (rel) rel->clear();
    return true;
  }
  if (root == "/") {
    if (rel) *rel = path.substr(1);
    return path.size() > 1 && path[0] == '/';
  }
  if (path.size() > root.size() && path.compare(0, root.size(), root) == 0 && path[root.size()] == '/') {
    if (rel) *rel = path.substr(root.size() + 1);
    return true;
  }
  return false;
}

std::string join_path(const std::string &dir, const std::string &rel) {
  if (rel.empty()) return dir;
  if (dir.empty() || dir.back() == '/') return dir + rel;
  return dir + "/" + rel;
}

std::string base_name(const std::string &path) {
  size_t s = path.rfind('/');
  return s == std::string::npos ? path : path.substr(s + 1);
}

bool is_sqlite_shm(const std::string &path) {
  return path.size() > 4 && path.compare(path.size() - 4, 4, "-shm") == 0;
}

}  // namespace hb
