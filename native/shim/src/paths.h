// Absolute paths for the calls the shim mirrors, and containment with a '/' boundary.
#pragma once
#include <string>

namespace hb {

// The absolute path `path` names relative to dirfd (AT_FDCWD = the cwd): the parent
// directory resolved through symlinks, the last component kept as given (it may be a
// symlink, or not exist yet). False if it cannot be resolved.
bool resolve_at(int dirfd, const char *path, std::string *out);

// The current absolute path of an open fd (from /proc/self/fd); false if unknown or deleted.
bool fd_path(int fd, std::string *out);

// True when `path` is `root` or below it (`/data2` is not below `/data`); *rel gets the rest
// ("" for root itself, else "a/b").
bool path_inside(const std::string &path, const std::string &root, std::string *rel = nullptr);

std::string join_path(const std::string &dir, const std::string &rel);
std::string base_name(const std::string &path);

// SQLite's shared-memory index (`*-shm`) is memory-mapped by design and rebuilt from the
// database and WAL when opened, so backups neither copy nor mirror it.
bool is_sqlite_shm(const std::string &path);

}  // namespace hb
