// One backup: the copier thread, the capture operations the wrappers call, the cut and the
// seal. Created by the control handler; see DESIGN.md "Data flow".
#pragma once
#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <sys/uio.h>
#include <thread>
#include <vector>

#include "files.h"
#include "throttle.h"

namespace hb {

struct StartRequest {
  std::string dest;                  // absolute
  std::vector<std::string> sources;  // absolute, resolved
  uint64_t throttle = 0;
};

struct SessionError {
  std::string code, message, path;
};

enum class State { copying, finishing, done, failed, cancelled };
const char *state_name(State s);

class Session {
 public:
  // Validates the request and prepares the destination; on failure fills *err and returns null.
  static std::unique_ptr<Session> create(const StartRequest &req, SessionError *err);
  ~Session();

  void start_copier();  // after capture is on
  void join();

  bool capturing() const { return capturing_.load(std::memory_order_acquire); }
  State state();
  bool terminal();
  std::string status_json();
  void set_throttle(uint64_t bytes_per_sec);
  void cancel();
  void fail(const std::string &code, const std::string &message, const std::string &path);
  void fail_errno(int err, const std::string &what, const std::string &path);

  // Test hooks.
  void arm_pause(const std::string &point, bool on);
  std::string paused_json();

  // ---- capture: called by wrappers with the barrier held shared and capturing() true ----
  // Content (the caller holds the file's range lock over the real call and this).
  void mirror_iov(FileObj &f, off_t off, const struct iovec *iov, int cnt, size_t n);
  void mirror_from_fd(FileObj &f, int fd, off_t off, size_t n);  // reads the bytes back from fd's file
  void mirror_truncate(FileObj &f, off_t len);
  void mirror_fallocate(FileObj &f, int fd, int mode, off_t off, off_t len);
  void mirror_posix_fallocate(FileObj &f, off_t off, off_t len);
  void mirror_shared_mapping(int fd);

  // Namespace: each runs the real call itself, under the namespace lock, then mirrors it.
  int open_creating(int dirfd, const char *path, int flags, mode_t mode, int (*real_open)(int, const char *, int, ...));
  int rename(int fromfd, const char *from, int tofd, const char *to, unsigned flags);
  int unlink(int dirfd, const char *path, int flags);
  int remove(const char *path);
  int mkdir(int dirfd, const char *path, mode_t mode);
  int link(int fromfd, const char *from, int tofd, const char *to, int flags);
  int symlink(const char *target, int dirfd, const char *path);
  int truncate_path(const char *path, off_t len);
  void resync_path(const std::string &abs);  // stdio: the whole file again
  void resync_fd(int fd);                    // the same, for the file open on fd

 private:
  Session() = default;
  struct Job {
    size_t src;       // index into sources_
    std::string rel;  // "" = the source root
  };

  bool map(const std::string &abs, size_t *idx, std::string *rel) const;
  std::string dst_path(size_t idx, const std::string &rel) const;
  std::vector<std::string> relative_roots() const;  // each source's place under dest_ ("" = dest_ itself)
  void enqueue(size_t idx, const std::string &rel);
  bool stopped();
  void pause(const char *point, const std::string &path = "");

  void run();  // the copier thread
  void count_totals();
  void process(const Job &job);
  bool copy_chunks(FileObj &f, int srcfd, int directfd, DstFile &dst, off_t size, const std::string &path);
  std::shared_ptr<DstFile> create_dst(FileObj &f, const std::string &dst, mode_t mode);
  bool copy_whole(FileObj &f, int srcfd, DstFile &dst);  // caller holds the whole range
  void note_copied(DstFile &dst, off_t off, const void *buf, size_t n);
  void remove_dst_tree(const std::string &dst);
  bool take_cut();
  bool seal();
  std::vector<std::shared_ptr<DstFile>> detach_mirrors();
  bool checksum(const std::string &path, uint32_t *crc);
  void cleanup_failed();
  void mirror_mkdir(const std::string &abs);
  void detach(const std::string &abs_after_rename);

  uint64_t id_ = 0;
  std::vector<std::string> sources_, dst_roots_;
  std::string dest_;
  std::string reference_;  // test hook: a copy of the sources taken at the cut (reference.h)
  bool created_dest_ = false;
  Throttle throttle_;
  std::atomic<bool> capturing_{false};
  bool thread_started_ = false, thread_done_ = false;  // guarded by mu_ once started

  std::mutex ns_mu_;  // orders namespace mirroring against the copier's creations

  std::mutex mu_;  // guards everything below
  std::condition_variable cv_;
  State state_ = State::copying;
  State stop_as_ = State::copying;  // failed or cancelled once stop_ is set
  std::atomic<bool> stop_{false};
  SessionError error_;
  bool has_error_ = false;
  std::deque<Job> queue_;
  std::vector<std::shared_ptr<FileObj>> attached_;  // files whose dst this session set
  std::vector<std::shared_ptr<DstFile>> dsts_;
  std::set<std::string> armed_;
  std::string paused_, paused_path_;
  int64_t started_at_ = 0, cut_at_ = 0, finished_at_ = 0, cut_stall_us_ = -1;
  std::deque<std::pair<double, uint64_t>> rate_samples_;  // (steady seconds, bytes_copied)

  std::atomic<uint64_t> bytes_total_{0}, bytes_copied_{0}, bytes_mirrored_{0};
  std::atomic<uint64_t> files_total_{0}, files_copied_{0};
  std::atomic<bool> totals_known_{false};
  bool copy_file_range_ok_ = true;
  std::string manifest_path_;
};

int64_t now_ms();
std::string errno_code(int err);

}  // namespace hb
