// The oracle: proof of point-in-time consistency (DESIGN.md "Testing", invariant 1).
//
// K worker threads run randomized file-system operations, each in its own subtree S/t<k> of
// the backed-up source S and O/t<k> of an outside directory O, logging every call with its
// arguments, its result and its start and end times (CLOCK_REALTIME). Meanwhile a throttled
// backup of S into D runs in this process (the program links libhotbackup.so, so its calls go
// through the shim's wrappers exactly as under LD_PRELOAD). When the backup is done the
// verifier replays each thread's log in a pure in-memory model (oracle_model.h), finds every
// prefix p_k whose state equals D/t<k> exactly (types, modes, sizes, content, symlink targets,
// no extra or missing entry), and checks that the prefixes form one real-time cut: an instant T
// with every included op started <= T and every excluded op ended >= T, and T within the
// millisecond of the reported cut_at. Before that it checks the model itself: replaying the
// whole log must give exactly what S/t<k> and O/t<k> hold on disk at the end.
//
// Usage: test_oracle [--seed N] [--threads K] [--ops N] [--throttle BYTES/S|auto]
//                    [--pause-us N] [--max-ops N] [--disable kind,...] [--no-pwrite-append]
//                    [--keep] [--verbose] [--dump-log FILE] [--timeout S]
// Prints "ok" or "not ok" (TAP-like) with the seed and, on failure, the command line that replays it.
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <linux/falloc.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/types.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cinttypes>
#include <climits>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "hotbackup.h"
#include "harness.h"  // its JSON reader only
#include "oracle_model.h"

using namespace oracle;
using hbt::Json;

namespace {

int64_t now_ns() {
  timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  return int64_t(ts.tv_sec) * 1000000000LL + ts.tv_nsec;
}

void sleep_us(int64_t us) {
  if (us <= 0) return;
  timespec ts{time_t(us / 1000000), long((us % 1000000) * 1000)};
  while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {
  }
}

struct Config {
  uint64_t seed = 1;
  int threads = 4;
  uint64_t ops = 1500;       // minimum random ops per thread
  int64_t throttle = -1;     // bytes/s; -1 = auto (about 1.5 s for the initial data)
  int pause_us = 1000;        // max pause between two ops of a thread
  uint64_t max_ops = 60000;  // per thread, a bound on the log's size
  int timeout_s = 600;       // liveness guard for the backup (not a correctness timing)
  bool keep = false, verbose = false;
  std::set<int> disabled;
  std::string dump;
  bool throttle_given = false;
  bool no_pwrite_append = false;  // never pwrite/pwritev through an O_APPEND fd (to isolate that case)
};

constexpr int64_t kMaxFile = 128 * 1024;  // the workload keeps every file below this size
constexpr size_t kMaxEntries = 40;        // per thread, files + symlinks
constexpr int kMaxFds = 10;

std::atomic<bool> g_terminal{false};  // the backup reached a terminal state
std::atomic<bool> g_abort{false};     // stop everything now

// ---------------------------------------------------------------------------------------------
// The workload
// ---------------------------------------------------------------------------------------------

struct Ent {
  std::string path;
  Obj *o;
  int depth;
};

class Worker {
 public:
  Worker(int k, const Config &cfg, const std::string &sroot, const std::string &oroot)
      : k_(k), cfg_(cfg), sroot_(sroot), oroot_(oroot), rng_(mix3(cfg.seed, uint64_t(k), 0xC0FFEE)) {}

  std::vector<Op> log;
  std::atomic<uint64_t> ndone{0};
  std::atomic<bool> ready{false};
  bool hit_cap = false;
  uint64_t population_ops = 0;
  int64_t population_bytes = 0;
  std::string fatal;  // an op the oracle could not even issue

  void run() {
    populate();
    population_ops = log.size();
    std::vector<Ent> ents;
    list(&ents);
    for (const auto &e : ents)
      if (e.o->t == T_FILE && e.path.compare(0, 2, "S/") == 0) population_bytes += int64_t(e.o->data.size());
    ready = true;
    uint64_t random_ops = 0, tail_target = 0;
    const uint64_t tail = std::max<uint64_t>(50, cfg_.ops / 10);
    Rng pace(mix3(cfg_.seed, uint64_t(k_), 0x9ACE));
    while (!g_abort.load()) {
      if (!tail_target && g_terminal.load()) tail_target = log.size() + tail;
      if (tail_target && log.size() >= tail_target && random_ops >= cfg_.ops) break;
      if (log.size() >= cfg_.max_ops) {
        hit_cap = true;
        break;
      }
      step();
      ++random_ops;
      ndone = log.size();
      if (cfg_.pause_us > 0) sleep_us(int64_t(pace.below(uint64_t(cfg_.pause_us) + 1)));
    }
    // Close what is still open (logged: fclose writes buffered bytes).
    std::vector<int> hs;
    for (auto &kv : live_.streams) hs.push_back(kv.first);
    for (int h : hs) {
      Op op;
      op.kind = K_FCLOSE;
      op.h = h;
      exec(op);
    }
    hs.clear();
    for (auto &kv : live_.fds) hs.push_back(kv.first);
    for (int h : hs) {
      Op op;
      op.kind = K_CLOSE;
      op.h = h;
      exec(op);
    }
    ndone = log.size();
  }

  const World &live() const { return live_; }

 private:
  int k_;
  const Config &cfg_;
  std::string sroot_, oroot_;
  Rng rng_;
  World live_;
  std::map<int, int> realfd_;
  std::map<int, FILE *> realfp_;
  int next_handle_ = 1;
  uint64_t names_ = 0;

  std::string real(const std::string &wp) const {
    if (wp == "S") return sroot_;
    if (wp == "O") return oroot_;
    if (wp.compare(0, 2, "S/") == 0) return sroot_ + wp.substr(1);
    if (wp.compare(0, 2, "O/") == 0) return oroot_ + wp.substr(1);
    return "/nonexistent-oracle-path/" + wp;
  }

  // Performs op for real, times it, logs it and applies it to the live model.
  void exec(Op &op) {
    std::string data;
    if (op.kind == K_PWRITE || op.kind == K_WRITE || op.kind == K_WRITEV || op.kind == K_PWRITEV || op.kind == K_FWRITE) {
      op.dseed = mix3(cfg_.seed, uint64_t(k_) << 40 | uint64_t(log.size()), 0xDA7A);
      data = gen_bytes(op.dseed, size_t(op.len));
    }
    std::vector<iovec> iov;
    if (op.kind == K_WRITEV || op.kind == K_PWRITEV) {
      size_t at = 0;
      for (uint32_t l : op.lens) {
        iov.push_back(iovec{&data[at], l});
        at += l;
      }
    }
    auto fd = [&](int h) { auto it = realfd_.find(h); return it == realfd_.end() ? -1 : it->second; };
    int64_t r = 0;
    int e = 0;
    op.t0 = now_ns();
    errno = 0;
    switch (op.kind) {
      case K_MKDIR: r = mkdir(real(op.p1).c_str(), op.mode); break;
      case K_RMDIR: r = rmdir(real(op.p1).c_str()); break;
      case K_OPEN: r = open(real(op.p1).c_str(), op.flags, op.mode); break;
      case K_CREAT: r = creat(real(op.p1).c_str(), op.mode); break;
      case K_CLOSE: r = close(fd(op.h)); break;
      case K_DUP: r = dup(fd(op.h)); break;
      case K_PWRITE: r = pwrite(fd(op.h), data.data(), data.size(), op.off); break;
      case K_WRITE: r = write(fd(op.h), data.data(), data.size()); break;
      case K_WRITEV: r = writev(fd(op.h), iov.data(), int(iov.size())); break;
      case K_PWRITEV: r = pwritev(fd(op.h), iov.data(), int(iov.size()), op.off); break;
      case K_LSEEK: r = lseek(fd(op.h), op.off, SEEK_SET); break;
      case K_FTRUNCATE: r = ftruncate(fd(op.h), op.len); break;
      case K_TRUNCATE: r = truncate(real(op.p1).c_str(), op.len); break;
      case K_FALLOCATE: r = fallocate(fd(op.h), op.flags, op.off, op.len); break;
      case K_POSIX_FALLOCATE: r = posix_fallocate(fd(op.h), op.off, op.len); break;
      case K_RENAME: r = rename(real(op.p1).c_str(), real(op.p2).c_str()); break;
      case K_RENAMEAT2: r = renameat2(AT_FDCWD, real(op.p1).c_str(), AT_FDCWD, real(op.p2).c_str(), unsigned(op.flags)); break;
      case K_UNLINK: r = unlink(real(op.p1).c_str()); break;
      case K_SYMLINK: r = symlink(op.p2.c_str(), real(op.p1).c_str()); break;
      case K_LINK: r = link(real(op.p1).c_str(), real(op.p2).c_str()); break;
      case K_COPY_FILE_RANGE: {
        loff_t a = op.off, b = op.off2;
        r = copy_file_range(fd(op.h), &a, fd(op.h2), &b, size_t(op.len), 0);
        break;
      }
      case K_FOPEN: {
        FILE *f = fopen(real(op.p1).c_str(), op.p2.c_str());
        e = errno;
        r = f ? 0 : -1;
        // The model writes a stream's bytes at fflush/fclose only; glibc would also write by
        // itself whenever its buffer fills, so the buffer is larger than a stream ever holds.
        if (f) setvbuf(f, nullptr, _IOFBF, 8u << 20);
        if (f) realfp_[op.h] = f;
        break;
      }
      case K_FWRITE: r = int64_t(fwrite(data.data(), data.size(), 1, realfp_[op.h])); break;
      case K_FFLUSH: r = fflush(realfp_[op.h]); break;
      case K_FCLOSE: r = fclose(realfp_[op.h]); realfp_.erase(op.h); break;
      default: break;
    }
    if (!e) e = errno;
    op.t1 = now_ns();
    op.ret = r;
    op.err = (op.kind == K_POSIX_FALLOCATE) ? int(r) : (r < 0 || (op.kind == K_FWRITE && r != 1) ? e : 0);
    if (op.kind == K_FOPEN && r < 0) op.h = -1;
    if ((op.kind == K_OPEN || op.kind == K_CREAT) && r >= 0) {
      realfd_[op.h] = int(r);
      op.ret = 0;  // the fd number is not part of the model; success is 0
    } else if ((op.kind == K_OPEN || op.kind == K_CREAT) && r < 0) {
      op.h = -1;
    }
    if (op.kind == K_DUP) {
      if (r >= 0) {
        realfd_[op.h2] = int(r);
        op.ret = 0;
      } else {
        op.h2 = -1;
      }
    }
    if (op.kind == K_CLOSE) realfd_.erase(op.h);
    log.push_back(op);
    live_.apply(log.back(), uint32_t(log.size() - 1));
    if (!live_.error.empty() && fatal.empty()) fatal = live_.error;
  }

  // ---- choosing ----
  void list(std::vector<Ent> *out) const {
    std::vector<std::pair<std::string, std::pair<Obj *, int>>> stack;
    stack.push_back({"S", {live_.root->kids.at("S").get(), 0}});
    stack.push_back({"O", {live_.root->kids.at("O").get(), 0}});
    while (!stack.empty()) {
      auto cur = stack.back();
      stack.pop_back();
      out->push_back(Ent{cur.first, cur.second.first, cur.second.second});
      if (cur.second.first->t == T_DIR)
        for (auto &kv : cur.second.first->kids)
          stack.push_back({cur.first + "/" + kv.first, {kv.second.get(), cur.second.second + 1}});
    }
    std::sort(out->begin(), out->end(), [](const Ent &a, const Ent &b) { return a.path < b.path; });
  }
  template <class T>
  T pick(const std::vector<T> &v) { return v[size_t(rng_.below(v.size()))]; }
  std::string fresh(const char *prefix) { return std::string(prefix) + std::to_string(++names_); }
  unsigned file_mode() { static const unsigned m[] = {0600, 0640, 0644, 0660}; return m[rng_.below(4)]; }
  unsigned dir_mode() { static const unsigned m[] = {0755, 0700, 0750, 0775}; return m[rng_.below(4)]; }
  int64_t wlen() { return rng_.pct(25) ? int64_t(1 + rng_.below(64)) : int64_t(1 + rng_.below(12288)); }

  int new_handle() { return next_handle_++; }

  void do_open(const std::string &path, int flags, unsigned mode) {
    Op op;
    op.kind = K_OPEN;
    op.p1 = path;
    op.flags = flags;
    op.mode = mode;
    op.h = new_handle();
    exec(op);
  }
  void do_pwrite(int h, int64_t off, int64_t len) {
    Op op;
    op.kind = K_PWRITE;
    op.h = h;
    op.off = off;
    op.len = len;
    exec(op);
  }
  void do_close(int h) {
    Op op;
    op.kind = K_CLOSE;
    op.h = h;
    exec(op);
  }
  void simple(uint8_t kind, const std::string &p1, const std::string &p2 = "", unsigned mode = 0, int flags = 0) {
    Op op;
    op.kind = kind;
    op.p1 = p1;
    op.p2 = p2;
    op.mode = mode;
    op.flags = flags;
    exec(op);
  }

  // A randomized initial population, logged like every other op.
  void populate() {
    std::vector<std::string> sdirs{"S"}, odirs{"O"};
    int nd = 2 + int(rng_.below(3));
    for (int i = 0; i < nd; ++i) {
      std::string p = pick(sdirs) + "/" + fresh("d");
      simple(K_MKDIR, p, "", dir_mode());
      sdirs.push_back(p);
    }
    std::string od = "O/" + fresh("d");
    simple(K_MKDIR, od, "", dir_mode());
    odirs.push_back(od);
    std::vector<std::string> files;
    int nf = 6 + int(rng_.below(6)), no = 2 + int(rng_.below(3));
    for (int i = 0; i < nf + no; ++i) {
      std::string p = pick(i < nf ? sdirs : odirs) + "/" + fresh("f");
      int h = next_handle_;
      do_open(p, O_RDWR | O_CREAT | O_EXCL, file_mode());
      if (log.back().ret != 0) continue;
      if (i < nf) files.push_back(p);
      int64_t size = rng_.pct(10) ? 0 : int64_t(rng_.below(96 * 1024));
      for (int64_t at = 0; at < size;) {
        int64_t n = std::min<int64_t>(size - at, 32768);
        do_pwrite(h, at, n);
        at += n;
      }
      do_close(h);
    }
    for (int i = 0; i < 2; ++i) {
      std::string dir = pick(sdirs);
      simple(K_SYMLINK, dir + "/" + fresh("l"), i == 0 && !files.empty() ? split_path(pick(files)).back() : "/nonexistent/" + fresh("t"));
    }
    if (!files.empty()) simple(K_LINK, pick(files), pick(sdirs) + "/" + fresh("h"));
  }

  void step() {
    std::vector<Ent> ents;
    list(&ents);
    std::vector<const Ent *> dirs, subdirs, files, nondirs;
    for (const auto &e : ents) {
      if (e.o->t == T_DIR) {
        dirs.push_back(&e);
        if (e.depth > 0) subdirs.push_back(&e);
      } else {
        nondirs.push_back(&e);
        if (e.o->t == T_FILE) files.push_back(&e);
      }
    }
    std::vector<int> handles;
    for (auto &kv : live_.fds) handles.push_back(kv.first);
    bool crowded = nondirs.size() >= kMaxEntries;

    static const int weights[K_COUNT] = {
        /*mkdir*/ 4, /*rmdir*/ 3, /*open*/ 9, /*creat*/ 1, /*close*/ 5, /*dup*/ 1, /*pwrite*/ 14,
        /*write*/ 8, /*writev*/ 4, /*pwritev*/ 4, /*lseek*/ 2, /*ftruncate*/ 4, /*truncate*/ 2,
        /*fallocate*/ 5, /*posix_fallocate*/ 1, /*rename*/ 8, /*renameat2*/ 3, /*unlink*/ 4,
        /*symlink*/ 2, /*link*/ 2, /*copy_file_range*/ 2, /*fopen*/ 4, /*fwrite*/ 0, /*fflush*/ 0,
        /*fclose*/ 0};
    int total = 0;
    for (int i = 0; i < K_COUNT; ++i)
      if (!cfg_.disabled.count(i)) total += weights[i];
    if (total == 0) return;
    int x = int(rng_.below(uint64_t(total))), kind = 0;
    for (; kind < K_COUNT; ++kind) {
      if (cfg_.disabled.count(kind)) continue;
      if (x < weights[kind]) break;
      x -= weights[kind];
    }
    if (crowded && rng_.pct(50)) kind = rng_.pct(70) ? K_UNLINK : K_RENAME;
    if (int(handles.size()) >= kMaxFds && (kind == K_OPEN || kind == K_CREAT || kind == K_DUP)) kind = K_CLOSE;

    auto pick_dir = [&](int maxdepth) {
      std::vector<const Ent *> c;
      for (auto *d : dirs)
        if (d->depth <= maxdepth) c.push_back(d);
      return pick(c)->path;
    };
    auto fd_size = [&](int h) { return int64_t(live_.fds.at(h)->f->data.size()); };
    auto need_fd = [&]() -> bool {
      if (!handles.empty()) return true;
      // No open fd: open one instead.
      if (!files.empty()) do_open(pick(files)->path, O_RDWR, 0);
      else do_open(pick_dir(3) + "/" + fresh("f"), O_RDWR | O_CREAT, file_mode());
      return false;
    };

    switch (kind) {
      case K_MKDIR: {
        std::string p = pick_dir(2) + "/" + (rng_.pct(10) && !subdirs.empty() ? split_path(pick(subdirs)->path).back() : fresh("d"));
        simple(K_MKDIR, p, "", dir_mode());
        return;
      }
      case K_RMDIR: {
        if (subdirs.empty()) return simple(K_MKDIR, pick_dir(2) + "/" + fresh("d"), "", dir_mode());
        std::vector<const Ent *> empty;
        for (auto *d : subdirs)
          if (d->o->kids.empty()) empty.push_back(d);
        const Ent *d = (!empty.empty() && rng_.pct(80)) ? pick(empty) : pick(subdirs);
        return simple(K_RMDIR, d->path);
      }
      case K_OPEN: {
        int r = int(rng_.below(100));
        if (r < 40 && !files.empty()) {  // an existing file
          int flags = O_RDWR;
          if (rng_.pct(20)) flags |= O_APPEND;
          if (rng_.pct(10)) flags |= O_TRUNC;
          if (rng_.pct(15)) flags |= O_CREAT;
          return do_open(pick(files)->path, flags, file_mode());
        }
        if (r < 50 && !files.empty())  // O_CREAT|O_TRUNC of an existing file
          return do_open(pick(files)->path, O_RDWR | O_CREAT | O_TRUNC, file_mode());
        if (r < 55 && !files.empty())  // O_EXCL on an existing one: EEXIST
          return do_open(pick(files)->path, O_RDWR | O_CREAT | O_EXCL, file_mode());
        int flags = O_RDWR | O_CREAT;
        if (rng_.pct(30)) flags |= O_EXCL;
        if (rng_.pct(30)) flags |= O_TRUNC;
        if (rng_.pct(20)) flags |= O_APPEND;
        return do_open(pick_dir(3) + "/" + fresh("f"), flags, file_mode());
      }
      case K_CREAT: {
        Op op;
        op.kind = K_CREAT;
        op.flags = O_WRONLY | O_CREAT | O_TRUNC;
        op.p1 = (!files.empty() && rng_.pct(30)) ? pick(files)->path : pick_dir(3) + "/" + fresh("f");
        op.mode = file_mode();
        op.h = new_handle();
        return exec(op);
      }
      case K_CLOSE:
        if (handles.empty()) return;
        return do_close(pick(handles));
      case K_DUP: {
        if (!need_fd()) return;
        Op op;
        op.kind = K_DUP;
        op.h = pick(handles);
        op.h2 = new_handle();
        return exec(op);
      }
      case K_PWRITE: case K_PWRITEV: case K_WRITE: case K_WRITEV: {
        if (!need_fd()) return;
        int h = pick(handles);
        auto ofd = live_.fds.at(h);
        int64_t size = fd_size(h), len = wlen();
        Op op;
        if (ofd->append && cfg_.no_pwrite_append && kind == K_PWRITE) kind = K_WRITE;
        if (ofd->append && cfg_.no_pwrite_append && kind == K_PWRITEV) kind = K_WRITEV;
        op.kind = uint8_t(kind);
        op.h = h;
        op.len = len;
        if (ofd->append && size + len > kMaxFile) {  // keep appenders bounded
          op = Op();
          op.kind = K_FTRUNCATE;
          op.h = h;
          op.len = int64_t(rng_.below(uint64_t(size / 2 + 1)));
          return exec(op);
        }
        if (kind == K_PWRITE || kind == K_PWRITEV) {
          op.off = int64_t(rng_.below(uint64_t(std::min<int64_t>(size + 4096, kMaxFile))));
          if (op.off + len > kMaxFile) op.off = kMaxFile - len;
        } else if (!ofd->append && (ofd->off + len > kMaxFile || rng_.pct(15))) {
          op = Op();
          op.kind = K_LSEEK;
          op.h = h;
          op.off = int64_t(rng_.below(uint64_t(std::min<int64_t>(size + 2048, kMaxFile - len) + 1)));
          return exec(op);
        }
        if (kind == K_WRITEV || kind == K_PWRITEV) {
          int n = 1 + int(rng_.below(4));
          int64_t left = len;
          for (int i = 0; i < n && left > 0; ++i) {
            int64_t l = i == n - 1 ? left : int64_t(rng_.below(uint64_t(left) + 1));
            op.lens.push_back(uint32_t(l));
            left -= l;
          }
          if (left > 0) op.lens.push_back(uint32_t(left));
        }
        return exec(op);
      }
      case K_LSEEK: {
        if (!need_fd()) return;
        Op op;
        op.kind = K_LSEEK;
        op.h = pick(handles);
        op.off = int64_t(rng_.below(uint64_t(std::min<int64_t>(fd_size(op.h) + 4096, kMaxFile))));
        return exec(op);
      }
      case K_FTRUNCATE: case K_TRUNCATE: {
        Op op;
        op.kind = uint8_t(kind);
        int64_t size;
        if (kind == K_FTRUNCATE) {
          if (!need_fd()) return;
          op.h = pick(handles);
          size = fd_size(op.h);
        } else {
          if (files.empty()) return;
          const Ent *f = pick(files);
          op.p1 = f->path;
          size = int64_t(f->o->data.size());
        }
        op.len = rng_.pct(50) ? int64_t(rng_.below(uint64_t(size) + 1)) : std::min<int64_t>(kMaxFile, size + int64_t(rng_.below(32768)));
        return exec(op);
      }
      case K_FALLOCATE: case K_POSIX_FALLOCATE: {
        if (!need_fd()) return;
        static const int modes[] = {0, FALLOC_FL_KEEP_SIZE, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE,
                                    FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, FALLOC_FL_ZERO_RANGE,
                                    FALLOC_FL_ZERO_RANGE | FALLOC_FL_KEEP_SIZE};
        Op op;
        op.kind = uint8_t(kind);
        op.h = pick(handles);
        op.flags = kind == K_FALLOCATE ? modes[rng_.below(6)] : 0;
        int64_t size = fd_size(op.h);
        op.off = int64_t(rng_.below(uint64_t(std::min<int64_t>(size + 8192, kMaxFile - 1))));
        op.len = 1 + int64_t(rng_.below(32768));
        if (op.off + op.len > kMaxFile) op.len = kMaxFile - op.off;
        return exec(op);
      }
      case K_RENAME: case K_RENAMEAT2: {
        // The copier must copy whatever enters S (a move from O, a renamed directory's
        // subtree), throttled: these ops stay rare enough for the copy to converge.
        Op op;
        op.kind = uint8_t(kind);
        if (kind == K_RENAMEAT2) op.flags = rng_.pct(50) ? RENAME_NOREPLACE : RENAME_EXCHANGE;
        bool dir = !subdirs.empty() && rng_.below(1000) < 25;
        bool cross = rng_.below(1000) < (dir ? 250 : 50);
        auto side = [](const std::string &p) { return p[0]; };
        if (dir) {
          const Ent *d = pick(subdirs);
          auto ok_target = [&](const Ent *t) {
            return (side(t->path) == side(d->path)) != cross && t->path.compare(0, d->path.size() + 1, d->path + "/") != 0 && t != d;
          };
          std::vector<const Ent *> targets;  // directories not inside d (nor d)
          for (auto *t : dirs)
            if (ok_target(t) && t->depth <= 2) targets.push_back(t);
          if (targets.empty()) return;
          op.p1 = d->path;
          std::vector<const Ent *> over;  // existing entries at which to aim
          if (op.flags == RENAME_EXCHANGE) {
            for (auto *t : nondirs)
              if ((side(t->path) == side(d->path)) != cross) over.push_back(t);
            for (auto *t : subdirs)
              if (ok_target(t) && d->path.compare(0, t->path.size() + 1, t->path + "/") != 0) over.push_back(t);
          } else {
            for (auto *t : subdirs)
              if (t->o->kids.empty() && ok_target(t)) over.push_back(t);
          }
          if (!over.empty() && (op.flags == RENAME_EXCHANGE || rng_.pct(20))) op.p2 = pick(over)->path;
          else op.p2 = pick(targets)->path + "/" + fresh("d");
        } else {
          if (nondirs.empty()) return;
          const Ent *s = pick(nondirs);
          op.p1 = s->path;
          std::vector<const Ent *> over;
          for (auto *t : nondirs)
            if ((side(t->path) == side(s->path)) != cross && t != s) over.push_back(t);
          std::vector<const Ent *> tdirs;
          for (auto *t : dirs)
            if ((side(t->path) == side(s->path)) != cross && t->depth <= 3) tdirs.push_back(t);
          bool aim = op.flags == RENAME_EXCHANGE || rng_.pct(kind == K_RENAME ? 35 : 50);
          if (aim && !over.empty()) op.p2 = pick(over)->path;
          else if (!tdirs.empty()) op.p2 = pick(tdirs)->path + "/" + fresh(s->o->t == T_LINK ? "l" : "f");
          else return;
        }
        return exec(op);
      }
      case K_UNLINK: {
        if (nondirs.empty()) return;
        const Ent *e = nullptr;
        if (rng_.pct(40)) {  // prefer a file that is open
          std::vector<const Ent *> open;
          for (auto *n : nondirs)
            for (auto &kv : live_.fds)
              if (kv.second->f.get() == n->o) {
                open.push_back(n);
                break;
              }
          if (!open.empty()) e = pick(open);
        }
        if (!e) e = pick(nondirs);
        return simple(K_UNLINK, e->path);
      }
      case K_SYMLINK: {
        std::string target;
        int r = int(rng_.below(4));
        if (r == 0 && !nondirs.empty()) target = split_path(pick(nondirs)->path).back();
        else if (r == 1) target = "../" + fresh("t");
        else if (r == 2) target = "/nonexistent/" + fresh("t");
        else target = "dangling-" + fresh("t") + "/x";
        return simple(K_SYMLINK, pick_dir(3) + "/" + fresh("l"), target);
      }
      case K_LINK: {
        if (files.empty()) return;
        const Ent *f = pick(files);
        bool cross = rng_.below(1000) < 60;  // a link from O into S makes the copier copy it
        std::vector<const Ent *> tdirs, tover;
        for (auto *t : dirs)
          if ((t->path[0] == f->path[0]) != cross && t->depth <= 3) tdirs.push_back(t);
        for (auto *t : nondirs)
          if ((t->path[0] == f->path[0]) != cross) tover.push_back(t);
        if (tdirs.empty()) return;
        std::string to = (rng_.pct(10) && !tover.empty()) ? pick(tover)->path : pick(tdirs)->path + "/" + fresh("h");
        return simple(K_LINK, f->path, to);
      }
      case K_COPY_FILE_RANGE: {
        if (!need_fd()) return;
        std::vector<int> readable;
        for (int h : handles)
          if (live_.fds.at(h)->readable) readable.push_back(h);
        if (readable.empty() || handles.size() < 2) return;
        Op op;
        op.kind = K_COPY_FILE_RANGE;
        op.h = pick(readable);
        op.h2 = pick(handles);
        if (live_.fds.at(op.h)->f == live_.fds.at(op.h2)->f) return;  // same file: overlap rules, not interesting
        int64_t ssize = fd_size(op.h), dsize = fd_size(op.h2);
        op.off = int64_t(rng_.below(uint64_t(ssize) + 1));
        op.len = 1 + int64_t(rng_.below(16384));
        op.off2 = int64_t(rng_.below(uint64_t(std::min<int64_t>(dsize + 4096, kMaxFile - op.len))));
        return exec(op);
      }
      case K_FOPEN: case K_FWRITE: case K_FFLUSH: case K_FCLOSE: {
        if (live_.streams.empty()) {
          Op op;
          op.kind = K_FOPEN;
          bool append = rng_.pct(40);
          op.p2 = append ? "a" : "w";
          op.flags = append ? (O_WRONLY | O_CREAT | O_APPEND) : (O_WRONLY | O_CREAT | O_TRUNC);
          op.mode = 0666;
          op.p1 = (!files.empty() && rng_.pct(50)) ? pick(files)->path : pick_dir(3) + "/" + fresh("s");
          op.h = new_handle();
          if (append && !files.empty()) {
            // keep appended files bounded
            ObjP f = live_.lookup(op.p1);
            if (f && f->t == T_FILE && int64_t(f->data.size()) > kMaxFile - 4096) op.p1 = pick_dir(3) + "/" + fresh("s");
          }
          return exec(op);
        }
        auto &st = live_.streams.begin()->second;
        int h = live_.streams.begin()->first;
        Op op;
        op.h = h;
        int r = int(rng_.below(100));
        // Buffered bytes stay below 2 KiB so fwrite never writes by itself: they reach the
        // file only at fflush/fclose.
        if (r < 60 && st.pending.size() < 1024) {
          op.kind = K_FWRITE;
          op.len = 1 + int64_t(rng_.below(1000));
        } else if (r < 80) {
          op.kind = K_FFLUSH;
        } else {
          op.kind = K_FCLOSE;
        }
        return exec(op);
      }
      default: return;
    }
  }
};

// ---------------------------------------------------------------------------------------------
// Reading trees from disk into the model's form
// ---------------------------------------------------------------------------------------------

bool read_file(const std::string &path, std::string *out, std::string *err) {
  int fd = open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
  if (fd < 0) {
    *err = path + ": open: " + strerror(errno);
    return false;
  }
  out->clear();
  char buf[65536];
  for (;;) {
    ssize_t n = read(fd, buf, sizeof buf);
    if (n < 0) {
      if (errno == EINTR) continue;
      *err = path + ": read: " + strerror(errno);
      close(fd);
      return false;
    }
    if (n == 0) break;
    out->append(buf, size_t(n));
  }
  close(fd);
  return true;
}

// Reads path (an lstat'ed tree) into an Obj; ids come from *next_id. Returns null with *err set
// when something cannot be read or has an unexpected type.
ObjP load_tree(const std::string &path, uint64_t *next_id, std::string *err) {
  struct stat st;
  if (lstat(path.c_str(), &st) != 0) {
    *err = path + ": lstat: " + strerror(errno);
    return nullptr;
  }
  auto o = std::make_shared<Obj>();
  o->id = (*next_id)++;
  o->mode = st.st_mode & 07777;
  if (S_ISREG(st.st_mode)) {
    o->t = T_FILE;
    if (!read_file(path, &o->data, err)) return nullptr;
  } else if (S_ISLNK(st.st_mode)) {
    o->t = T_LINK;
    std::vector<char> buf(size_t(st.st_size) + 256);
    ssize_t n = readlink(path.c_str(), buf.data(), buf.size());
    if (n < 0) {
      *err = path + ": readlink: " + strerror(errno);
      return nullptr;
    }
    o->target.assign(buf.data(), size_t(n));
    o->mode = 0777;
  } else if (S_ISDIR(st.st_mode)) {
    o->t = T_DIR;
    DIR *d = opendir(path.c_str());
    if (!d) {
      *err = path + ": opendir: " + strerror(errno);
      return nullptr;
    }
    std::vector<std::string> names;
    while (dirent *de = readdir(d))
      if (strcmp(de->d_name, ".") && strcmp(de->d_name, "..")) names.push_back(de->d_name);
    closedir(d);
    for (const auto &n : names) {
      ObjP c = load_tree(path + "/" + n, next_id, err);
      if (!c) return nullptr;
      o->kids[n] = c;
    }
  } else {
    *err = path + ": unexpected file type (mode 0" + std::to_string(st.st_mode) + ")";
    return nullptr;
  }
  return o;
}

int rm_cb(const char *p, const struct stat *, int flag, struct FTW *) {
  if (flag == FTW_DP || flag == FTW_D) rmdir(p);
  else unlink(p);
  return 0;
}
void rm_rf(const std::string &p) { nftw(p.c_str(), rm_cb, 16, FTW_DEPTH | FTW_PHYS); }

// ---------------------------------------------------------------------------------------------
// The control protocol, in process
// ---------------------------------------------------------------------------------------------

bool request(const std::string &req, Json *reply, std::string *raw) {
  char *r = hotbackup_request(req.c_str());
  if (!r) return false;
  *raw = r;
  hotbackup_free(r);
  std::string err;
  *reply = hbt::parse_json(*raw, &err);
  return err.empty();
}

std::string jstr(const Json *j) {
  if (!j) return "(absent)";
  if (j->type == Json::Str) return j->s;
  if (j->type == Json::Num) {
    char b[64];
    snprintf(b, sizeof b, "%.0f", j->n);
    return b;
  }
  if (j->type == Json::Null) return "null";
  return "(non-scalar)";
}

// ---------------------------------------------------------------------------------------------
// Verification
// ---------------------------------------------------------------------------------------------

struct Interval {
  int64_t lo, hi;
};

// Sorted, disjoint union of intervals.
std::vector<Interval> normalize(std::vector<Interval> v) {
  std::sort(v.begin(), v.end(), [](const Interval &a, const Interval &b) { return a.lo < b.lo; });
  std::vector<Interval> out;
  for (const auto &i : v) {
    if (i.lo > i.hi) continue;
    if (!out.empty() && i.lo <= out.back().hi) out.back().hi = std::max(out.back().hi, i.hi);
    else out.push_back(i);
  }
  return out;
}
std::vector<Interval> intersect(const std::vector<Interval> &a, const std::vector<Interval> &b) {
  std::vector<Interval> out;
  size_t i = 0, j = 0;
  while (i < a.size() && j < b.size()) {
    int64_t lo = std::max(a[i].lo, b[j].lo), hi = std::min(a[i].hi, b[j].hi);
    if (lo <= hi) out.push_back({lo, hi});
    if (a[i].hi < b[j].hi) ++i;
    else ++j;
  }
  return out;
}

std::string fmt_t(int64_t t, int64_t base) {
  if (t == INT64_MIN) return "-inf";
  if (t == INT64_MAX) return "+inf";
  char b[64];
  snprintf(b, sizeof b, "%+.3fms", double(t - base) / 1e6);
  return b;
}

struct Verifier {
  const Config &cfg;
  int64_t t_base;  // started_at in ns, for printing times
  std::vector<std::string> lines;

  void say(const std::string &s) { lines.push_back(s); }

  // Replays log; returns the matching prefixes (0 = before the first op). *final = the whole log's world.
  std::vector<uint32_t> matches(const std::vector<Op> &log, const Obj &backup, World *final) {
    Comparer cmp;
    std::vector<uint32_t> m;
    World w;
    if (cmp.dirs(*w.root->kids.at("S"), backup, "", nullptr, 1) == 0) m.push_back(0);
    for (size_t i = 0; i < log.size(); ++i) {
      w.apply(log[i], uint32_t(i));
      if (cmp.dirs(*w.root->kids.at("S"), backup, "", nullptr, 1) == 0) m.push_back(uint32_t(i + 1));
    }
    *final = std::move(w);
    return m;
  }

  void print_op(const std::vector<Op> &log, size_t i, const char *mark) {
    say(std::string("#     ") + mark + " op " + std::to_string(i + 1) + ": " + describe(log[i], t_base));
  }

  // No prefix of thread k's log gives the backup: find the closest and explain.
  void explain_no_match(int k, const std::vector<Op> &log, const Obj &backup, size_t fixed = SIZE_MAX) {
    Comparer cmp;
    size_t best = SIZE_MAX, bestp = 0;
    if (fixed != SIZE_MAX) {
      World w;
      for (size_t p = 0; p < fixed; ++p) w.apply(log[p], uint32_t(p));
      best = cmp.dirs(*w.root->kids.at("S"), backup, "", Comparer::count_only(), SIZE_MAX);
      bestp = fixed;
    } else {
      World w;
      for (size_t p = 0; p <= log.size(); ++p) {
        if (p) w.apply(log[p - 1], uint32_t(p - 1));
        size_t n = cmp.dirs(*w.root->kids.at("S"), backup, "", Comparer::count_only(), SIZE_MAX);
        if (n < best) {
          best = n;
          bestp = p;
        }
      }
    }
    World w;
    std::vector<Diff> diffs;
    for (size_t p = 0; p <= log.size(); ++p) {
      if (p) w.apply(log[p - 1], uint32_t(p - 1));
      if (p == bestp) cmp.dirs(*w.root->kids.at("S"), backup, "", &diffs, 8);
    }
    if (fixed == SIZE_MAX)
      say("# thread " + std::to_string(k) + ": no prefix of its " + std::to_string(log.size()) +
          " ops gives D/t" + std::to_string(k) + ". Closest: after op " + std::to_string(bestp) + " (" + std::to_string(best) +
          " difference(s)" + (bestp < log.size() ? ", next op starts " + fmt_t(log[bestp].t0, t_base) : std::string()) + ")");
    else
      say("# thread " + std::to_string(k) + ": D/t" + std::to_string(k) + " compared with the state after op " + std::to_string(bestp) +
          " (every op that ended before cut_at): " + std::to_string(best) + " difference(s)");
    say("#   times are relative to the backup's started_at");
    for (const auto &d : diffs) {
      say("#   difference: t" + std::to_string(k) + d.path + ": " + d.text);
      if (d.model && !d.model->hist.empty()) {
        say("#     ops that changed it (model object #" + std::to_string(d.model->id) + "), [in] = inside the closest prefix:");
        const auto &h = d.model->hist;
        size_t first = 0;
        size_t nin = size_t(std::count_if(h.begin(), h.end(), [&](uint32_t i) { return i < bestp; }));
        if (nin > 8) first = nin - 8;
        for (size_t j = first; j < h.size() && j < nin + 4; ++j) print_op(log, h[j], h[j] < bestp ? "[in] " : "[out]");
      }
    }
    say("#   ops around the closest prefix:");
    for (size_t i = bestp >= 4 ? bestp - 4 : 0; i < log.size() && i < bestp + 4; ++i) print_op(log, i, i < bestp ? "[in] " : "[out]");
  }
};

void usage() {
  fprintf(stderr,
          "usage: test_oracle [--seed N] [--threads K] [--ops N] [--throttle BYTES_PER_SEC|auto] [--pause-us N]\n"
          "                   [--max-ops N] [--disable kind,...] [--no-pwrite-append] [--keep] [--verbose] [--dump-log FILE]\n"
          "                   [--timeout S]\n"
          "kinds:");
  for (int i = 0; i < K_COUNT; ++i) fprintf(stderr, " %s", kKindNames[i]);
  fprintf(stderr, "\n");
}

bool parse_args(int argc, char **argv, Config *c) {
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    auto val = [&]() -> std::string {
      if (i + 1 >= argc) {
        fprintf(stderr, "test_oracle: %s needs a value\n", a.c_str());
        exit(2);
      }
      return argv[++i];
    };
    if (a == "--seed") c->seed = strtoull(val().c_str(), nullptr, 10);
    else if (a == "--threads") c->threads = std::max(1, atoi(val().c_str()));
    else if (a == "--ops") c->ops = strtoull(val().c_str(), nullptr, 10);
    else if (a == "--throttle") {
      std::string v = val();
      c->throttle = v == "auto" ? -1 : strtoll(v.c_str(), nullptr, 10);
      c->throttle_given = v != "auto";
    } else if (a == "--pause-us") c->pause_us = atoi(val().c_str());
    else if (a == "--max-ops") c->max_ops = strtoull(val().c_str(), nullptr, 10);
    else if (a == "--timeout") c->timeout_s = atoi(val().c_str());
    else if (a == "--keep") c->keep = true;
    else if (a == "--no-pwrite-append") c->no_pwrite_append = true;
    else if (a == "--verbose" || a == "-v") c->verbose = true;
    else if (a == "--dump-log") c->dump = val();
    else if (a == "--disable") {
      std::string list = val();
      std::replace(list.begin(), list.end(), ',', '/');
      for (const auto &n : split_path(list)) {
        int k = -1;
        for (int j = 0; j < K_COUNT; ++j)
          if (n == kKindNames[j]) k = j;
        if (k < 0) {
          fprintf(stderr, "test_oracle: unknown op kind '%s'\n", n.c_str());
          return false;
        }
        c->disabled.insert(k);
        if (k == K_FOPEN) c->disabled.insert({K_FWRITE, K_FFLUSH, K_FCLOSE});
      }
    } else if (a == "--help" || a == "-h") return false;
    else {
      fprintf(stderr, "test_oracle: unknown argument %s\n", a.c_str());
      return false;
    }
  }
  return true;
}

std::string replay_cmd(const char *self, const Config &c, int64_t throttle) {
  std::string s = std::string(self) + " --seed " + std::to_string(c.seed) + " --threads " + std::to_string(c.threads) +
                  " --ops " + std::to_string(c.ops) + " --throttle " + std::to_string(throttle) + " --pause-us " +
                  std::to_string(c.pause_us);
  if (c.max_ops != Config().max_ops) s += " --max-ops " + std::to_string(c.max_ops);
  if (c.no_pwrite_append) s += " --no-pwrite-append";
  if (!c.disabled.empty()) {
    s += " --disable ";
    bool first = true;
    for (int k : c.disabled) {
      if (k == K_FWRITE || k == K_FFLUSH || k == K_FCLOSE) continue;
      s += std::string(first ? "" : ",") + kKindNames[k];
      first = false;
    }
  }
  return s;
}

void dump_logs(const std::string &file, const std::vector<std::unique_ptr<Worker>> &ws, int64_t base) {
  FILE *f = fopen(file.c_str(), "w");
  if (!f) return;
  for (size_t k = 0; k < ws.size(); ++k) {
    fprintf(f, "# thread %zu: %zu ops (population: %" PRIu64 ")\n", k, ws[k]->log.size(), ws[k]->population_ops);
    for (size_t i = 0; i < ws[k]->log.size(); ++i) fprintf(f, "t%zu op %zu: %s\n", k, i + 1, describe(ws[k]->log[i], base).c_str());
  }
  fclose(f);
}

}  // namespace

int main(int argc, char **argv) {
  Config cfg;
  if (!parse_args(argc, argv, &cfg)) {
    usage();
    return 2;
  }
  setvbuf(stdout, nullptr, _IOLBF, 0);

  // The shim must serve this process with its socket somewhere private: unless the caller set
  // that up, re-exec ourselves with HOTBACKUP_SERVE=* and HOTBACKUP_SOCKET in a temp dir.
  const char *tmpdir = getenv("TMPDIR");
  std::string tmp = tmpdir && *tmpdir ? tmpdir : "/tmp";
  std::string root;
  auto make_root = [&] {
    std::string t = tmp + "/hb-oracle-XXXXXX";
    std::vector<char> buf(t.begin(), t.end());
    buf.push_back(0);
    if (!mkdtemp(buf.data())) {
      perror("mkdtemp");
      return false;
    }
    root = buf.data();
    return true;
  };
  if (!getenv("HOTBACKUP_ORACLE_ROOT") && (!getenv("HOTBACKUP_SOCKET") || !getenv("HOTBACKUP_SERVE") || !hotbackup_is_served())) {
    if (!make_root()) return 2;
    setenv("HOTBACKUP_ORACLE_ROOT", root.c_str(), 1);
    setenv("HOTBACKUP_SERVE", "*", 1);
    setenv("HOTBACKUP_SOCKET", (root + "/ctl.sock").c_str(), 1);
    const char *sp = getenv("HOTBACKUP_SERVED_PID");
    if (sp && atol(sp) == long(getpid())) unsetenv("HOTBACKUP_SERVED_PID");
    execv("/proc/self/exe", argv);
    perror("test_oracle: re-exec");
    return 2;
  }
  if (const char *r = getenv("HOTBACKUP_ORACLE_ROOT")) {
    root = r;
    unsetenv("HOTBACKUP_ORACLE_ROOT");  // not for children
  } else {
    if (!make_root()) return 2;
  }
  // The program may have been served before the re-exec, at the default socket: clean that up.
  {
    std::string def = "/tmp/hotbackup-" + std::to_string(getuid()) + "/" + std::to_string(getpid()) + ".sock";
    const char *s = getenv("HOTBACKUP_SOCKET");
    if (!s || def != s) unlink(def.c_str());
  }

  const std::string tag = "seed=" + std::to_string(cfg.seed);
  if (!hotbackup_is_served()) {
    printf("not ok 1 - %s: the shim does not serve this process (HOTBACKUP_SERVE=%s); cannot run the oracle\n", tag.c_str(),
           getenv("HOTBACKUP_SERVE") ? getenv("HOTBACKUP_SERVE") : "(unset)");
    return 1;
  }
  umask(022);

  const std::string S = root + "/S", O = root + "/O", D = root + "/D";
  if (mkdir(S.c_str(), 0755) || mkdir(O.c_str(), 0755)) {
    perror("mkdir");
    return 2;
  }
  std::vector<std::unique_ptr<Worker>> workers;
  for (int k = 0; k < cfg.threads; ++k) {
    std::string s = S + "/t" + std::to_string(k), o = O + "/t" + std::to_string(k);
    if (mkdir(s.c_str(), 0755) || mkdir(o.c_str(), 0755)) {
      perror("mkdir");
      return 2;
    }
    workers.emplace_back(new Worker(k, cfg, s, o));
  }
  std::vector<std::thread> threads;
  for (auto &w : workers) threads.emplace_back([&w] { w->run(); });

  // Warm up: the population is in place and every thread has run some random ops.
  for (;;) {
    bool all = true;
    for (auto &w : workers) all &= w->ready.load() && w->ndone.load() >= w->population_ops + 20;
    if (all) break;
    sleep_us(1000);
  }
  int64_t throttle = cfg.throttle;
  if (throttle < 0) {
    // Aim at ~3 s of copying for the initial population (less in practice: files shrink and go) (computed from the logs, so the
    // same for a seed).
    int64_t bytes = 0;
    for (auto &w : workers) bytes += w->population_bytes;
    throttle = std::max<int64_t>(64 * 1024, bytes / 3);
  }

  std::string start = "{\"op\":\"start\",\"dest\":" + hbt::jstr(D) + ",\"sources\":[" + hbt::jstr(S) +
                      "],\"throttle_bytes_per_sec\":" + std::to_string(throttle) + "}";
  Json reply;
  std::string raw;
  const std::string replay = replay_cmd(argv[0], cfg, throttle);
  auto finish_fail = [&](const std::string &why, const std::vector<std::string> &details) {
    g_abort = true;
    g_terminal = true;
    for (auto &t : threads)
      if (t.joinable()) t.join();
    printf("not ok 1 - %s: %s\n", tag.c_str(), why.c_str());
    for (const auto &l : details) printf("%s\n", l.c_str());
    std::string logf = cfg.dump.empty() ? root + "/oracle.log" : cfg.dump;
    dump_logs(logf, workers, 0);
    printf("# op log: %s\n# tree kept: %s\n# replay: %s\n", logf.c_str(), root.c_str(), replay.c_str());
    return 1;
  };
  if (!request(start, &reply, &raw) || !reply.get("ok") || !reply.get("ok")->b)
    return finish_fail("the start request was refused: " + raw, {"# request: " + start});
  const int64_t t_start_req = now_ns();
  if (cfg.verbose) fprintf(stderr, "# start: %s\n# reply: %s\n", start.c_str(), raw.c_str());

  // Poll until the backup is terminal.
  std::string state;
  Json status;
  uint64_t polls = 0;
  for (;;) {
    sleep_us(20000);
    if (!request("{\"op\":\"status\"}", &reply, &raw) || !reply.get("status"))
      return finish_fail("bad status reply: " + raw, {});
    status = *reply.get("status");
    state = jstr(status.get("state"));
    if (cfg.verbose && ++polls % 50 == 0) {
      fprintf(stderr, "# %.1f s: state %s, ops", double(now_ns() - t_start_req) / 1e9, state.c_str());
      for (auto &w : workers) fprintf(stderr, " %" PRIu64, w->ndone.load());
      fprintf(stderr, "; bytes_copied %s/%s files_copied %s/%s mirrored %s\n", jstr(status.get("bytes_copied")).c_str(),
              jstr(status.get("bytes_total")).c_str(), jstr(status.get("files_copied")).c_str(), jstr(status.get("files_total")).c_str(),
              jstr(status.get("bytes_mirrored")).c_str());
    }
    if (state == "done" || state == "failed" || state == "cancelled") break;
    if (now_ns() - t_start_req > int64_t(cfg.timeout_s) * 1000000000LL)
      return finish_fail("the backup did not reach a terminal state within " + std::to_string(cfg.timeout_s) + " s (liveness guard); last status: " + raw, {});
  }
  g_terminal = true;
  for (auto &t : threads) t.join();
  if (cfg.verbose) fprintf(stderr, "# backup %s after %.0f ms; workers joined\n", state.c_str(), double(now_ns() - t_start_req) / 1e6);
  if (!request("{\"op\":\"status\"}", &reply, &raw) || !reply.get("status")) return finish_fail("bad status reply: " + raw, {});
  status = *reply.get("status");
  state = jstr(status.get("state"));
  const std::string status_raw = raw;

  for (size_t k = 0; k < workers.size(); ++k)
    if (!workers[k]->fatal.empty())
      return finish_fail("ORACLE BUG (not the shim): the live model rejected a logged op in thread " + std::to_string(k) + ": " + workers[k]->fatal, {});
  if (state != "done") return finish_fail("the backup ended in state '" + state + "', error " + jstr(status.get("error") ? status.get("error")->get("message") : nullptr), {"# status: " + status_raw});

  const Json *cut_j = status.get("cut_at"), *started_j = status.get("started_at");
  if (!cut_j || !cut_j->is_num()) return finish_fail("status has no numeric cut_at", {"# status: " + status_raw});
  const int64_t cut_ms = int64_t(cut_j->n);
  const int64_t t_base = started_j && started_j->is_num() ? int64_t(started_j->n) * 1000000LL : t_start_req;
  if (!cfg.dump.empty()) dump_logs(cfg.dump, workers, t_base);

  std::vector<std::string> details;
  Verifier v{cfg, t_base, {}};

  // The manifest.
  const std::string manifest = D + "/hotbackup_manifest.json";
  {
    struct stat st;
    std::string text, err;
    Json mj;
    if (lstat(manifest.c_str(), &st) != 0 || !S_ISREG(st.st_mode))
      return finish_fail("state is done but " + manifest + " is missing or not a regular file", {"# status: " + status_raw});
    if (!read_file(manifest, &text, &err) || (mj = hbt::parse_json(text, &err), !err.empty()) || mj.type != Json::Obj)
      return finish_fail("the manifest is not a JSON object: " + err, {});
    const Json *mc = mj.get("cut_at");
    if (mc && mc->is_num() && int64_t(mc->n) != cut_ms)
      return finish_fail("the manifest's cut_at " + jstr(mc) + " differs from the status's " + std::to_string(cut_ms), {});
    const Json *sm = status.get("manifest");
    if (sm && sm->is_str() && sm->s != manifest)
      return finish_fail("status.manifest is " + sm->s + ", expected " + manifest, {});
    // Its entry list (when it has one) describes the backup exactly: same paths, types, modes, sizes.
    const Json *entries = mj.get("entries");
    if (entries && entries->type == Json::Arr) {
      std::map<std::string, const Json *> listed;
      for (const auto &e : entries->a)
        if (const Json *p = e.get("path"); p && p->is_str()) listed[p->s] = &e;
      std::vector<std::string> bad;
      std::vector<std::string> stack;
      {
        if (DIR *d = opendir(D.c_str())) {
          while (dirent *de = readdir(d))
            if (strcmp(de->d_name, ".") && strcmp(de->d_name, "..") && strncmp(de->d_name, "hotbackup_", 10)) stack.push_back(de->d_name);
          closedir(d);
        }
      }
      size_t seen = 0;
      while (!stack.empty() && bad.size() < 8) {
        std::string rel = stack.back();
        stack.pop_back();
        struct stat est;
        if (lstat((D + "/" + rel).c_str(), &est) != 0) continue;
        auto it = listed.find(rel);
        if (it == listed.end()) {
          bad.push_back("#   " + rel + ": in the backup but not in the manifest's entries");
          continue;
        }
        ++seen;
        const Json &e = *it->second;
        std::string type = jstr(e.get("type"));
        bool type_ok = S_ISREG(est.st_mode) ? type == "file" : S_ISDIR(est.st_mode) ? type == "dir" : (type != "file" && type != "dir");
        if (!type_ok) bad.push_back("#   " + rel + ": manifest type \"" + type + "\" but the backup has mode 0" + std::to_string(est.st_mode));
        const Json *m = e.get("mode");
        if (!S_ISLNK(est.st_mode) && m && m->is_num() && (unsigned(m->n) & 07777) != (est.st_mode & 07777))
          bad.push_back("#   " + rel + ": manifest mode " + jstr(m) + " but the backup's is " + std::to_string(est.st_mode & 07777));
        const Json *sz = e.get("size");
        if (S_ISREG(est.st_mode) && (!sz || !sz->is_num() || int64_t(sz->n) != int64_t(est.st_size)))
          bad.push_back("#   " + rel + ": manifest size " + jstr(sz) + " but the backup's is " + std::to_string(est.st_size));
        if (S_ISDIR(est.st_mode)) {
          if (DIR *d = opendir((D + "/" + rel).c_str())) {
            while (dirent *de = readdir(d))
              if (strcmp(de->d_name, ".") && strcmp(de->d_name, "..")) stack.push_back(rel + "/" + de->d_name);
            closedir(d);
          }
        }
      }
      if (bad.empty() && seen != listed.size()) {
        for (const auto &kv : listed) {
          struct stat est;
          if (lstat((D + "/" + kv.first).c_str(), &est) != 0 && bad.size() < 8) bad.push_back("#   " + kv.first + ": in the manifest's entries but not in the backup");
        }
      }
      if (!bad.empty()) return finish_fail("the manifest's entries do not describe the backup", bad);
    }
  }
  // D's top level: t0..t<K-1> and the tool's own hotbackup_* files, nothing else.
  {
    DIR *d = opendir(D.c_str());
    if (!d) return finish_fail("cannot open the backup " + D + ": " + strerror(errno), {});
    std::set<std::string> expect;
    for (int k = 0; k < cfg.threads; ++k) expect.insert("t" + std::to_string(k));
    while (dirent *de = readdir(d)) {
      std::string n = de->d_name;
      if (n == "." || n == ".." || n.compare(0, 10, "hotbackup_") == 0) continue;
      if (!expect.count(n)) details.push_back("# extra entry at the backup's top level: " + n);
    }
    closedir(d);
    if (!details.empty()) return finish_fail("the backup's top level holds entries the source does not have", details);
  }

  // Per thread: check the model against the live tree, then find the matching prefixes.
  std::vector<std::vector<uint32_t>> M(workers.size());
  bool all_match = true;
  uint64_t total_ops = 0;
  for (size_t k = 0; k < workers.size(); ++k) {
    const auto &log = workers[k]->log;
    total_ops += log.size();
    uint64_t nid = 1u << 30;
    std::string err;
    std::string ks = "t" + std::to_string(k);
    ObjP real_s = load_tree(S + "/" + ks, &nid, &err), real_o = real_s ? load_tree(O + "/" + ks, &nid, &err) : nullptr;
    if (!real_s || !real_o) return finish_fail("cannot read the source tree: " + err, {});
    ObjP backup = load_tree(D + "/" + ks, &nid, &err);
    if (!backup) {
      if (errno == ENOENT) {
        backup = std::make_shared<Obj>();
        backup->t = T_DIR;
        backup->mode = 0;
        details.push_back("# D/" + ks + " is missing from the backup");
      } else {
        return finish_fail("cannot read the backup: " + err, {});
      }
    }
    World final;
    const int64_t tv0 = now_ns();
    M[k] = v.matches(log, *backup, &final);
    if (cfg.verbose)
      fprintf(stderr, "# thread %zu: %zu ops replayed in %.0f ms, %zu matching prefixes\n", k, log.size(), double(now_ns() - tv0) / 1e6, M[k].size());
    if (!final.error.empty()) return finish_fail("ORACLE BUG (not the shim): replay of thread " + std::to_string(k) + ": " + final.error, {});
    // Self-check of the oracle: the whole log must reproduce the source as it is now.
    Comparer cmp;
    std::vector<Diff> sd;
    cmp.dirs(*final.root->kids.at("S"), *real_s, "S/" + ks, &sd, 5);
    cmp.dirs(*final.root->kids.at("O"), *real_o, "O/" + ks, &sd, 5);
    if (!sd.empty()) {
      std::vector<std::string> d;
      for (const auto &x : sd) d.push_back("#   " + x.path + ": " + x.text);
      return finish_fail("ORACLE SELF-CHECK FAILED (the model disagrees with the source itself, so the oracle or the shim's "
                         "pass-through is wrong) in thread " + std::to_string(k), d);
    }
    if (M[k].empty()) {
      all_match = false;
      v.explain_no_match(int(k), log, *backup);
    }
  }
  if (!all_match) {
    v.lines.insert(v.lines.begin(), "# cut_at " + fmt_t(cut_ms * 1000000LL, t_base) + "; status: " + status_raw);
    return finish_fail("the backup is not the state after any prefix of some thread's operations (see the closest prefixes below)", v.lines);
  }

  // The cut: an instant T in every thread's set of feasible instants, near cut_at.
  std::vector<std::vector<Interval>> F(workers.size());
  std::vector<Interval> all{{INT64_MIN, INT64_MAX}};
  for (size_t k = 0; k < workers.size(); ++k) {
    const auto &log = workers[k]->log;
    std::vector<Interval> iv;
    for (uint32_t p : M[k]) iv.push_back({p == 0 ? INT64_MIN : log[p - 1].t0, p == log.size() ? INT64_MAX : log[p].t1});
    F[k] = normalize(iv);
    all = intersect(all, F[k]);
  }
  const std::vector<Interval> W{{cut_ms * 1000000LL - 1000000LL, cut_ms * 1000000LL + 2000000LL}};
  std::vector<Interval> near = intersect(all, W);
  auto describe_prefixes = [&](std::vector<std::string> *out) {
    for (size_t k = 0; k < workers.size(); ++k) {
      const auto &log = workers[k]->log;
      std::string s = "# thread " + std::to_string(k) + " (" + std::to_string(log.size()) + " ops): matching prefixes";
      size_t shown = 0;
      for (uint32_t p : M[k]) {
        if (++shown > 6) {
          s += " ...";
          break;
        }
        s += " " + std::to_string(p) + "[" + fmt_t(p == 0 ? INT64_MIN : log[p - 1].t0, t_base) + ", " +
             fmt_t(p == log.size() ? INT64_MAX : log[p].t1, t_base) + "]";
      }
      out->push_back(s);
      if (!M[k].empty()) {
        uint32_t p = M[k].front();
        if (p > 0) out->push_back("#   last included: op " + std::to_string(p) + ": " + describe(log[p - 1], t_base));
        if (p < log.size()) out->push_back("#   first excluded: op " + std::to_string(p + 1) + ": " + describe(log[p], t_base));
      }
    }
  };
  // For each thread whose matching prefixes all lie outside the cut_at window: how the backup
  // differs from the state at the cut (all ops that ended before it), and the ops in flight.
  auto explain_at_cut = [&](std::vector<std::string> *d) {
    for (size_t k = 0; k < workers.size(); ++k) {
      const auto &log = workers[k]->log;
      if (!intersect(F[k], W).empty()) continue;
      size_t lo = 0, hi = 0;
      while (lo < log.size() && log[lo].t1 < W[0].lo) ++lo;
      while (hi < log.size() && log[hi].t0 <= W[0].hi) ++hi;
      Verifier ve{cfg, t_base, {}};
      ObjP backup;
      uint64_t nid = 1u << 30;
      std::string err;
      backup = load_tree(D + "/t" + std::to_string(k), &nid, &err);
      if (!backup) continue;
      ve.explain_no_match(int(k), log, *backup, lo);
      for (auto &l : ve.lines) d->push_back(l);
      d->push_back("#   ops of thread " + std::to_string(k) + " in flight around cut_at (may go either way):");
      for (size_t i = lo; i < hi && i < lo + 10; ++i) d->push_back("#     op " + std::to_string(i + 1) + ": " + describe(log[i], t_base));
    }
  };
  if (all.empty()) {
    std::vector<std::string> d;
    d.push_back("# each thread's backup state is the state after some prefix, but no single instant T has every included op started "
                "before T and every excluded op ended after T. Times relative to started_at; cut_at " + fmt_t(cut_ms * 1000000LL, t_base));
    describe_prefixes(&d);
    for (size_t a = 0; a < workers.size(); ++a)
      for (size_t b = a + 1; b < workers.size(); ++b)
        if (intersect(F[a], F[b]).empty()) d.push_back("#   threads " + std::to_string(a) + " and " + std::to_string(b) + " have no common instant");
    d.push_back("# status: " + status_raw);
    explain_at_cut(&d);
    return finish_fail("the per-thread states do not form one real-time cut", d);
  }
  if (near.empty()) {
    std::vector<std::string> d;
    std::string s = "# feasible instants T:";
    for (size_t i = 0; i < all.size() && i < 6; ++i) s += " [" + fmt_t(all[i].lo, t_base) + ", " + fmt_t(all[i].hi, t_base) + "]";
    d.push_back(s);
    d.push_back("# reported cut_at " + std::to_string(cut_ms) + " ms = " + fmt_t(cut_ms * 1000000LL, t_base) + " (tolerance -1/+2 ms)");
    describe_prefixes(&d);
    explain_at_cut(&d);
    return finish_fail("the backup is a consistent cut, but not at the reported cut_at", d);
  }

  // Success.
  uint64_t during = 0;
  for (auto &w : workers)
    for (const auto &op : w->log) during += op.t0 >= t_base && op.t1 <= cut_ms * 1000000LL;
  std::string prefixes;
  for (size_t k = 0; k < workers.size(); ++k) {
    uint32_t chosen = 0;
    for (uint32_t p : M[k]) {
      const auto &log = workers[k]->log;
      int64_t lo = p == 0 ? INT64_MIN : log[p - 1].t0, hi = p == log.size() ? INT64_MAX : log[p].t1;
      if (lo <= near.front().hi && hi >= near.front().lo) {
        chosen = p;
        break;
      }
    }
    prefixes += (k ? "," : "") + std::to_string(chosen) + "/" + std::to_string(workers[k]->log.size());
  }
  bool capped = false;
  for (auto &w : workers) capped |= w->hit_cap;
  printf("ok 1 - %s threads=%d ops=%" PRIu64 " prefixes=[%s] ops_during_backup=%" PRIu64 " throttle=%" PRId64
         " T=[%s,%s] cut_at=%s mirrored=%s copied=%s%s\n",
         tag.c_str(), cfg.threads, total_ops, prefixes.c_str(), during, throttle, fmt_t(near.front().lo, t_base).c_str(),
         fmt_t(near.front().hi, t_base).c_str(), fmt_t(cut_ms * 1000000LL, t_base).c_str(), jstr(status.get("bytes_mirrored")).c_str(),
         jstr(status.get("bytes_copied")).c_str(), capped ? " (a thread hit --max-ops before the end)" : "");
  if (cfg.verbose) {
    std::vector<std::string> d;
    describe_prefixes(&d);
    for (auto &l : d) printf("%s\n", l.c_str());
    std::map<std::string, uint64_t> kinds;
    for (auto &w : workers)
      for (const auto &op : w->log) kinds[kKindNames[op.kind]]++;
    std::string s = "# op counts:";
    for (auto &kv : kinds) s += " " + kv.first + "=" + std::to_string(kv.second);
    printf("%s\n", s.c_str());
  }
  if (!cfg.keep) rm_rf(root);
  else printf("# tree kept: %s\n", root.c_str());
  return 0;
}
