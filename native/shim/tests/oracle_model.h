// The oracle's model (see test_oracle.cc): one worker thread's world as a pure in-memory state
// machine. The world has two top directories, "S" (the thread's subtree of the backed-up source,
// S/t<k>) and "O" (its subtree of the outside directory, O/t<k>). Files are shared objects
// (hard links share one), open file descriptions are shared by dup'd handles, stdio streams
// buffer their bytes until a flush. apply() replays one logged operation, using the operation's
// real result: a failed call changes nothing, a write changes exactly the bytes it returned.
#pragma once
#include <fcntl.h>
#include <linux/falloc.h>
#include <sys/stat.h>

#include <cinttypes>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <map>
#include <memory>
#include <string>
#include <unordered_map>
#include <vector>

#ifndef RENAME_NOREPLACE
#define RENAME_NOREPLACE (1 << 0)
#endif
#ifndef RENAME_EXCHANGE
#define RENAME_EXCHANGE (1 << 1)
#endif

namespace oracle {

// ---- deterministic randomness ----
struct Rng {
  uint64_t s;
  explicit Rng(uint64_t seed) : s(seed) {}
  uint64_t next() {
    uint64_t z = (s += 0x9E3779B97F4A7C15ULL);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
    return z ^ (z >> 31);
  }
  uint64_t below(uint64_t n) { return n ? next() % n : 0; }
  bool pct(unsigned p) { return below(100) < p; }
};

inline uint64_t mix3(uint64_t a, uint64_t b, uint64_t c) {
  Rng r(a * 0x100000001B3ULL ^ (b << 32) ^ c ^ 0x5bd1e995ULL);
  r.next();
  return r.next();
}

// The bytes of a logged write are a pure function of (data seed, length).
inline std::string gen_bytes(uint64_t dseed, size_t len) {
  std::string out(len, '\0');
  Rng r(dseed);
  size_t i = 0;
  for (; i + 8 <= len; i += 8) {
    uint64_t v = r.next();
    memcpy(&out[i], &v, 8);
  }
  if (i < len) {
    uint64_t v = r.next();
    memcpy(&out[i], &v, len - i);
  }
  return out;
}

// ---- the log ----
enum Kind : uint8_t {
  K_MKDIR, K_RMDIR, K_OPEN, K_CREAT, K_CLOSE, K_DUP, K_PWRITE, K_WRITE, K_WRITEV, K_PWRITEV,
  K_LSEEK, K_FTRUNCATE, K_TRUNCATE, K_FALLOCATE, K_POSIX_FALLOCATE, K_RENAME, K_RENAMEAT2,
  K_UNLINK, K_SYMLINK, K_LINK, K_COPY_FILE_RANGE, K_FOPEN, K_FWRITE, K_FFLUSH, K_FCLOSE,
  K_COUNT
};
static const char *const kKindNames[K_COUNT] = {
    "mkdir", "rmdir", "open", "creat", "close", "dup", "pwrite", "write", "writev", "pwritev",
    "lseek", "ftruncate", "truncate", "fallocate", "posix_fallocate", "rename", "renameat2",
    "unlink", "symlink", "link", "copy_file_range", "fopen", "fwrite", "fflush", "fclose"};

struct Op {
  uint8_t kind = 0;
  int h = -1, h2 = -1;          // handles: fd or stream (h2: second fd, or the new handle of dup)
  std::string p1, p2;           // world paths ("S/d1/f3"); symlink: p1 = link, p2 = target
  int64_t off = 0, off2 = 0, len = 0;
  int flags = 0;                // open flags, fallocate mode, renameat2 flags
  unsigned mode = 0;            // creation mode as passed (before umask)
  uint64_t dseed = 0;           // data of writes: gen_bytes(dseed, len)
  std::vector<uint32_t> lens;   // writev/pwritev: iovec lengths (sum = len)
  int64_t ret = 0;              // the call's return value
  int err = 0;                  // errno when it failed
  int64_t t0 = 0, t1 = 0;       // CLOCK_REALTIME ns just before the call and just after it
};

inline std::string fmt_flags_open(int f) {
  std::string s;
  int acc = f & O_ACCMODE;
  s = acc == O_RDONLY ? "O_RDONLY" : acc == O_WRONLY ? "O_WRONLY" : "O_RDWR";
  if (f & O_CREAT) s += "|O_CREAT";
  if (f & O_EXCL) s += "|O_EXCL";
  if (f & O_TRUNC) s += "|O_TRUNC";
  if (f & O_APPEND) s += "|O_APPEND";
  return s;
}

inline std::string fmt_falloc(int m) {
  if (m == 0) return "0";
  std::string s;
  if (m & FALLOC_FL_KEEP_SIZE) s += "KEEP_SIZE";
  if (m & FALLOC_FL_PUNCH_HOLE) s += std::string(s.empty() ? "" : "|") + "PUNCH_HOLE";
  if (m & FALLOC_FL_ZERO_RANGE) s += std::string(s.empty() ? "" : "|") + "ZERO_RANGE";
  return s;
}

// Human-readable form, e.g. `pwrite(fd#3, off=4096, len=100) = 100`. t_base: ns subtracted
// from the times printed (the backup's started_at), 0 = no times.
inline std::string describe(const Op &op, int64_t t_base = 0) {
  char b[512];
  std::string args;
  switch (op.kind) {
    case K_MKDIR: snprintf(b, sizeof b, "%s, 0%o", op.p1.c_str(), op.mode); args = b; break;
    case K_RMDIR: case K_UNLINK: args = op.p1; break;
    case K_OPEN: snprintf(b, sizeof b, "%s, %s, 0%o -> fd#%d", op.p1.c_str(), fmt_flags_open(op.flags).c_str(), op.mode, op.h); args = b; break;
    case K_CREAT: snprintf(b, sizeof b, "%s, 0%o -> fd#%d", op.p1.c_str(), op.mode, op.h); args = b; break;
    case K_CLOSE: snprintf(b, sizeof b, "fd#%d", op.h); args = b; break;
    case K_DUP: snprintf(b, sizeof b, "fd#%d -> fd#%d", op.h, op.h2); args = b; break;
    case K_PWRITE: snprintf(b, sizeof b, "fd#%d, off=%" PRId64 ", len=%" PRId64, op.h, op.off, op.len); args = b; break;
    case K_WRITE: snprintf(b, sizeof b, "fd#%d, len=%" PRId64, op.h, op.len); args = b; break;
    case K_WRITEV: case K_PWRITEV: {
      std::string l;
      for (size_t i = 0; i < op.lens.size(); ++i) l += (i ? "," : "") + std::to_string(op.lens[i]);
      if (op.kind == K_WRITEV) snprintf(b, sizeof b, "fd#%d, iov=[%s]", op.h, l.c_str());
      else snprintf(b, sizeof b, "fd#%d, iov=[%s], off=%" PRId64, op.h, l.c_str(), op.off);
      args = b;
      break;
    }
    case K_LSEEK: snprintf(b, sizeof b, "fd#%d, %" PRId64 ", SEEK_SET", op.h, op.off); args = b; break;
    case K_FTRUNCATE: snprintf(b, sizeof b, "fd#%d, %" PRId64, op.h, op.len); args = b; break;
    case K_TRUNCATE: snprintf(b, sizeof b, "%s, %" PRId64, op.p1.c_str(), op.len); args = b; break;
    case K_FALLOCATE: snprintf(b, sizeof b, "fd#%d, %s, off=%" PRId64 ", len=%" PRId64, op.h, fmt_falloc(op.flags).c_str(), op.off, op.len); args = b; break;
    case K_POSIX_FALLOCATE: snprintf(b, sizeof b, "fd#%d, off=%" PRId64 ", len=%" PRId64, op.h, op.off, op.len); args = b; break;
    case K_RENAME: args = op.p1 + ", " + op.p2; break;
    case K_RENAMEAT2:
      args = op.p1 + ", " + op.p2 + ", " +
             (op.flags == RENAME_NOREPLACE ? "RENAME_NOREPLACE" : op.flags == RENAME_EXCHANGE ? "RENAME_EXCHANGE" : std::to_string(op.flags));
      break;
    case K_SYMLINK: args = "\"" + op.p2 + "\", " + op.p1; break;
    case K_LINK: args = op.p1 + ", " + op.p2; break;
    case K_COPY_FILE_RANGE: snprintf(b, sizeof b, "fd#%d@%" PRId64 " -> fd#%d@%" PRId64 ", len=%" PRId64, op.h, op.off, op.h2, op.off2, op.len); args = b; break;
    case K_FOPEN: snprintf(b, sizeof b, "%s, \"%s\" -> FILE#%d", op.p1.c_str(), op.p2.c_str(), op.h); args = b; break;
    case K_FWRITE: snprintf(b, sizeof b, "FILE#%d, len=%" PRId64, op.h, op.len); args = b; break;
    case K_FFLUSH: case K_FCLOSE: snprintf(b, sizeof b, "FILE#%d", op.h); args = b; break;
    default: args = "?"; break;
  }
  std::string s = std::string(op.kind < K_COUNT ? kKindNames[op.kind] : "?") + "(" + args + ") = " + std::to_string(op.ret);
  if (op.ret < 0 || ((op.kind == K_POSIX_FALLOCATE) && op.ret != 0)) s += std::string(" ") + strerrorname_np(op.err ? op.err : int(op.ret));
  if (t_base) {
    snprintf(b, sizeof b, "  [%+.3f .. %+.3f ms]", double(op.t0 - t_base) / 1e6, double(op.t1 - t_base) / 1e6);
    s += b;
  }
  return s;
}

// ---- the state ----
enum OType : uint8_t { T_FILE, T_DIR, T_LINK };
inline const char *type_name(OType t) { return t == T_FILE ? "regular file" : t == T_DIR ? "directory" : "symlink"; }

struct Obj;
using ObjP = std::shared_ptr<Obj>;
struct Obj {
  OType t = T_FILE;
  uint64_t id = 0;
  uint64_t ver = 0;              // bumped on every content change
  unsigned mode = 0;             // permission bits (& 07777)
  std::string data;              // regular file content
  std::map<std::string, ObjP> kids;  // directory entries
  std::string target;            // symlink target
  std::vector<uint32_t> hist;    // indices of the logged ops that changed it (model only)
};

struct OFD {  // an open file description
  ObjP f;
  int64_t off = 0;
  bool append = false, readable = true;
};
struct Stream {
  std::shared_ptr<OFD> ofd;
  std::string pending;  // bytes fwrite() buffered, not yet written
};

inline std::vector<std::string> split_path(const std::string &p) {
  std::vector<std::string> out;
  size_t i = 0;
  while (i <= p.size()) {
    size_t j = p.find('/', i);
    if (j == std::string::npos) j = p.size();
    if (j > i) out.push_back(p.substr(i, j - i));
    i = j + 1;
  }
  return out;
}

struct World {
  ObjP root;
  uint64_t next_id = 1;
  std::map<int, std::shared_ptr<OFD>> fds;
  std::map<int, Stream> streams;
  unsigned umask_bits = 022;
  std::string error;  // set when a logged success cannot be applied: the oracle itself is wrong

  World() {
    root = mk(T_DIR, 0755);
    root->kids["S"] = mk(T_DIR, 0755);
    root->kids["O"] = mk(T_DIR, 0755);
  }
  ObjP mk(OType t, unsigned mode) {
    auto o = std::make_shared<Obj>();
    o->t = t;
    o->id = next_id++;
    o->mode = mode & 07777;
    return o;
  }
  ObjP lookup(const std::string &path) const {
    ObjP cur = root;
    for (const auto &c : split_path(path)) {
      if (!cur || cur->t != T_DIR) return nullptr;
      auto it = cur->kids.find(c);
      if (it == cur->kids.end()) return nullptr;
      cur = it->second;
    }
    return cur;
  }
  // The directory that holds path's last component (null if there is none).
  Obj *parent(const std::string &path, std::string *name) const {
    auto comps = split_path(path);
    if (comps.empty()) return nullptr;
    *name = comps.back();
    comps.pop_back();
    ObjP cur = root;
    for (const auto &c : comps) {
      auto it = cur->kids.find(c);
      if (it == cur->kids.end() || it->second->t != T_DIR) return nullptr;
      cur = it->second;
    }
    return cur.get();
  }

  void bad(const Op &op, uint32_t idx, const char *why) {
    if (!error.empty()) return;
    error = "op #" + std::to_string(idx) + " " + describe(op) + ": " + why;
  }
  static void touch(Obj *o, uint32_t idx) {
    o->ver++;
    if (o->hist.empty() || o->hist.back() != idx) o->hist.push_back(idx);
  }
  static void write_at(Obj *f, int64_t off, const char *p, size_t n, uint32_t idx) {
    if (size_t(off) + n > f->data.size()) f->data.resize(size_t(off) + n, '\0');
    memcpy(&f->data[size_t(off)], p, n);
    touch(f, idx);
  }
  static void resize(Obj *f, int64_t len, uint32_t idx) {
    f->data.resize(size_t(len), '\0');
    touch(f, idx);
  }
  static void zero(Obj *f, int64_t a, int64_t b, uint32_t idx) {
    if (b > int64_t(f->data.size())) b = int64_t(f->data.size());
    if (a < b) memset(&f->data[size_t(a)], 0, size_t(b - a));
    touch(f, idx);
  }
  std::shared_ptr<OFD> fd(const Op &op, int h, uint32_t idx) {
    auto it = fds.find(h);
    if (it == fds.end()) {
      bad(op, idx, "unknown fd handle");
      return nullptr;
    }
    return it->second;
  }
  void flush(Stream &s, uint32_t idx) {
    if (s.pending.empty()) return;
    Obj *f = s.ofd->f.get();
    int64_t off = s.ofd->append ? int64_t(f->data.size()) : s.ofd->off;
    write_at(f, off, s.pending.data(), s.pending.size(), idx);
    s.ofd->off = off + int64_t(s.pending.size());
    s.pending.clear();
  }

  void apply(const Op &op, uint32_t idx) {
    std::string n, n2;
    switch (op.kind) {
      case K_MKDIR: {
        if (op.ret != 0) return;
        Obj *d = parent(op.p1, &n);
        if (!d || d->kids.count(n)) return bad(op, idx, "mkdir succeeded but the model has no parent or has the name");
        auto o = mk(T_DIR, op.mode & ~umask_bits);
        o->hist.push_back(idx);
        d->kids[n] = o;
        touch(d, idx);
        return;
      }
      case K_RMDIR: {
        if (op.ret != 0) return;
        Obj *d = parent(op.p1, &n);
        auto it = d ? d->kids.find(n) : std::map<std::string, ObjP>::iterator();
        if (!d || it == d->kids.end() || it->second->t != T_DIR || !it->second->kids.empty())
          return bad(op, idx, "rmdir succeeded but the model has no such empty directory");
        touch(it->second.get(), idx);
        d->kids.erase(it);
        touch(d, idx);
        return;
      }
      case K_OPEN: case K_CREAT: case K_FOPEN: {
        if (op.ret < 0) return;
        Obj *d = parent(op.p1, &n);
        if (!d) return bad(op, idx, "open succeeded but the model has no parent directory");
        ObjP f;
        auto it = d->kids.find(n);
        if (it == d->kids.end()) {
          if (!(op.flags & O_CREAT)) return bad(op, idx, "open without O_CREAT succeeded on a name the model lacks");
          f = mk(T_FILE, op.mode & ~umask_bits);
          f->hist.push_back(idx);
          d->kids[n] = f;
          touch(d, idx);
        } else {
          f = it->second;
          if (f->t != T_FILE) return bad(op, idx, "open succeeded on a non-regular file of the model");
          if (op.flags & O_EXCL) return bad(op, idx, "O_EXCL open succeeded on an existing name");
        }
        if (op.flags & O_TRUNC) resize(f.get(), 0, idx);
        auto o = std::make_shared<OFD>();
        o->f = f;
        o->append = (op.flags & O_APPEND) != 0;
        o->readable = (op.flags & O_ACCMODE) != O_WRONLY;
        if (op.kind == K_FOPEN) streams[op.h] = Stream{o, ""};
        else fds[op.h] = o;
        return;
      }
      case K_CLOSE: fds.erase(op.h); return;
      case K_DUP: {
        if (op.ret < 0) return;
        auto o = fd(op, op.h, idx);
        if (o) fds[op.h2] = o;
        return;
      }
      case K_PWRITE: case K_PWRITEV: case K_WRITE: case K_WRITEV: {
        if (op.ret < 0) return;
        auto o = fd(op, op.h, idx);
        if (!o) return;
        if (op.ret > op.len) return bad(op, idx, "wrote more than asked");
        bool positional = op.kind == K_PWRITE || op.kind == K_PWRITEV;
        // Linux: with O_APPEND even pwrite/pwritev append at the end of the file.
        int64_t off = o->append ? int64_t(o->f->data.size()) : positional ? op.off : o->off;
        if (op.ret > 0) {
          std::string data = gen_bytes(op.dseed, size_t(op.len));
          write_at(o->f.get(), off, data.data(), size_t(op.ret), idx);
        }
        if (!positional) o->off = off + op.ret;
        return;
      }
      case K_LSEEK: {
        if (op.ret < 0) return;
        auto o = fd(op, op.h, idx);
        if (o) o->off = op.ret;
        return;
      }
      case K_FTRUNCATE: {
        if (op.ret != 0) return;
        auto o = fd(op, op.h, idx);
        if (o) resize(o->f.get(), op.len, idx);
        return;
      }
      case K_TRUNCATE: {
        if (op.ret != 0) return;
        ObjP f = lookup(op.p1);
        if (!f || f->t != T_FILE) return bad(op, idx, "truncate succeeded on a name that is no regular file in the model");
        resize(f.get(), op.len, idx);
        return;
      }
      case K_FALLOCATE: case K_POSIX_FALLOCATE: {
        if (op.ret != 0) return;
        auto o = fd(op, op.h, idx);
        if (!o) return;
        Obj *f = o->f.get();
        int64_t size = int64_t(f->data.size()), end = op.off + op.len;
        int m = op.kind == K_POSIX_FALLOCATE ? 0 : op.flags;
        bool keep = (m & FALLOC_FL_KEEP_SIZE) != 0;
        if (m & FALLOC_FL_PUNCH_HOLE) {
          zero(f, op.off, end, idx);
        } else if (m & FALLOC_FL_ZERO_RANGE) {
          zero(f, op.off, end, idx);
          if (!keep && end > size) resize(f, end, idx);
        } else if (!keep && end > size) {
          resize(f, end, idx);
        }
        return;
      }
      case K_RENAME: case K_RENAMEAT2: {
        if (op.ret != 0) return;
        Obj *sd = parent(op.p1, &n);
        Obj *dd = parent(op.p2, &n2);
        if (!sd || !dd || !sd->kids.count(n)) return bad(op, idx, "rename succeeded but the model lacks the source");
        ObjP src = sd->kids[n];
        auto it = dd->kids.find(n2);
        if (op.kind == K_RENAMEAT2 && (op.flags & RENAME_EXCHANGE)) {
          if (it == dd->kids.end()) return bad(op, idx, "RENAME_EXCHANGE succeeded but the model lacks the target");
          ObjP dst = it->second;
          sd->kids[n] = dst;
          dd->kids[n2] = src;
        } else {
          if (it != dd->kids.end() && it->second == src) return;  // same file (or hard links to it): nothing happens
          if (op.kind == K_RENAMEAT2 && (op.flags & RENAME_NOREPLACE) && it != dd->kids.end())
            return bad(op, idx, "RENAME_NOREPLACE succeeded over an existing name");
          if (it != dd->kids.end()) touch(it->second.get(), idx);
          dd->kids[n2] = src;
          sd->kids.erase(n);
        }
        touch(src.get(), idx);
        touch(sd, idx);
        touch(dd, idx);
        return;
      }
      case K_UNLINK: {
        if (op.ret != 0) return;
        Obj *d = parent(op.p1, &n);
        auto it = d ? d->kids.find(n) : std::map<std::string, ObjP>::iterator();
        if (!d || it == d->kids.end() || it->second->t == T_DIR) return bad(op, idx, "unlink succeeded on a name the model lacks");
        touch(it->second.get(), idx);
        d->kids.erase(it);
        touch(d, idx);
        return;
      }
      case K_SYMLINK: {
        if (op.ret != 0) return;
        Obj *d = parent(op.p1, &n);
        if (!d || d->kids.count(n)) return bad(op, idx, "symlink succeeded but the model has no parent or has the name");
        auto o = mk(T_LINK, 0777);
        o->target = op.p2;
        o->hist.push_back(idx);
        d->kids[n] = o;
        touch(d, idx);
        return;
      }
      case K_LINK: {
        if (op.ret != 0) return;
        ObjP f = lookup(op.p1);
        Obj *d = parent(op.p2, &n2);
        if (!f || !d || d->kids.count(n2)) return bad(op, idx, "link succeeded but the model lacks the file or has the new name");
        d->kids[n2] = f;
        touch(f.get(), idx);
        touch(d, idx);
        return;
      }
      case K_COPY_FILE_RANGE: {
        if (op.ret <= 0) return;
        auto a = fd(op, op.h, idx), b = fd(op, op.h2, idx);
        if (!a || !b) return;
        if (size_t(op.off + op.ret) > a->f->data.size()) return bad(op, idx, "copy_file_range copied bytes beyond the source's end in the model");
        std::string bytes = a->f->data.substr(size_t(op.off), size_t(op.ret));
        write_at(b->f.get(), op.off2, bytes.data(), bytes.size(), idx);
        return;
      }
      case K_FWRITE: {
        auto it = streams.find(op.h);
        if (it == streams.end()) return bad(op, idx, "unknown stream");
        if (op.ret == 1) it->second.pending += gen_bytes(op.dseed, size_t(op.len));
        return;
      }
      case K_FFLUSH: case K_FCLOSE: {
        auto it = streams.find(op.h);
        if (it == streams.end()) return bad(op, idx, "unknown stream");
        if (op.ret == 0) flush(it->second, idx);
        if (op.kind == K_FCLOSE) streams.erase(it);
        return;
      }
      default: return bad(op, idx, "unknown op kind");
    }
  }
};

// ---- comparison of a model subtree with a tree read from disk ----
struct Diff {
  std::string path, text;
  ObjP model;  // the model's object at path (null when the model has none)
};

inline std::string hex_bytes(const std::string &d, size_t off, size_t n) {
  std::string s;
  char b[4];
  for (size_t i = off; i < off + n && i < d.size(); ++i) {
    snprintf(b, sizeof b, "%02x", (unsigned char)d[i]);
    if (!s.empty()) s += ' ';
    s += b;
  }
  if (off >= d.size()) s = "(beyond end of file)";
  return s;
}

class Comparer {
 public:
  // Pass count_only() as `out` to count differences without describing them.
  static std::vector<Diff> *count_only() {
    static std::vector<Diff> sentinel;
    return &sentinel;
  }

  // Number of differences between model dir m and disk dir b (each a T_DIR), at most `limit`;
  // with out == nullptr it stops at the first.
  size_t dirs(const Obj &m, const Obj &b, const std::string &path, std::vector<Diff> *out, size_t limit) {
    size_t n = 0;
    if (m.mode != b.mode) {
      if (!out) return 1;
      n += add(out, path, "directory mode: expected 0" + oct(m.mode) + ", backup has 0" + oct(b.mode), nullptr);
    }
    auto mi = m.kids.begin(), bi = b.kids.begin();
    while (mi != m.kids.end() || bi != b.kids.end()) {
      if (out && out->size() >= limit) return n;
      std::string sub;
      if (bi == b.kids.end() || (mi != m.kids.end() && mi->first < bi->first)) {
        if (!out) return 1;
        sub = path + "/" + mi->first;
        n += add(out, sub, std::string("missing from the backup: expected a ") + type_name(mi->second->t) + summary(*mi->second), mi->second);
        ++mi;
      } else if (mi == m.kids.end() || bi->first < mi->first) {
        if (!out) return 1;
        sub = path + "/" + bi->first;
        n += add(out, sub, std::string("extra in the backup: a ") + type_name(bi->second->t) + summary(*bi->second) + " that the source does not have", nullptr);
        ++bi;
      } else {
        sub = path + "/" + mi->first;
        size_t k = entry(mi->second, *bi->second, sub, out, limit);
        if (k && !out) return k;
        n += k;
        ++mi;
        ++bi;
      }
    }
    return n;
  }

  size_t entry(const ObjP &mp, const Obj &b, const std::string &path, std::vector<Diff> *out, size_t limit) {
    const Obj &m = *mp;
    if (m.t != b.t) {
      if (!out) return 1;
      return add(out, path, std::string("type: expected a ") + type_name(m.t) + summary(m) + ", backup has a " + type_name(b.t) + summary(b), mp);
    }
    if (m.t == T_DIR) return dirs(m, b, path, out, limit);
    if (m.t == T_LINK) {
      if (m.target == b.target) return 0;
      if (!out) return 1;
      return add(out, path, "symlink target: expected \"" + m.target + "\", backup has \"" + b.target + "\"", mp);
    }
    size_t n = 0;
    if (m.mode != b.mode) {
      if (!out) return 1;
      n += add(out, path, "file mode: expected 0" + oct(m.mode) + ", backup has 0" + oct(b.mode), mp);
    }
    if (!file_eq(m, b)) {
      if (!out) return 1;
      n += add(out, path, out == count_only() ? std::string() : content_diff(m.data, b.data), mp);
    }
    return n;
  }

  static std::string content_diff(const std::string &exp, const std::string &act) {
    size_t common = std::min(exp.size(), act.size());
    size_t a = 0;
    while (a < common && exp[a] == act[a]) ++a;
    char b[256];
    std::string s;
    if (a == common) {
      snprintf(b, sizeof b, "size: expected %zu bytes, backup has %zu (the first %zu bytes agree)", exp.size(), act.size(), common);
      return b;
    }
    // The first run of differing bytes: up to where 16 consecutive bytes agree again.
    size_t e = a, same = 0;
    for (size_t i = a; i < common; ++i) {
      if (exp[i] == act[i]) {
        if (++same >= 16) break;
      } else {
        same = 0;
        e = i + 1;
      }
    }
    size_t ndiff = 0;
    for (size_t i = 0; i < common; ++i) ndiff += exp[i] != act[i];
    bool act_zero = true, exp_zero = true;
    for (size_t i = a; i < e; ++i) {
      act_zero &= act[i] == 0;
      exp_zero &= exp[i] == 0;
    }
    snprintf(b, sizeof b, "content: first difference at offset %zu, differing run [%zu, %zu) (%zu bytes)%s%s; %zu differing bytes in all; size expected %zu, backup %zu",
             a, a, e, e - a, act_zero ? ", backup has zeros there" : "", exp_zero ? ", expected zeros there" : "", ndiff, exp.size(), act.size());
    s = b;
    s += "\n        expected @" + std::to_string(a) + ": " + hex_bytes(exp, a, 16);
    s += "\n        backup   @" + std::to_string(a) + ": " + hex_bytes(act, a, 16);
    return s;
  }

 private:
  struct Key {
    uint64_t id, ver;
    const Obj *b;
    bool operator==(const Key &o) const { return id == o.id && ver == o.ver && b == o.b; }
  };
  struct KeyHash {
    size_t operator()(const Key &k) const { return std::hash<uint64_t>()(k.id * 1000003ULL ^ k.ver * 998244353ULL ^ uintptr_t(k.b)); }
  };
  std::unordered_map<Key, bool, KeyHash> cache_;

  bool file_eq(const Obj &m, const Obj &b) {
    if (m.data.size() != b.data.size()) return false;
    Key k{m.id, m.ver, &b};
    auto it = cache_.find(k);
    if (it != cache_.end()) return it->second;
    bool eq = m.data == b.data;
    if (cache_.size() > 4000000) cache_.clear();
    cache_.emplace(k, eq);
    return eq;
  }
  static std::string oct(unsigned m) {
    char b[16];
    snprintf(b, sizeof b, "%o", m);
    return b;
  }
  static std::string summary(const Obj &o) {
    if (o.t == T_FILE) return " (" + std::to_string(o.data.size()) + " bytes, mode 0" + oct(o.mode) + ")";
    if (o.t == T_LINK) return " (-> \"" + o.target + "\")";
    return " (" + std::to_string(o.kids.size()) + " entries, mode 0" + oct(o.mode) + ")";
  }
  static size_t add(std::vector<Diff> *out, const std::string &path, const std::string &text, ObjP m) {
    if (out != count_only()) out->push_back(Diff{path, text, std::move(m)});
    return 1;
  }
};

}  // namespace oracle
