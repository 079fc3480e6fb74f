#include "session.h"

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <dirent.h>
#include <fcntl.h>
#include <linux/fs.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "crc32c.h"
#include "json.h"
#include "paths.h"
#include "real.h"
#include "reference.h"
#include "state.h"

namespace hb {

namespace {
constexpr size_t kMaxChunk = 1 << 20;
constexpr size_t kPage = 4096;
constexpr const char *kManifest = "hotbackup_manifest.json";

double steady_seconds() {
  return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

bool lexists(const std::string &p) {
  struct stat st;
  return lstat(p.c_str(), &st) == 0;
}


// Modes are preserved, except that nothing in a backup is world-writable.
mode_t backup_mode(mode_t m) { return m & 07777 & ~static_cast<mode_t>(S_IWOTH); }

std::vector<std::string> list_dir(const std::string &path, int *err) {
  std::vector<std::string> names;
  DIR *d = opendir(path.c_str());
  if (!d) {
    *err = errno;
    return names;
  }
  *err = 0;
  while (struct dirent *e = readdir(d)) {
    if (std::strcmp(e->d_name, ".") == 0 || std::strcmp(e->d_name, "..") == 0) continue;
    names.emplace_back(e->d_name);
  }
  closedir(d);
  std::sort(names.begin(), names.end());
  return names;
}

std::atomic<uint64_t> g_next_session_id{1};
}  // namespace

int64_t now_ms() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::system_clock::now().time_since_epoch())
      .count();
}

std::string errno_code(int err) {
  const char *name = strerrorname_np(err);
  return name ? name : "E" + std::to_string(err);
}

const char *state_name(State s) {
  switch (s) {
    case State::copying: return "copying";
    case State::finishing: return "finishing";
    case State::done: return "done";
    case State::failed: return "failed";
    case State::cancelled: return "cancelled";
  }
  return "unknown";
}

// ---------------------------------------------------------------------------------------
// Creation and validation

namespace {
bool validation_error(SessionError *err, const char *code, const std::string &message, const std::string &path) {
  *err = SessionError{code, message, path};
  return false;
}

// Writable shared mappings of files under the sources cannot be mirrored.
bool find_shared_mapping(const std::vector<std::string> &sources, std::string *path) {
  int fd = sys::open_quietly("/proc/self/maps", O_RDONLY | O_CLOEXEC);
  if (fd < 0) return false;
  std::string text;
  char buf[65536];
  ssize_t n;
  while ((n = read(fd, buf, sizeof buf)) > 0) text.append(buf, static_cast<size_t>(n));
  sys::close_quietly(fd);
  size_t pos = 0;
  while (pos < text.size()) {
    size_t eol = text.find('\n', pos);
    if (eol == std::string::npos) eol = text.size();
    std::string line = text.substr(pos, eol - pos);
    pos = eol + 1;
    // address perms offset dev inode path
    size_t sp1 = line.find(' ');
    if (sp1 == std::string::npos || sp1 + 5 > line.size()) continue;
    std::string perms = line.substr(sp1 + 1, 4);
    if (perms[1] != 'w' || perms[3] != 's') continue;
    size_t slash = line.find('/');
    if (slash == std::string::npos) continue;
    std::string file = line.substr(slash);
    if (is_sqlite_shm(file)) continue;
    for (auto &s : sources)
      if (path_inside(file, s)) {
        *path = file;
        return true;
      }
  }
  return false;
}
}  // namespace

std::unique_ptr<Session> Session::create(const StartRequest &req, SessionError *err) {
  std::unique_ptr<Session> s(new Session());
  if (req.sources.empty()) {
    validation_error(err, "bad_request", "no source directory given", "");
    return nullptr;
  }
  for (auto &src : req.sources) {
    char real_path[PATH_MAX];
    struct stat st;
    if (src.empty() || src[0] != '/') {
      validation_error(err, "bad_path", "source must be an absolute path: " + src, src);
      return nullptr;
    }
    if (!realpath(src.c_str(), real_path) || stat(real_path, &st) != 0) {
      validation_error(err, "source_missing", "source directory does not exist: " + src, src);
      return nullptr;
    }
    if (!S_ISDIR(st.st_mode)) {
      validation_error(err, "bad_path", "source is not a directory: " + src, src);
      return nullptr;
    }
    s->sources_.push_back(real_path);
  }
  for (size_t i = 0; i < s->sources_.size(); i++)
    for (size_t j = 0; j < s->sources_.size(); j++)
      if (i != j && path_inside(s->sources_[i], s->sources_[j])) {
        validation_error(err, "bad_path", "source " + s->sources_[i] + " is inside source " + s->sources_[j],
                         s->sources_[i]);
        return nullptr;
      }

  // The destination: an empty directory, or one we may create; never a symlink.
  const std::string &dest = req.dest;
  if (dest.empty() || dest[0] != '/') {
    validation_error(err, "bad_path", "destination must be an absolute path: " + dest, dest);
    return nullptr;
  }
  std::string existing = dest, missing;
  while (existing.size() > 1 && existing.back() == '/') existing.pop_back();
  struct stat st;
  while (lstat(existing.c_str(), &st) != 0) {
    if (errno != ENOENT) {
      validation_error(err, "bad_path", "cannot use destination " + dest + ": " + strerror(errno), existing);
      return nullptr;
    }
    size_t slash = existing.rfind('/');
    missing = existing.substr(slash + 1) + (missing.empty() ? "" : "/" + missing);
    existing = slash == 0 ? "/" : existing.substr(0, slash);
  }
  if (S_ISLNK(st.st_mode) && missing.empty()) {
    validation_error(err, "bad_path", "destination is a symlink (not followed): " + dest, dest);
    return nullptr;
  }
  char real_existing[PATH_MAX];
  if (!realpath(existing.c_str(), real_existing) || stat(real_existing, &st) != 0 || !S_ISDIR(st.st_mode)) {
    validation_error(err, "bad_path", "destination is not a directory: " + existing, existing);
    return nullptr;
  }
  std::string dest_real = join_path(real_existing, missing);
  for (auto &src : s->sources_) {
    if (path_inside(dest_real, src)) {
      validation_error(err, "dest_in_source", "destination " + dest + " is inside source " + src, dest);
      return nullptr;
    }
    if (path_inside(src, dest_real)) {
      validation_error(err, "source_in_dest", "source " + src + " is inside destination " + dest, src);
      return nullptr;
    }
  }
  if (missing.empty()) {
    int e = 0;
    auto names = list_dir(dest_real, &e);
    if (e) {
      validation_error(err, errno_code(e).c_str(), "cannot read destination " + dest + ": " + strerror(e), dest);
      return nullptr;
    }
    if (!names.empty()) {
      validation_error(err, "dest_not_empty", "destination is not empty: " + dest + " (holds " + names[0] + ")", dest);
      return nullptr;
    }
  }
  std::string shared;
  if (find_shared_mapping(s->sources_, &shared)) {
    validation_error(err, "mmap_write",
                     "the server has a shared writable memory mapping of " + shared +
                         "; writes through it cannot be mirrored (e.g. MariaDB's redo log on tmpfs/PMEM, "
                         "or myisam_use_mmap=ON)",
                     shared);
    return nullptr;
  }
  if (!missing.empty()) {
    // Create the missing components, private until the backup fills them.
    std::string p = real_existing;
    size_t start = 0;
    while (start <= missing.size()) {
      size_t slash = missing.find('/', start);
      if (slash == std::string::npos) slash = missing.size();
      p = join_path(p, missing.substr(start, slash - start));
      if (real.mkdir(p.c_str(), 0700) != 0 && errno != EEXIST) {
        validation_error(err, errno_code(errno).c_str(), "cannot create destination " + p + ": " + strerror(errno), p);
        return nullptr;
      }
      start = slash + 1;
    }
    s->created_dest_ = true;
  }
  if (access(dest_real.c_str(), W_OK) != 0) {
    validation_error(err, errno_code(errno).c_str(), "destination is not writable: " + dest, dest);
    if (s->created_dest_) real.rmdir(dest_real.c_str());
    return nullptr;
  }
  s->dest_ = dest_real;

  // One source: DEST mirrors it. Several: DEST/<basename>, made unique.
  std::set<std::string> used;
  for (auto &src : s->sources_) {
    if (s->sources_.size() == 1) {
      s->dst_roots_.push_back(s->dest_);
      break;
    }
    std::string name = src == "/" ? "root" : base_name(src);
    if (name.compare(0, 10, "hotbackup_") == 0) name = "src_" + name;
    std::string unique = name;
    for (int k = 2; used.count(unique); k++) unique = name + "-" + std::to_string(k);
    used.insert(unique);
    s->dst_roots_.push_back(join_path(s->dest_, unique));
  }
  s->reference_ = reference_dir_requested();
  s->id_ = g_next_session_id++;
  s->throttle_.set_rate(req.throttle);
  s->started_at_ = now_ms();
  s->capturing_ = true;
  faults::reset_counts();
  return s;
}

Session::~Session() { join(); }

void Session::start_copier() {
  {
    std::lock_guard<std::mutex> g(mu_);  // captures may enqueue already
    for (size_t i = 0; i < sources_.size(); i++) queue_.push_back(Job{i, ""});
  }
  thread_started_ = true;
  // Detached: a finished copier must not linger as an unjoined thread; join() waits for
  // the flag it sets last, under the lock, after which it touches nothing of the session.
  spawn_quiet_thread([this] {
    run();
    std::lock_guard<std::mutex> g(mu_);
    thread_done_ = true;
    cv_.notify_all();
  }).detach();
}

void Session::join() {
  std::unique_lock<std::mutex> g(mu_);
  cv_.wait(g, [&] { return !thread_started_ || thread_done_; });
}

// ---------------------------------------------------------------------------------------
// State, status, control

State Session::state() {
  std::lock_guard<std::mutex> g(mu_);
  return state_;
}

bool Session::terminal() {
  State s = state();
  return s == State::done || s == State::failed || s == State::cancelled;
}

bool Session::stopped() { return stop_.load(std::memory_order_acquire); }

void Session::fail(const std::string &code, const std::string &message, const std::string &path) {
  {
    std::lock_guard<std::mutex> g(mu_);
    if (has_error_ || stop_ || (state_ != State::copying && state_ != State::finishing)) return;
    has_error_ = true;
    error_ = SessionError{code, message, path};
    stop_as_ = State::failed;
    stop_ = true;
    state_ = State::finishing;  // "failed" once the partial destination is gone
    capturing_ = false;
    g_capturing = false;
  }
  cv_.notify_all();
  throttle_.wake();
}

void Session::fail_errno(int err, const std::string &what, const std::string &path) {
  fail(errno_code(err), what + " " + path + ": " + strerror(err), path);
}

void Session::cancel() {
  {
    std::lock_guard<std::mutex> g(mu_);
    if (stop_ || (state_ != State::copying && state_ != State::finishing)) return;
    stop_as_ = State::cancelled;
    stop_ = true;
    state_ = State::finishing;  // "cancelled" once the partial destination is gone
    capturing_ = false;
    g_capturing = false;
  }
  cv_.notify_all();
  throttle_.wake();
}

void Session::set_throttle(uint64_t bytes_per_sec) { throttle_.set_rate(bytes_per_sec); }

void Session::arm_pause(const std::string &point, bool on) {
  {
    std::lock_guard<std::mutex> g(mu_);
    if (on) armed_.insert(point);
    else armed_.erase(point);
  }
  cv_.notify_all();
}

std::string Session::paused_json() {
  std::lock_guard<std::mutex> g(mu_);
  json::ObjectWriter w;
  w.field("ok", true);
  if (paused_.empty()) w.null("paused").null("paused_path");
  else w.field("paused", paused_).field("paused_path", paused_path_);
  return w.done();
}

void Session::pause(const char *point, const std::string &path) {
  std::unique_lock<std::mutex> g(mu_);
  if (!armed_.count(point)) return;
  paused_ = point;
  paused_path_ = path;
  cv_.wait(g, [&] { return !armed_.count(point) || stop_; });
  paused_.clear();
  paused_path_.clear();
}

std::string Session::status_json() {
  std::lock_guard<std::mutex> g(mu_);
  json::ObjectWriter w;
  w.field("state", state_name(state_)).field("dest", dest_).raw("sources", json::string_array(sources_));
  uint64_t total = bytes_total_, copied = bytes_copied_;
  w.field("bytes_total", total).field("bytes_copied", copied).field("bytes_mirrored", bytes_mirrored_.load());
  w.field("files_total", files_total_.load()).field("files_copied", files_copied_.load());
  w.field("throttle_bytes_per_sec", throttle_.rate());
  double rate = 0;
  if (state_ == State::copying && rate_samples_.size() >= 2) {
    auto &a = rate_samples_.front();
    auto &b = rate_samples_.back();
    double span = std::max(b.first - a.first, steady_seconds() - a.first);
    if (span > 0.2) rate = static_cast<double>(b.second - a.second) / span;
  }
  w.field("rate_bytes_per_sec", static_cast<uint64_t>(rate));
  if (state_ == State::done) w.field("eta_seconds", 0.0);
  else if (state_ == State::copying && totals_known_ && rate > 0)
    w.field("eta_seconds", static_cast<double>(total > copied ? total - copied : 0) / rate);
  else w.null("eta_seconds");
  w.field("started_at", started_at_);
  if (cut_at_) w.field("cut_at", cut_at_); else w.null("cut_at");
  if (finished_at_) w.field("finished_at", finished_at_); else w.null("finished_at");
  if (cut_stall_us_ >= 0) w.field("cut_stall_us", cut_stall_us_); else w.null("cut_stall_us");
  if (has_error_ || stop_as_ == State::cancelled) {
    SessionError e = has_error_ ? error_ : SessionError{"cancelled", "the backup was cancelled", ""};
    json::ObjectWriter ew;
    ew.field("code", e.code).field("message", e.message);
    if (e.path.empty()) ew.null("path"); else ew.field("path", e.path);
    w.raw("error", ew.done());
  } else {
    w.null("error");
  }
  w.field("pid", static_cast<int64_t>(getpid()));
  if (manifest_path_.empty()) w.null("manifest"); else w.field("manifest", manifest_path_);
  return w.done();
}

// ---------------------------------------------------------------------------------------
// Paths and the work queue

bool Session::map(const std::string &abs, size_t *idx, std::string *rel) const {
  if (is_sqlite_shm(abs)) return false;
  for (size_t i = 0; i < sources_.size(); i++)
    if (path_inside(abs, sources_[i], rel)) {
      *idx = i;
      return true;
    }
  return false;
}

std::string Session::dst_path(size_t idx, const std::string &rel) const { return join_path(dst_roots_[idx], rel); }

std::vector<std::string> Session::relative_roots() const {
  std::vector<std::string> roots;
  for (auto &r : dst_roots_) {
    std::string rel;
    path_inside(r, dest_, &rel);
    roots.push_back(rel);
  }
  return roots;
}

void Session::enqueue(size_t idx, const std::string &rel) {
  std::lock_guard<std::mutex> g(mu_);
  queue_.push_back(Job{idx, rel});
}

// ---------------------------------------------------------------------------------------
// The copier

void Session::run() {
  t_state.internal = true;
  pause("copy_start");
  count_totals();
  for (;;) {
    for (;;) {
      Job job;
      {
        std::lock_guard<std::mutex> g(mu_);
        if (queue_.empty() || state_ != State::copying) break;
        job = queue_.front();
        queue_.pop_front();
      }
      process(job);
    }
    if (stopped()) break;
    pause("cut");
    if (stopped() || take_cut()) break;
  }
  if (!stopped() && seal()) {
    std::lock_guard<std::mutex> g(mu_);
    if (state_ == State::finishing && !stop_) {
      state_ = State::done;
      finished_at_ = now_ms();
      return;
    }
  }
  cleanup_failed();
}

void Session::count_totals() {
  uint64_t bytes = 0, count = 0;
  std::vector<std::string> dirs(sources_.begin(), sources_.end());
  while (!dirs.empty() && !stopped()) {
    std::string dir = dirs.back();
    dirs.pop_back();
    int e;
    for (auto &name : list_dir(dir, &e)) {
      std::string p = join_path(dir, name);
      struct stat st;
      if (lstat(p.c_str(), &st) != 0) continue;
      if (S_ISDIR(st.st_mode)) dirs.push_back(p);
      else if (S_ISREG(st.st_mode) && !is_sqlite_shm(p)) {
        bytes += static_cast<uint64_t>(st.st_size);
        count++;
      }
    }
  }
  bytes_total_ = bytes;
  files_total_ = count;
  totals_known_ = true;
}

std::shared_ptr<DstFile> Session::create_dst(FileObj &f, const std::string &dst, mode_t mode) {
  int fd = sys::open(dst.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
  if (fd < 0) {
    if (errno != ENOENT) fail_errno(errno, "cannot create backup file", dst);
    return nullptr;  // ENOENT: its directory is not in the backup yet; the copier reaches it later
  }
  if (fchmod(fd, backup_mode(mode)) != 0) {
    fail_errno(errno, "cannot set the mode of backup file", dst);
    sys::close_quietly(fd);
    return nullptr;
  }
  auto d = std::make_shared<DstFile>();
  d->fd = fd;
  d->session = id_;
  struct stat dst_st;
  if (fstat(fd, &dst_st) == 0) d->ino = dst_st.st_ino;
  {
    std::lock_guard<std::mutex> g(f.mu);
    f.dst = d;
  }
  std::lock_guard<std::mutex> g(mu_);
  dsts_.push_back(d);
  return d;
}

void Session::process(const Job &job) {
  std::string src = join_path(sources_[job.src], job.rel);
  std::string dst = dst_path(job.src, job.rel);
  if (is_sqlite_shm(src)) return;
  std::unique_lock<std::mutex> ns(ns_mu_);
  struct stat st;
  if (lstat(src.c_str(), &st) != 0) return;  // gone: whatever replaced it was queued by capture
  if (S_ISDIR(st.st_mode)) {
    if (sys::mkdir(dst.c_str(), 0700) == 0 || errno == EEXIST) {
      if (chmod(dst.c_str(), backup_mode(st.st_mode)) != 0 && job.rel.empty() && errno != EPERM) {
        fail_errno(errno, "cannot set the mode of backup directory", dst);
        return;
      }
    } else {
      if (errno != ENOENT) fail_errno(errno, "cannot create backup directory", dst);
      return;
    }
    ns.unlock();
    int e;
    auto names = list_dir(src, &e);
    if (e && e != ENOENT) {
      fail_errno(e, "cannot read source directory", src);
      return;
    }
    std::lock_guard<std::mutex> g(mu_);
    for (auto &n : names) queue_.push_back(Job{job.src, join_path(job.rel, n)});
    return;
  }
  if (S_ISLNK(st.st_mode)) {
    if (lexists(dst)) return;
    char target[PATH_MAX];
    ssize_t n = readlink(src.c_str(), target, sizeof target - 1);
    if (n < 0) return;
    target[n] = 0;
    if (sys::symlink(target, dst.c_str()) != 0 && errno != ENOENT && errno != EEXIST)
      fail_errno(errno, "cannot create backup symlink", dst);
    return;
  }
  if (!S_ISREG(st.st_mode)) return;  // sockets, fifos, devices are not data

  int srcfd = sys::open(src.c_str(), O_RDONLY | O_NOFOLLOW | O_CLOEXEC | O_NOCTTY);
  if (srcfd < 0) {
    if (errno != ENOENT && errno != ELOOP) fail_errno(errno, "cannot read source file", src);
    return;
  }
  struct stat fst;
  fstat(srcfd, &fst);
  if (lexists(dst)) {  // created or moved there by capture, and mirrored since
    sys::close_quietly(srcfd);
    return;
  }
  auto f = files().file(Identity{fst.st_dev, fst.st_ino});
  {
    std::lock_guard<std::mutex> g(mu_);
    attached_.push_back(f);
  }
  if (auto existing = f->mirror()) {
    struct stat dst_st;
    if (fstat(existing->fd, &dst_st) == 0 && dst_st.st_nlink > 0) {
      // Another name of a file already in the backup: a hard link there too.
      if (sys::link_fd(existing->fd, dst.c_str()) != 0 && errno != ENOENT && errno != EEXIST)
        fail_errno(errno, "cannot link backup file", dst);
      sys::close_quietly(srcfd);
      files_copied_++;
      return;
    }
  }
  auto d = create_dst(*f, dst, fst.st_mode);
  if (!d) {
    sys::close_quietly(srcfd);
    return;
  }
  ns.unlock();
  // Read around the page cache where the file system allows it: a server writing with
  // O_DIRECT (InnoDB) and a copier reading through the cache are not coherent in Linux, and a
  // stale cached page copied after a mirrored write would put old bytes back in the backup.
  char proc[64];
  std::snprintf(proc, sizeof proc, "/proc/self/fd/%d", srcfd);
  int directfd = sys::open_quietly(proc, O_RDONLY | O_DIRECT | O_CLOEXEC);
  // The size after attaching: every write that did not see the mirror finished before this.
  fstat(srcfd, &fst);
  copy_chunks(*f, srcfd, directfd, *d, fst.st_size, src);  // closes directfd
  if (sys::close(srcfd) != 0) fail_errno(errno, "cannot close source file", src);
  files_copied_++;
}

namespace {
// Pages of [off, off+n) that are not in the page cache now, so that only what the copier
// itself brings in is dropped again (the server's cached pages stay).
std::vector<unsigned char> residency(int fd, off_t off, size_t n) {
  std::vector<unsigned char> vec;
  void *p = real.mmap(nullptr, n, PROT_READ, MAP_SHARED, fd, off);
  if (p == MAP_FAILED) return vec;
  vec.resize((n + kPage - 1) / kPage);
  if (mincore(p, n, vec.data()) != 0) vec.clear();
  munmap(p, n);
  return vec;
}

void drop_copier_pages(int fd, off_t off, const std::vector<unsigned char> &resident) {
  size_t i = 0;
  while (i < resident.size()) {
    if (resident[i] & 1) {
      i++;
      continue;
    }
    size_t j = i;
    while (j < resident.size() && !(resident[j] & 1)) j++;
    posix_fadvise(fd, off + static_cast<off_t>(i * kPage), static_cast<off_t>((j - i) * kPage), POSIX_FADV_DONTNEED);
    i = j;
  }
}
}  // namespace

namespace {
struct AlignedBuffer {
  explicit AlignedBuffer(size_t n) {
    if (posix_memalign(&p, kPage, n) != 0) p = nullptr;
  }
  ~AlignedBuffer() { std::free(p); }
  AlignedBuffer(const AlignedBuffer &) = delete;
  AlignedBuffer &operator=(const AlignedBuffer &) = delete;
  void *p = nullptr;
};
}  // namespace

// The copier's running checksum of what it wrote, while it writes in order from offset 0.
void Session::note_copied(DstFile &dst, off_t off, const void *buf, size_t n) {
  if (!dst.crc_valid || static_cast<uint64_t>(off) != dst.crc_len) {
    dst.crc_valid = false;
    return;
  }
  dst.crc = crc32c_update(dst.crc, buf, n);
  dst.crc_len += n;
}

bool Session::copy_chunks(FileObj &f, int srcfd, int directfd, DstFile &dst, off_t size, const std::string &path) {
  struct CloseDirect {  // the direct descriptor is this function's, whatever the way out
    int &fd;
    ~CloseDirect() {
      if (fd >= 0) sys::close_quietly(fd);
    }
  } close_direct{directfd};
  std::vector<char> buf;
  AlignedBuffer abuf(directfd >= 0 ? kMaxChunk : 0);
  if (!abuf.p && directfd >= 0) {
    sys::close_quietly(directfd);
    directfd = -1;
  }
  off_t off = 0;
  while (off < size) {
    if (stopped()) return false;
    size_t n = std::min<size_t>(throttle_.chunk_size(kMaxChunk), static_cast<size_t>(size - off));
    n = std::max<size_t>(n / kPage * kPage, std::min<size_t>(kPage, static_cast<size_t>(size - off)));
    if (!throttle_.acquire(n, [this] { return stopped(); })) return false;
    ssize_t done = -1;
    std::vector<unsigned char> resident;
    {
      RangeGuard g(f.ranges, off, off + static_cast<off_t>(n));
      if (directfd >= 0) {
        // Whole pages (the file's tail reads short); only the chunk's n bytes are used.
        size_t want = (n + kPage - 1) / kPage * kPage;
        done = sys::pread(directfd, abuf.p, want, off);
        if (done < 0 && errno == EINVAL) {  // this file system refuses direct reads after all
          sys::close_quietly(directfd);
          directfd = -1;
        } else if (done < 0) {
          fail_errno(errno, "cannot read source file", path);
          return false;
        } else {
          done = std::min<ssize_t>(done, static_cast<ssize_t>(n));
          pause("chunk", path);
          if (done > 0 && sys::pwrite_all(dst.fd, abuf.p, static_cast<size_t>(done), off) < 0) {
            fail_errno(errno, "cannot write backup file of", path);
            return false;
          }
          note_copied(dst, off, abuf.p, static_cast<size_t>(done));
        }
      }
      if (directfd < 0) resident = residency(srcfd, off, n);
      bool pausing;
      {
        std::lock_guard<std::mutex> lg(mu_);
        pausing = armed_.count("chunk") > 0;
      }
      if (directfd < 0 && copy_file_range_ok_ && !pausing) {
        done = sys::copy_range(srcfd, off, dst.fd, n);
        dst.crc_valid = false;  // the kernel copied it: the seal reads the file back
        if (done < 0 && (errno == EXDEV || errno == EINVAL || errno == ENOSYS || errno == EOPNOTSUPP)) {
          copy_file_range_ok_ = false;
        } else if (done < 0) {
          fail_errno(errno, "cannot copy", path);
          return false;
        }
      }
      if (directfd < 0 && done < 0) {
        buf.resize(n);
        done = sys::pread(srcfd, buf.data(), n, off);
        if (done < 0) {
          fail_errno(errno, "cannot read source file", path);
          return false;
        }
        pause("chunk", path);
        if (done > 0 && sys::pwrite_all(dst.fd, buf.data(), static_cast<size_t>(done), off) < 0) {
          fail_errno(errno, "cannot write backup file of", path);
          return false;
        }
        note_copied(dst, off, buf.data(), static_cast<size_t>(done));
      }
    }
    if (done == 0) break;  // the file shrank; what remains is mirrored
    drop_copier_pages(srcfd, off, resident);  // buffered reads only: direct ones cache nothing
    sync_file_range(dst.fd, off, done, SYNC_FILE_RANGE_WRITE);  // keeps dirty memory bounded
    off += done;
    bytes_copied_ += static_cast<uint64_t>(done);
    std::lock_guard<std::mutex> g(mu_);
    double t = steady_seconds();
    if (rate_samples_.empty() || t - rate_samples_.back().first > 0.1) rate_samples_.emplace_back(t, bytes_copied_);
    while (rate_samples_.size() > 2 && t - rate_samples_.front().first > 3.0) rate_samples_.pop_front();
  }
  return true;
}

bool Session::copy_whole(FileObj &f, int srcfd, DstFile &dst) {
  dst.changed = true;
  struct stat st;
  if (fstat(srcfd, &st) != 0) return false;
  std::vector<char> buf(kMaxChunk);
  off_t off = 0;
  while (off < st.st_size) {
    ssize_t n = sys::pread(srcfd, buf.data(), buf.size(), off);
    if (n < 0) {
      fail_errno(errno, "cannot read source file", "");
      return false;
    }
    if (n == 0) break;
    if (sys::pwrite_all(dst.fd, buf.data(), static_cast<size_t>(n), off) < 0) {
      fail_errno(errno, "cannot write backup file", "");
      return false;
    }
    bytes_mirrored_ += static_cast<uint64_t>(n);
    off += n;
  }
  if (sys::ftruncate(dst.fd, off) != 0) {
    fail_errno(errno, "cannot truncate backup file", "");
    return false;
  }
  return true;
}

bool Session::take_cut() {
  auto t0 = std::chrono::steady_clock::now();
  pthread_rwlock_wrlock(&g_barrier);
  bool cut;
  {
    std::lock_guard<std::mutex> g(mu_);
    cut = queue_.empty() && state_ == State::copying;
  }
  // The reference is copied while the flag is still on: every mutating call that starts now
  // takes the capture path and waits at the barrier, so the sources hold still.
  std::string reference_error;
  if (cut && !reference_.empty()) reference_error = copy_reference(sources_, relative_roots(), reference_);
  if (cut) {
    std::lock_guard<std::mutex> g(mu_);
    capturing_ = false;
    g_capturing = false;
    cut_at_ = now_ms();
    state_ = State::finishing;
  }
  pthread_rwlock_unlock(&g_barrier);
  if (!reference_error.empty()) fail("test_reference", reference_error, reference_);
  if (cut) {
    auto us = std::chrono::duration_cast<std::chrono::microseconds>(std::chrono::steady_clock::now() - t0).count();
    std::lock_guard<std::mutex> g(mu_);
    cut_stall_us_ = us;
  }
  return cut;
}

// ---------------------------------------------------------------------------------------
// Seal: make the backup durable, then write the manifest last.

namespace {
struct Entry {
  std::string rel, type, target;
  uint64_t size = 0;
  mode_t mode = 0;
  uint32_t crc = 0;
};

std::string hex32(uint32_t v) {
  char buf[16];
  std::snprintf(buf, sizeof buf, "%08x", v);
  return buf;
}
}  // namespace

// CRC32C of a backup file as it is on disk after the fsync, so the manifest describes
// exactly what was made durable. Read after the cut: the barrier is not held.
bool Session::checksum(const std::string &path, uint32_t *crc) {
  int fd = sys::open(path.c_str(), O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
  if (fd < 0) {
    fail_errno(errno, "cannot read back backup file", path);
    return false;
  }
  std::vector<char> buf(kMaxChunk);
  uint32_t c = 0;
  off_t off = 0;
  for (;;) {
    ssize_t n = sys::pread(fd, buf.data(), buf.size(), off);
    if (n < 0) {
      fail_errno(errno, "cannot read back backup file", path);
      sys::close_quietly(fd);
      return false;
    }
    if (n == 0) break;
    c = crc32c_update(c, buf.data(), static_cast<size_t>(n));
    off += n;
  }
  posix_fadvise(fd, 0, 0, POSIX_FADV_DONTNEED);
  sys::close_quietly(fd);
  *crc = c;
  return true;
}

// After capture has stopped: no file leads to this session's backup copies any more; returns
// the copies, still open, for the caller to seal or discard.
std::vector<std::shared_ptr<DstFile>> Session::detach_mirrors() {
  std::vector<std::shared_ptr<FileObj>> attached;
  std::vector<std::shared_ptr<DstFile>> dsts;
  {
    std::lock_guard<std::mutex> g(mu_);
    attached.swap(attached_);
    dsts.swap(dsts_);
  }
  for (auto &f : attached) {
    std::lock_guard<std::mutex> g(f->mu);
    if (f->dst && f->dst->session == id_) f->dst.reset();
  }
  return dsts;
}

bool Session::seal() {
  std::vector<std::shared_ptr<DstFile>> dsts = detach_mirrors();
  // Checksums the copier computed for files nothing else wrote, by backup inode.
  std::map<ino_t, uint32_t> known_crc;
  std::map<ino_t, uint64_t> known_len;
  for (auto &d : dsts)
    if (d->crc_valid && !d->changed) {
      known_crc[d->ino] = d->crc;
      known_len[d->ino] = d->crc_len;
    }
  bool ok = true;
  for (auto &d : dsts) {
    if (d->fd < 0) continue;
    if (ok && sys::fsync(d->fd) != 0) {
      fail_errno(errno, "cannot fsync backup file in", dest_);
      ok = false;
    }
    if (ok) posix_fadvise(d->fd, 0, 0, POSIX_FADV_DONTNEED);
    if (sys::close(d->fd) != 0 && ok) {
      fail_errno(errno, "cannot close backup file in", dest_);
      ok = false;
    }
    d->fd = -1;
  }
  if (!ok) return false;

  // Walk the backup: fsync every directory, list every entry for the manifest.
  std::vector<Entry> entries;
  std::vector<std::string> dirs{""};
  while (!dirs.empty()) {
    std::string rel = dirs.back();
    dirs.pop_back();
    std::string abs = join_path(dest_, rel);
    int dfd = sys::open(abs.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC | O_NOFOLLOW);
    if (dfd < 0) {
      fail_errno(errno, "cannot open backup directory", abs);
      return false;
    }
    int fr = sys::fsync(dfd), fe = errno;
    if (sys::close(dfd) != 0 || fr != 0) {
      fail_errno(fr != 0 ? fe : errno, "cannot fsync backup directory", abs);
      return false;
    }
    int e;
    for (auto &name : list_dir(abs, &e)) {
      if (rel.empty() && name.compare(0, 10, "hotbackup_") == 0) continue;
      Entry en;
      en.rel = join_path(rel, name);
      struct stat st;
      if (lstat(join_path(dest_, en.rel).c_str(), &st) != 0) continue;
      en.mode = st.st_mode & 07777;
      if (S_ISDIR(st.st_mode)) {
        en.type = "dir";
        dirs.push_back(en.rel);
      } else if (S_ISLNK(st.st_mode)) {
        en.type = "symlink";
        char t[PATH_MAX];
        ssize_t n = readlink(join_path(dest_, en.rel).c_str(), t, sizeof t - 1);
        en.target.assign(t, n > 0 ? static_cast<size_t>(n) : 0);
      } else {
        en.type = "file";
        en.size = static_cast<uint64_t>(st.st_size);
        auto k = known_crc.find(st.st_ino);
        if (k != known_crc.end() && known_len[st.st_ino] == en.size) en.crc = k->second;
        else if (!checksum(join_path(dest_, en.rel), &en.crc)) return false;  // changed by capture
      }
      entries.push_back(en);
    }
  }
  std::sort(entries.begin(), entries.end(), [](const Entry &a, const Entry &b) { return a.rel < b.rel; });

  std::string srcs = "[";
  std::vector<std::string> roots = relative_roots();
  for (size_t i = 0; i < sources_.size(); i++) {
    json::ObjectWriter w;
    w.field("path", sources_[i]).field("dest", roots[i].empty() ? "." : roots[i]);
    srcs += (i ? "," : "") + w.done();
  }
  srcs += "]";
  std::string list = "[";
  for (size_t i = 0; i < entries.size(); i++) {
    json::ObjectWriter w;
    w.field("path", entries[i].rel).field("type", entries[i].type).field("mode", static_cast<int64_t>(entries[i].mode));
    if (entries[i].type == "file") w.field("size", entries[i].size).field("crc32c", hex32(entries[i].crc));
    if (entries[i].type == "symlink") w.field("target", entries[i].target);
    list += (i ? ",\n  " : "\n  ") + w.done();
  }
  list += "\n]";
  int64_t finished = now_ms();
  json::ObjectWriter m;
  m.field("format", "hotbackup-manifest-1").field("pid", static_cast<int64_t>(getpid())).raw("sources", srcs);
  m.field("started_at", started_at_).field("cut_at", cut_at_).field("finished_at", finished);
  m.field("cut_stall_us", cut_stall_us_).field("bytes_copied", bytes_copied_.load());
  m.field("bytes_mirrored", bytes_mirrored_.load()).field("files", static_cast<uint64_t>(entries.size()));
  m.raw("entries", list);
  // The manifest's own checksum covers every byte before its field (docs/manifest.md).
  std::string text = m.done();
  text.pop_back();
  text += ",\"manifest_crc32c\":\"" + hex32(crc32c_update(0, text.data(), text.size())) + "\"}\n";

  std::string tmp = join_path(dest_, std::string(kManifest) + ".tmp");
  std::string final_path = join_path(dest_, kManifest);
  int fd = sys::open(tmp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0644);
  if (fd < 0) {
    fail_errno(errno, "cannot create manifest", tmp);
    return false;
  }
  bool wrote = sys::pwrite_all(fd, text.data(), text.size(), 0) >= 0 && sys::fsync(fd) == 0;
  int we = errno;
  if (sys::close(fd) != 0 && wrote) {
    wrote = false;
    we = errno;
  }
  if (!wrote) {
    fail_errno(we, "cannot write manifest", tmp);
    return false;
  }
  if (stopped()) return false;
  if (sys::rename(tmp.c_str(), final_path.c_str()) != 0) {
    fail_errno(errno, "cannot rename manifest into place", final_path);
    return false;
  }
  int dfd = sys::open(dest_.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  bool synced = dfd >= 0 && sys::fsync(dfd) == 0;
  int se = errno;
  if (dfd >= 0 && sys::close(dfd) != 0 && synced) {
    synced = false;
    se = errno;
  }
  if (!synced) {
    fail_errno(se, "cannot fsync", dest_);
    return false;
  }
  std::lock_guard<std::mutex> g(mu_);
  manifest_path_ = final_path;
  return true;
}

// ---------------------------------------------------------------------------------------
// Failure: stop capture, then remove what was written.

namespace {
void remove_tree_quietly(const std::string &path) {
  struct stat st;
  if (lstat(path.c_str(), &st) != 0) return;
  if (S_ISDIR(st.st_mode)) {
    int e;
    for (auto &n : list_dir(path, &e)) remove_tree_quietly(join_path(path, n));
    real.rmdir(path.c_str());
  } else {
    real.unlink(path.c_str());
  }
}
}  // namespace

void Session::cleanup_failed() {
  // Drain captures still inside a mirror call; later ones see capturing() false.
  pthread_rwlock_wrlock(&g_barrier);
  pthread_rwlock_unlock(&g_barrier);
  std::vector<std::shared_ptr<DstFile>> dsts = detach_mirrors();
  for (auto &d : dsts)
    if (d->fd >= 0) {
      sys::close_quietly(d->fd);
      d->fd = -1;
    }
  int e;
  for (auto &n : list_dir(dest_, &e)) remove_tree_quietly(join_path(dest_, n));
  if (created_dest_) real.rmdir(dest_.c_str());
  std::lock_guard<std::mutex> g(mu_);
  finished_at_ = now_ms();
  state_ = stop_as_;
}

void Session::remove_dst_tree(const std::string &dst) {
  struct stat st;
  if (lstat(dst.c_str(), &st) != 0) return;
  if (S_ISDIR(st.st_mode)) {
    int e;
    for (auto &n : list_dir(dst, &e)) remove_dst_tree(join_path(dst, n));
    if (sys::rmdir(dst.c_str()) != 0 && errno != ENOENT) fail_errno(errno, "cannot remove backup directory", dst);
  } else if (sys::unlink(dst.c_str()) != 0 && errno != ENOENT) {
    fail_errno(errno, "cannot remove backup file", dst);
  }
}

// ---------------------------------------------------------------------------------------
// Capture of content

void Session::mirror_iov(FileObj &f, off_t off, const struct iovec *iov, int cnt, size_t n) {
  auto d = f.mirror();
  if (!d) return;
  d->changed = true;
  for (int i = 0; i < cnt && n > 0; i++) {
    size_t part = std::min(n, iov[i].iov_len);
    if (part && sys::pwrite_all(d->fd, iov[i].iov_base, part, off) < 0)
      return fail_errno(errno, "cannot mirror a write into", dest_);
    bytes_mirrored_ += part;
    off += static_cast<off_t>(part);
    n -= part;
  }
}

namespace {
int reopen_for_reading(int fd) {
  char proc[64];
  std::snprintf(proc, sizeof proc, "/proc/self/fd/%d", fd);
  return sys::open(proc, O_RDONLY | O_CLOEXEC);
}
}  // namespace

void Session::mirror_from_fd(FileObj &f, int fd, off_t off, size_t n) {
  auto d = f.mirror();
  if (!d || n == 0) return;
  d->changed = true;
  int rfd = reopen_for_reading(fd);
  if (rfd < 0) return fail_errno(errno, "cannot read back a file written by copy_file_range/sendfile for", dest_);
  std::vector<char> buf(std::min<size_t>(n, kMaxChunk));
  while (n > 0) {
    ssize_t r = sys::pread(rfd, buf.data(), std::min(n, buf.size()), off);
    if (r <= 0) {
      if (r < 0) fail_errno(errno, "cannot read back a written file for", dest_);
      break;
    }
    if (sys::pwrite_all(d->fd, buf.data(), static_cast<size_t>(r), off) < 0) {
      fail_errno(errno, "cannot mirror a write into", dest_);
      break;
    }
    bytes_mirrored_ += static_cast<uint64_t>(r);
    off += r;
    n -= static_cast<size_t>(r);
  }
  sys::close_quietly(rfd);
}

void Session::mirror_truncate(FileObj &f, off_t len) {
  auto d = f.mirror();
  if (d) d->changed = true;
  if (d && sys::ftruncate(d->fd, len) != 0) fail_errno(errno, "cannot mirror a truncate into", dest_);
}

void Session::mirror_fallocate(FileObj &f, int fd, int mode, off_t off, off_t len) {
  auto d = f.mirror();
  if (!d) return;
  d->changed = true;
  if (sys::fallocate(d->fd, mode, off, len) == 0) return;
  if (errno != EOPNOTSUPP && errno != EINVAL && errno != ENOSYS)
    return fail_errno(errno, "cannot mirror fallocate into", dest_);
  // The backup's file system lacks this mode: copy the whole file again (caller holds it whole).
  int rfd = reopen_for_reading(fd);
  if (rfd < 0) return fail_errno(errno, "cannot read back a file after fallocate for", dest_);
  copy_whole(f, rfd, *d);
  sys::close_quietly(rfd);
}

void Session::mirror_posix_fallocate(FileObj &f, off_t off, off_t len) {
  auto d = f.mirror();
  if (!d) return;
  d->changed = true;
  if (sys::fallocate(d->fd, 0, off, len) == 0) return;
  if (errno != EOPNOTSUPP) return fail_errno(errno, "cannot mirror posix_fallocate into", dest_);
  struct stat st;
  if (fstat(d->fd, &st) == 0 && st.st_size < off + len && sys::ftruncate(d->fd, off + len) != 0)
    fail_errno(errno, "cannot mirror posix_fallocate into", dest_);
}

void Session::mirror_shared_mapping(int fd) {
  std::string path;
  size_t idx;
  std::string rel;
  if (fd_path(fd, &path) && map(path, &idx, &rel))
    fail("mmap_write",
         "a shared writable memory mapping of " + path +
             " was created during the backup; writes through it cannot be mirrored",
         path);
}

// ---------------------------------------------------------------------------------------
// Capture of the namespace. Each runs the real call under ns_mu_ so the copier's decisions
// ("is it in the backup yet?") and the mirroring see one order.


int Session::open_creating(int dirfd, const char *path, int flags, mode_t mode,
                           int (*real_open)(int, const char *, int, ...)) {
  std::lock_guard<std::mutex> ns(ns_mu_);
  struct stat pre;
  bool existed = fstatat(dirfd, path, &pre, (flags & O_NOFOLLOW) ? AT_SYMLINK_NOFOLLOW : 0) == 0 &&
                 S_ISREG(pre.st_mode);
  std::shared_ptr<FileObj> old;
  std::unique_ptr<RangeGuard> old_guard;
  if (existed && (flags & O_TRUNC)) {  // truncation and its mirror must be one step for writers
    old = files().file(Identity{pre.st_dev, pre.st_ino});
    old_guard.reset(new RangeGuard(old->ranges, 0, kToEnd));
  }
  int fd = real_open(dirfd, path, flags, mode);
  ErrnoKeeper keep;
  if (fd < 0) return fd;
  files().track_open(fd, flags);
  struct stat st;
  if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) return fd;
  if (existed && pre.st_dev == st.st_dev && pre.st_ino == st.st_ino) {
    if (old) mirror_truncate(*old, 0);
    return fd;
  }
  old_guard.reset();
  std::string abs;
  size_t idx;
  std::string rel;
  if (!fd_path(fd, &abs) || !map(abs, &idx, &rel)) return fd;
  auto f = files().file(Identity{st.st_dev, st.st_ino});
  RangeGuard g(f->ranges, 0, kToEnd);
  if (f->mirror()) return fd;
  std::string dst = dst_path(idx, rel);
  if (lexists(dst)) return fd;
  if (fstat(fd, &st) == 0 && st.st_size == 0) {
    if (create_dst(*f, dst, st.st_mode)) {
      std::lock_guard<std::mutex> lg(mu_);
      attached_.push_back(f);
    }
  } else {
    enqueue(idx, rel);  // written by another opener already: the copier takes it whole
  }
  return fd;
}

int Session::rename(int fromfd, const char *from, int tofd, const char *to, unsigned flags) {
  std::string from_abs, to_abs;
  bool rf = resolve_at(fromfd, from, &from_abs), rt = resolve_at(tofd, to, &to_abs);
  std::lock_guard<std::mutex> ns(ns_mu_);
  Identity victim{};
  bool forget = !(flags & RENAME_EXCHANGE) && last_link(tofd, to, &victim);
  // Two names of one inode: the kernel's rename does nothing, and so must the mirror.
  struct stat fst, tst;
  bool same_file = fstatat(fromfd, from, &fst, AT_SYMLINK_NOFOLLOW) == 0 &&
                   fstatat(tofd, to, &tst, AT_SYMLINK_NOFOLLOW) == 0 && fst.st_dev == tst.st_dev &&
                   fst.st_ino == tst.st_ino;
  int r = real.renameat2(fromfd, from, tofd, to, flags);
  ErrnoKeeper keep;
  if (r != 0 || same_file) return r;
  if (forget) files().forget(victim);
  size_t ia = 0, ib = 0;
  std::string ra, rb;
  bool ma = rf && map(from_abs, &ia, &ra), mb = rt && map(to_abs, &ib, &rb);
  std::string da = ma ? dst_path(ia, ra) : "", db = mb ? dst_path(ib, rb) : "";
  if (flags & RENAME_EXCHANGE) {
    if (ma && mb && lexists(da) && lexists(db)) {
      if (sys::rename(da.c_str(), db.c_str(), RENAME_EXCHANGE) != 0) fail_errno(errno, "cannot mirror rename to", db);
      // Entries of either directory still queued under the other name: walk both again.
      struct stat st;
      if (lstat(from_abs.c_str(), &st) == 0 && S_ISDIR(st.st_mode)) enqueue(ia, ra);
      if (lstat(to_abs.c_str(), &st) == 0 && S_ISDIR(st.st_mode)) enqueue(ib, rb);
      return r;
    }
    if (ma) { remove_dst_tree(da); enqueue(ia, ra); }
    if (mb) { remove_dst_tree(db); enqueue(ib, rb); }
    return r;
  }
  if (ma && mb) {
    if (lexists(da)) {
      if (sys::rename(da.c_str(), db.c_str()) != 0) {
        if (errno == ENOENT) remove_dst_tree(da);  // the new parent is not in the backup yet; it will be
        else if (errno == ENOTEMPTY || errno == EEXIST) { remove_dst_tree(db); if (sys::rename(da.c_str(), db.c_str()) != 0) fail_errno(errno, "cannot mirror rename to", db); }
        else fail_errno(errno, "cannot mirror rename to", db);
      }
    } else {
      remove_dst_tree(db);
      enqueue(ib, rb);
    }
    struct stat st;
    if (lstat(to_abs.c_str(), &st) == 0 && S_ISDIR(st.st_mode)) enqueue(ib, rb);  // entries not copied yet
  } else if (ma) {
    remove_dst_tree(da);
  } else if (mb) {
    remove_dst_tree(db);
    enqueue(ib, rb);
  }
  return r;
}

int Session::unlink(int dirfd, const char *path, int flags) {
  std::string abs;
  bool resolved = resolve_at(dirfd, path, &abs);
  std::lock_guard<std::mutex> ns(ns_mu_);
  Identity victim{};
  bool forget = !(flags & AT_REMOVEDIR) && last_link(dirfd, path, &victim);
  int r = real.unlinkat(dirfd, path, flags);
  ErrnoKeeper keep;
  if (r != 0) return r;
  if (forget) files().forget(victim);
  size_t idx;
  std::string rel;
  if (!resolved || !map(abs, &idx, &rel)) return r;
  std::string dst = dst_path(idx, rel);
  if (flags & AT_REMOVEDIR) {
    if (sys::rmdir(dst.c_str()) != 0 && errno != ENOENT) {
      if (errno == ENOTEMPTY || errno == EEXIST) remove_dst_tree(dst);
      else fail_errno(errno, "cannot mirror rmdir of", dst);
    }
  } else if (sys::unlink(dst.c_str()) != 0 && errno != ENOENT) {
    fail_errno(errno, "cannot mirror unlink of", dst);
  }
  return r;
}

int Session::remove(const char *path) {
  struct stat st;
  bool dir = lstat(path, &st) == 0 && S_ISDIR(st.st_mode);
  return unlink(AT_FDCWD, path, dir ? AT_REMOVEDIR : 0);
}

void Session::mirror_mkdir(const std::string &abs) {
  size_t idx;
  std::string rel;
  if (!map(abs, &idx, &rel)) return;
  std::string dst = dst_path(idx, rel);
  struct stat st;
  if (lstat(abs.c_str(), &st) != 0) return;
  if (sys::mkdir(dst.c_str(), 0700) == 0) {
    chmod(dst.c_str(), backup_mode(st.st_mode));
  } else if (errno != EEXIST && errno != ENOENT) {
    fail_errno(errno, "cannot mirror mkdir of", dst);
  }
}

int Session::mkdir(int dirfd, const char *path, mode_t mode) {
  std::string abs;
  bool resolved = resolve_at(dirfd, path, &abs);
  std::lock_guard<std::mutex> ns(ns_mu_);
  int r = real.mkdirat(dirfd, path, mode);
  ErrnoKeeper keep;
  if (r == 0 && resolved) mirror_mkdir(abs);
  return r;
}

int Session::link(int fromfd, const char *from, int tofd, const char *to, int flags) {
  std::string from_abs, to_abs;
  bool rf = (flags & AT_EMPTY_PATH) && (!from || !*from) ? fd_path(fromfd, &from_abs) : resolve_at(fromfd, from, &from_abs);
  bool rt = resolve_at(tofd, to, &to_abs);
  std::lock_guard<std::mutex> ns(ns_mu_);
  int r = real.linkat(fromfd, from, tofd, to, flags);
  ErrnoKeeper keep;
  if (r != 0) return r;
  size_t ia = 0, ib = 0;
  std::string ra, rb;
  if (!rt || !map(to_abs, &ib, &rb)) return r;
  std::string db = dst_path(ib, rb);
  if (rf && map(from_abs, &ia, &ra) && lexists(dst_path(ia, ra))) {
    if (sys::link(dst_path(ia, ra).c_str(), db.c_str()) != 0 && errno != ENOENT && errno != EEXIST)
      fail_errno(errno, "cannot mirror link to", db);
  } else {
    enqueue(ib, rb);
  }
  return r;
}

int Session::symlink(const char *target, int dirfd, const char *path) {
  std::string abs;
  bool resolved = resolve_at(dirfd, path, &abs);
  std::lock_guard<std::mutex> ns(ns_mu_);
  int r = real.symlinkat(target, dirfd, path);
  ErrnoKeeper keep;
  size_t idx;
  std::string rel;
  if (r != 0 || !resolved || !map(abs, &idx, &rel)) return r;
  std::string dst = dst_path(idx, rel);
  if (sys::symlink(target, dst.c_str()) != 0) {
    if (errno == EEXIST && sys::unlink(dst.c_str()) == 0 && sys::symlink(target, dst.c_str()) == 0) return r;
    if (errno != ENOENT) fail_errno(errno, "cannot mirror symlink", dst);
  }
  return r;
}

int Session::truncate_path(const char *path, off_t len) {
  struct stat st;
  std::shared_ptr<FileObj> f;
  std::unique_ptr<RangeGuard> g;
  if (stat(path, &st) == 0 && S_ISREG(st.st_mode)) {
    f = files().file(Identity{st.st_dev, st.st_ino});
    g.reset(new RangeGuard(f->ranges, 0, kToEnd));
  }
  int r = real.truncate(path, len);
  ErrnoKeeper keep;
  if (r == 0 && f) mirror_truncate(*f, len);
  return r;
}

void Session::resync_fd(int fd) {
  struct stat st;
  if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) return;
  auto f = files().file(Identity{st.st_dev, st.st_ino});
  std::unique_lock<std::mutex> ns(ns_mu_);
  if (auto d = f->mirror()) {
    // The file itself, whatever its names are now (renamed, linked, unlinked since fopen).
    RangeGuard g(f->ranges, 0, kToEnd);
    int rfd = reopen_for_reading(fd);
    if (rfd < 0) return fail_errno(errno, "cannot read back a stdio stream's file for", dest_);
    copy_whole(*f, rfd, *d);
    sys::close_quietly(rfd);
    return;
  }
  ns.unlock();
  std::string path;
  if (fd_path(fd, &path)) resync_path(path);  // not in the backup yet: by its current name
}

void Session::resync_path(const std::string &abs) {
  size_t idx;
  std::string rel;
  if (!map(abs, &idx, &rel)) return;
  std::lock_guard<std::mutex> ns(ns_mu_);
  int srcfd = sys::open(abs.c_str(), O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
  if (srcfd < 0) {
    if (errno != ENOENT && errno != ELOOP) fail_errno(errno, "cannot read source file", abs);
    return;
  }
  struct stat st;
  if (fstat(srcfd, &st) == 0 && S_ISREG(st.st_mode)) {
    auto f = files().file(Identity{st.st_dev, st.st_ino});
    RangeGuard g(f->ranges, 0, kToEnd);
    auto d = f->mirror();
    std::string dst = dst_path(idx, rel);
    if (!d && !lexists(dst)) {
      d = create_dst(*f, dst, st.st_mode);
      if (d) {
        std::lock_guard<std::mutex> lg(mu_);
        attached_.push_back(f);
      }
    }
    if (d) copy_whole(*f, srcfd, *d);
  }
  sys::close_quietly(srcfd);
}

}  // namespace hb
