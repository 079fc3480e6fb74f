// The test harness: see harness.h.
#include "harness.h"

#include <dirent.h>
#include <dlfcn.h>
#include <fcntl.h>
#include <limits.h>
#include <link.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <cmath>

#include "hotbackup.h"

namespace hbt {

// ============================================================== JSON
static const Json kNull;

bool Json::has(const std::string &k) const {
  if (type != Obj) return false;
  for (auto &p : o)
    if (p.first == k) return true;
  return false;
}
const Json *Json::get(const std::string &k) const {
  if (type != Obj) return nullptr;
  for (auto &p : o)
    if (p.first == k) return &p.second;
  return nullptr;
}
const Json &Json::operator[](const std::string &k) const {
  if (type != Obj) return kNull;
  for (auto &p : o)
    if (p.first == k) return p.second;
  return kNull;
}
const Json &Json::operator[](size_t i) const {
  if (type != Arr || i >= a.size()) return kNull;
  return a[i];
}

std::string jstr(const std::string &s) {
  std::string r = "\"";
  for (unsigned char c : s) {
    switch (c) {
      case '"': r += "\\\""; break;
      case '\\': r += "\\\\"; break;
      case '\n': r += "\\n"; break;
      case '\r': r += "\\r"; break;
      case '\t': r += "\\t"; break;
      default:
        if (c < 0x20) {
          char b[8];
          snprintf(b, sizeof b, "\\u%04x", c);
          r += b;
        } else {
          r += (char)c;
        }
    }
  }
  return r + "\"";
}

std::string Json::dump() const {
  switch (type) {
    case Null: return "null";
    case Bool: return b ? "true" : "false";
    case Num: {
      char buf[64];
      if (std::fabs(n) < 9e15 && n == (double)(long long)n)
        snprintf(buf, sizeof buf, "%lld", (long long)n);
      else
        snprintf(buf, sizeof buf, "%.17g", n);
      return buf;
    }
    case Str: return jstr(s);
    case Arr: {
      std::string r = "[";
      for (size_t i = 0; i < a.size(); i++) r += (i ? "," : "") + a[i].dump();
      return r + "]";
    }
    case Obj: {
      std::string r = "{";
      for (size_t i = 0; i < o.size(); i++) r += (i ? "," : "") + jstr(o[i].first) + ":" + o[i].second.dump();
      return r + "}";
    }
  }
  return "null";
}

namespace {
struct Parser {
  const std::string &t;
  size_t i = 0;
  std::string err;
  explicit Parser(const std::string &text) : t(text) {}
  void ws() {
    while (i < t.size() && (t[i] == ' ' || t[i] == '\t' || t[i] == '\n' || t[i] == '\r')) i++;
  }
  bool fail(const std::string &m) {
    if (err.empty()) err = m + " at offset " + std::to_string(i);
    return false;
  }
  static void utf8(std::string &out, unsigned cp) {
    if (cp < 0x80) {
      out += (char)cp;
    } else if (cp < 0x800) {
      out += (char)(0xC0 | (cp >> 6));
      out += (char)(0x80 | (cp & 0x3F));
    } else if (cp < 0x10000) {
      out += (char)(0xE0 | (cp >> 12));
      out += (char)(0x80 | ((cp >> 6) & 0x3F));
      out += (char)(0x80 | (cp & 0x3F));
    } else {
      out += (char)(0xF0 | (cp >> 18));
      out += (char)(0x80 | ((cp >> 12) & 0x3F));
      out += (char)(0x80 | ((cp >> 6) & 0x3F));
      out += (char)(0x80 | (cp & 0x3F));
    }
  }
  bool hex4(unsigned &v) {
    if (i + 4 > t.size()) return fail("short \\u escape");
    v = 0;
    for (int k = 0; k < 4; k++) {
      char c = t[i++];
      v <<= 4;
      if (c >= '0' && c <= '9') v |= c - '0';
      else if (c >= 'a' && c <= 'f') v |= c - 'a' + 10;
      else if (c >= 'A' && c <= 'F') v |= c - 'A' + 10;
      else return fail("bad \\u escape");
    }
    return true;
  }
  bool string(std::string &out) {
    if (t[i] != '"') return fail("expected string");
    i++;
    while (i < t.size()) {
      char c = t[i++];
      if (c == '"') return true;
      if ((unsigned char)c < 0x20) return fail("control character in string");
      if (c != '\\') {
        out += c;
        continue;
      }
      if (i >= t.size()) break;
      char e = t[i++];
      switch (e) {
        case '"': out += '"'; break;
        case '\\': out += '\\'; break;
        case '/': out += '/'; break;
        case 'b': out += '\b'; break;
        case 'f': out += '\f'; break;
        case 'n': out += '\n'; break;
        case 'r': out += '\r'; break;
        case 't': out += '\t'; break;
        case 'u': {
          unsigned v = 0;
          if (!hex4(v)) return false;
          if (v >= 0xD800 && v < 0xDC00 && i + 6 <= t.size() && t[i] == '\\' && t[i + 1] == 'u') {
            i += 2;
            unsigned lo = 0;
            if (!hex4(lo)) return false;
            v = 0x10000 + ((v - 0xD800) << 10) + (lo - 0xDC00);
          }
          utf8(out, v);
          break;
        }
        default: return fail("bad escape");
      }
    }
    return fail("unterminated string");
  }
  bool value(Json &v, int depth) {
    if (depth > 200) return fail("too deep");
    ws();
    if (i >= t.size()) return fail("unexpected end");
    char c = t[i];
    if (c == '{') {
      v.type = Json::Obj;
      i++;
      ws();
      if (i < t.size() && t[i] == '}') {
        i++;
        return true;
      }
      for (;;) {
        ws();
        if (i >= t.size()) return fail("unexpected end in object");
        std::string k;
        if (!string(k)) return false;
        ws();
        if (i >= t.size() || t[i] != ':') return fail("expected ':'");
        i++;
        Json m;
        if (!value(m, depth + 1)) return false;
        v.o.emplace_back(std::move(k), std::move(m));
        ws();
        if (i < t.size() && t[i] == ',') {
          i++;
          continue;
        }
        if (i < t.size() && t[i] == '}') {
          i++;
          return true;
        }
        return fail("expected ',' or '}'");
      }
    }
    if (c == '[') {
      v.type = Json::Arr;
      i++;
      ws();
      if (i < t.size() && t[i] == ']') {
        i++;
        return true;
      }
      for (;;) {
        Json m;
        if (!value(m, depth + 1)) return false;
        v.a.push_back(std::move(m));
        ws();
        if (i < t.size() && t[i] == ',') {
          i++;
          continue;
        }
        if (i < t.size() && t[i] == ']') {
          i++;
          return true;
        }
        return fail("expected ',' or ']'");
      }
    }
    if (c == '"') {
      v.type = Json::Str;
      return string(v.s);
    }
    if (t.compare(i, 4, "true") == 0) {
      v.type = Json::Bool;
      v.b = true;
      i += 4;
      return true;
    }
    if (t.compare(i, 5, "false") == 0) {
      v.type = Json::Bool;
      i += 5;
      return true;
    }
    if (t.compare(i, 4, "null") == 0) {
      i += 4;
      return true;
    }
    if (c == '-' || (c >= '0' && c <= '9')) {
      const char *start = t.c_str() + i;
      char *end = nullptr;
      v.type = Json::Num;
      v.n = strtod(start, &end);
      if (end == start) return fail("bad number");
      i += end - start;
      return true;
    }
    return fail(std::string("unexpected character '") + c + "'");
  }
};
}  // namespace

Json parse_json(const std::string &text, std::string *err) {
  Parser p(text);
  Json v;
  if (!p.value(v, 0)) {
    if (err) *err = p.err;
    return Json();
  }
  p.ws();
  if (p.i != text.size()) {
    if (err) *err = "trailing characters at offset " + std::to_string(p.i);
    return Json();
  }
  if (err) err->clear();
  return v;
}

// ============================================================== failures and output
namespace {
struct Test {
  std::string name;
  TestFn fn;
};
std::vector<Test> &registry() {
  static std::vector<Test> r;
  return r;
}
bool g_failed = false;
bool g_skipped = false;
std::string g_skip_reason;
struct SkipSignal {};

std::string shorten(const std::string &s, size_t max = 300) {
  if (s.size() <= max) return s;
  return s.substr(0, max) + "...(" + std::to_string(s.size()) + " bytes)";
}
}  // namespace

std::string show(const std::string &v) {
  std::string q = jstr(v);
  return shorten(q);
}
std::string show(const char *v) { return v ? show(std::string(v)) : std::string("(null)"); }

void note(const std::string &msg) {
  std::string m = msg;
  size_t p = 0;
  while ((p = m.find('\n', p)) != std::string::npos) {
    m.replace(p, 1, "\n# ");
    p += 3;
  }
  printf("# %s\n", m.c_str());
  fflush(stdout);
}

void fail_here(const char *file, int line, const std::string &msg) {
  g_failed = true;
  const char *f = strrchr(file, '/');
  note(std::string(f ? f + 1 : file) + ":" + std::to_string(line) + ": " + msg);
}

void abort_here(const char *file, int line, const std::string &msg) {
  fail_here(file, line, msg);
  throw TestAbort(msg);
}

bool current_test_failed() { return g_failed; }

void skip(const std::string &why) {
  g_skipped = true;
  g_skip_reason = why;
  throw SkipSignal();
}

std::string errno_name(int e) {
  const char *n = strerrorname_np(e);
  return n ? n : ("errno " + std::to_string(e));
}

long long check_sys(const char *file, int line, const char *expr, long long r, bool fatal) {
  if (r >= 0) return r;
  int e = errno;
  std::string m = std::string(expr) + " returned " + std::to_string(r) + ", errno " + errno_name(e) + " (" +
                  strerror(e) + ")";
  if (fatal) abort_here(file, line, m);
  fail_here(file, line, m);
  errno = e;
  return r;
}

bool check_tree(const char *file, int line, const std::string &a, const std::string &b, bool fatal) {
  std::string d = tree_equal(a, b);
  if (d.empty()) return true;
  std::string m = "trees differ: " + a + " vs " + b + ": " + d;
  if (fatal) abort_here(file, line, m);
  fail_here(file, line, m);
  return false;
}

int register_test(const char *name, TestFn fn) {
  registry().push_back({name, fn});
  return (int)registry().size();
}

// ============================================================== the shim
Reply request(const std::string &json) {
  Reply r;
  char *out = hotbackup_request(json.c_str());
  if (!out) abort_here(__FILE__, __LINE__, "hotbackup_request returned NULL for " + shorten(json));
  r.raw = out;
  hotbackup_free(out);
  std::string err;
  r.j = parse_json(r.raw, &err);
  if (!err.empty()) abort_here(__FILE__, __LINE__, "reply is not JSON (" + err + "): " + shorten(r.raw, 500));
  if (!r.j.is_obj() || r.j["ok"].type != Json::Bool)
    abort_here(__FILE__, __LINE__, "reply has no boolean \"ok\": " + shorten(r.raw, 500));
  return r;
}

Reply request_ok(const std::string &json) {
  Reply r = request(json);
  if (!r.ok()) abort_here(__FILE__, __LINE__, "request " + shorten(json) + " failed: " + shorten(r.raw, 500));
  return r;
}

Json status() {
  Reply r = request_ok("{\"op\":\"status\"}");
  if (!r.status().is_obj()) abort_here(__FILE__, __LINE__, "status reply without status object: " + r.raw);
  return r.status();
}

std::string state() { return status()["state"].str(); }

Reply start(const std::string &dest, const std::vector<std::string> &sources, long long throttle) {
  std::string q = "{\"op\":\"start\",\"dest\":" + jstr(dest);
  if (!sources.empty()) {
    q += ",\"sources\":[";
    for (size_t i = 0; i < sources.size(); i++) q += (i ? "," : "") + jstr(sources[i]);
    q += "]";
  }
  if (throttle >= 0) q += ",\"throttle_bytes_per_sec\":" + std::to_string(throttle);
  q += "}";
  return request(q);
}

Json start_ok(const std::string &dest, const std::vector<std::string> &sources, long long throttle) {
  Reply r = start(dest, sources, throttle);
  if (!r.ok()) abort_here(__FILE__, __LINE__, "start of a backup to " + dest + " failed: " + shorten(r.raw, 500));
  return r.status();
}

bool is_terminal(const std::string &s) {
  return s == "idle" || s == "done" || s == "failed" || s == "cancelled";
}

static double now_s() {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return ts.tv_sec + ts.tv_nsec / 1e9;
}

// Polling pace: starts fast, backs off to 5 ms. Only a pace, never a synchronisation.
static void poll_pause(int iteration) {
  struct timespec ts = {0, iteration < 100 ? 200000L : 5000000L};
  nanosleep(&ts, nullptr);
}

Json wait_state(const std::vector<std::string> &states, double limit_s) {
  double deadline = now_s() + limit_s;
  Json s;
  for (int it = 0;; it++) {
    s = status();
    std::string st = s["state"].str();
    for (auto &w : states)
      if (st == w) return s;
    if (now_s() > deadline) {
      std::string want;
      for (auto &w : states) want += (want.empty() ? "" : "|") + w;
      abort_here(__FILE__, __LINE__,
                 "state never became " + want + " within " + std::to_string((int)limit_s) + " s; last status: " +
                     s.dump());
    }
    poll_pause(it);
  }
}

Json wait_terminal(double limit_s) { return wait_state({"idle", "done", "failed", "cancelled"}, limit_s); }

std::string manifest_path(const std::string &dest) { return dest + "/hotbackup_manifest.json"; }

Json wait_done(double limit_s) {
  Json s = wait_terminal(limit_s);
  if (s["state"].str() != "done") abort_here(__FILE__, __LINE__, "backup did not end done: " + s.dump());
  std::string d = s["dest"].str();
  if (d.empty() || !exists(manifest_path(d)))
    abort_here(__FILE__, __LINE__, "backup done but no manifest in dest: " + s.dump());
  return s;
}

Json backup(const std::string &dest, const std::vector<std::string> &sources, long long throttle) {
  start_ok(dest, sources, throttle);
  return wait_done();
}

void arm(const std::string &point) {
  request_ok("{\"op\":\"test_pause\",\"point\":" + jstr(point) + ",\"on\":true}");
}
void release(const std::string &point) {
  request_ok("{\"op\":\"test_pause\",\"point\":" + jstr(point) + ",\"on\":false}");
}

static bool wait_paused_impl(const std::string &point, double limit_s, bool end_ok, Json *reply) {
  double deadline = now_s() + limit_s;
  for (int it = 0;; it++) {
    Reply r = request_ok("{\"op\":\"test_paused\"}");
    if (r.j["paused"].str() == point) {
      if (reply) *reply = r.j;
      return true;
    }
    Json s = status();
    std::string st = s["state"].str();
    if (st != "copying" && st != "finishing") {
      if (end_ok && is_terminal(st)) return false;
      abort_here(__FILE__, __LINE__,
                 "waiting for the copier to pause at " + point + ", but the backup is " + st + ": " + s.dump());
    }
    if (now_s() > deadline)
      abort_here(__FILE__, __LINE__,
                 "copier never paused at " + point + " within " + std::to_string((int)limit_s) +
                     " s; test_paused: " + r.raw + " status: " + s.dump());
    poll_pause(it);
  }
}

Json wait_paused(const std::string &point, double limit_s) {
  Json r;
  wait_paused_impl(point, limit_s, false, &r);
  return r;
}

bool wait_paused_or_end(const std::string &point, double limit_s) {
  return wait_paused_impl(point, limit_s, true, nullptr);
}

const std::vector<std::string> kCallKinds = {"open", "write", "close",    "rename", "unlink",  "mkdir",
                                             "fsync", "read",  "truncate", "link",   "symlink", "rmdir"};

void fault(const std::string &call, long nth, int err) {
  request_ok("{\"op\":\"test_fault\",\"call\":" + jstr(call) + ",\"nth\":" + std::to_string(nth) +
             ",\"errno\":" + std::to_string(err) + "}");
}

std::map<std::string, long long> counts() {
  Reply r = request_ok("{\"op\":\"test_counts\"}");
  std::map<std::string, long long> m;
  const Json &c = r.j["counts"];
  if (!c.is_obj()) abort_here(__FILE__, __LINE__, "test_counts reply without counts: " + r.raw);
  for (auto &p : c.o) m[p.first] = p.second.num();
  return m;
}

void reset_shim() {
  for (const char *p : {"copy_start", "chunk", "cut"})
    request("{\"op\":\"test_pause\",\"point\":\"" + std::string(p) + "\",\"on\":false}");
  for (auto &k : kCallKinds) request("{\"op\":\"test_fault\",\"call\":" + jstr(k) + ",\"nth\":0,\"errno\":0}");
  Json s = status();
  if (!is_terminal(s["state"].str())) {
    request("{\"op\":\"cancel\"}");
    wait_terminal(300);
  }
}

Json during(Ctx &t, const std::string &point, const std::function<void()> &fn, const std::vector<std::string> &sources) {
  arm(point);
  start_ok(t.D, sources.empty() ? std::vector<std::string>{t.S} : sources);
  wait_paused(point);
  fn();
  release(point);
  return wait_done();
}

Json during_chunk(Ctx &t, const std::function<void(const std::string &)> &fn) {
  arm("chunk");
  start_ok(t.D, {t.S});
  Json r = wait_paused("chunk");
  std::string p = r["paused_path"].str();
  if (p.empty()) abort_here(__FILE__, __LINE__, "paused at chunk without paused_path: " + r.dump());
  fn(p);
  release("chunk");
  return wait_done();
}

// ============================================================== files
void write_file(const std::string &path, const std::string &data, mode_t mode) {
  int fd = open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, mode);
  if (fd < 0) abort_here(__FILE__, __LINE__, "cannot create " + path + ": " + strerror(errno));
  size_t off = 0;
  while (off < data.size()) {
    ssize_t w = write(fd, data.data() + off, data.size() - off);
    if (w <= 0) {
      int e = errno;
      close(fd);
      abort_here(__FILE__, __LINE__, "cannot write " + path + ": " + strerror(e));
    }
    off += w;
  }
  if (fchmod(fd, mode) != 0) abort_here(__FILE__, __LINE__, "fchmod " + path + ": " + strerror(errno));
  close(fd);
}

std::string read_file(const std::string &path) {
  int fd = open(path.c_str(), O_RDONLY);
  if (fd < 0) abort_here(__FILE__, __LINE__, "cannot open " + path + ": " + strerror(errno));
  std::string r;
  char buf[65536];
  for (;;) {
    ssize_t n = read(fd, buf, sizeof buf);
    if (n < 0) {
      int e = errno;
      close(fd);
      abort_here(__FILE__, __LINE__, "cannot read " + path + ": " + strerror(e));
    }
    if (n == 0) break;
    r.append(buf, n);
  }
  close(fd);
  return r;
}

bool exists(const std::string &path) {
  struct stat st;
  return lstat(path.c_str(), &st) == 0;
}

bool is_dir(const std::string &path) {
  struct stat st;
  return lstat(path.c_str(), &st) == 0 && S_ISDIR(st.st_mode);
}

long long file_size(const std::string &path) {
  struct stat st;
  if (lstat(path.c_str(), &st) != 0) return -1;
  return st.st_size;
}

void make_dirs(const std::string &path, mode_t mode) {
  std::string cur;
  size_t i = 0;
  while (i <= path.size()) {
    size_t j = path.find('/', i);
    if (j == std::string::npos) j = path.size();
    cur = path.substr(0, j);
    if (!cur.empty() && mkdir(cur.c_str(), mode) != 0 && errno != EEXIST)
      abort_here(__FILE__, __LINE__, "mkdir " + cur + ": " + strerror(errno));
    i = j + 1;
  }
}

void remove_tree(const std::string &path) {
  struct stat st;
  if (lstat(path.c_str(), &st) != 0) return;
  if (S_ISDIR(st.st_mode)) {
    chmod(path.c_str(), 0700);
    DIR *d = opendir(path.c_str());
    if (d) {
      std::vector<std::string> names;
      while (struct dirent *e = readdir(d)) {
        if (strcmp(e->d_name, ".") && strcmp(e->d_name, "..")) names.push_back(e->d_name);
      }
      closedir(d);
      for (auto &n : names) remove_tree(path + "/" + n);
    }
    rmdir(path.c_str());
  } else {
    unlink(path.c_str());
  }
}

void copy_tree(const std::string &from, const std::string &to) {
  struct stat st;
  if (lstat(from.c_str(), &st) != 0) abort_here(__FILE__, __LINE__, "copy_tree: lstat " + from + ": " + strerror(errno));
  if (S_ISDIR(st.st_mode)) {
    if (mkdir(to.c_str(), 0700) != 0) abort_here(__FILE__, __LINE__, "copy_tree: mkdir " + to + ": " + strerror(errno));
    DIR *d = opendir(from.c_str());
    if (!d) abort_here(__FILE__, __LINE__, "copy_tree: opendir " + from + ": " + strerror(errno));
    std::vector<std::string> names;
    while (struct dirent *e = readdir(d))
      if (strcmp(e->d_name, ".") && strcmp(e->d_name, "..")) names.push_back(e->d_name);
    closedir(d);
    for (auto &n : names) copy_tree(from + "/" + n, to + "/" + n);
    chmod(to.c_str(), st.st_mode & 07777);
  } else if (S_ISLNK(st.st_mode)) {
    char buf[PATH_MAX];
    ssize_t n = readlink(from.c_str(), buf, sizeof buf);
    if (n < 0) abort_here(__FILE__, __LINE__, "copy_tree: readlink " + from);
    if (symlink(std::string(buf, n).c_str(), to.c_str()) != 0)
      abort_here(__FILE__, __LINE__, "copy_tree: symlink " + to + ": " + strerror(errno));
  } else if (S_ISREG(st.st_mode)) {
    write_file(to, read_file(from), st.st_mode & 07777);
  } else {
    abort_here(__FILE__, __LINE__, "copy_tree: unsupported file type at " + from);
  }
}

std::string pattern(size_t n, unsigned seed) {
  std::string r(n, '\0');
  uint64_t x = 0x9E3779B97F4A7C15ull ^ ((uint64_t)seed * 0xBF58476D1CE4E5B9ull);
  for (size_t i = 0; i < n; i++) {
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    r[i] = (char)('a' + (x % 26));
  }
  return r;
}

static const char *type_name(mode_t m) {
  if (S_ISREG(m)) return "regular file";
  if (S_ISDIR(m)) return "directory";
  if (S_ISLNK(m)) return "symlink";
  if (S_ISFIFO(m)) return "fifo";
  if (S_ISSOCK(m)) return "socket";
  return "special file";
}

static std::vector<std::string> list_dir(const std::string &p, std::string *err) {
  std::vector<std::string> names;
  DIR *d = opendir(p.c_str());
  if (!d) {
    *err = "cannot open directory " + p + ": " + strerror(errno);
    return names;
  }
  while (struct dirent *e = readdir(d))
    if (strcmp(e->d_name, ".") && strcmp(e->d_name, "..")) names.push_back(e->d_name);
  closedir(d);
  std::sort(names.begin(), names.end());
  return names;
}

static std::string fmt_mode(mode_t m) {
  char b[16];
  snprintf(b, sizeof b, "0%o", (unsigned)(m & 07777));
  return b;
}

static std::string tree_diff(const std::string &a, const std::string &b, const std::string &rel, bool top,
                             bool compare_mode) {
  struct stat sa, sb;
  std::string where = rel.empty() ? "(top)" : rel;
  if (lstat(a.c_str(), &sa) != 0) return where + ": missing in the first tree (" + a + ")";
  if (lstat(b.c_str(), &sb) != 0) return where + ": missing in the second tree (" + b + ")";
  if ((sa.st_mode & S_IFMT) != (sb.st_mode & S_IFMT))
    return where + ": " + type_name(sa.st_mode) + " vs " + type_name(sb.st_mode);
  if (compare_mode && (sa.st_mode & 07777) != (sb.st_mode & 07777))
    return where + ": mode " + fmt_mode(sa.st_mode) + " vs " + fmt_mode(sb.st_mode);
  if (S_ISLNK(sa.st_mode)) {
    char ba[PATH_MAX], bb[PATH_MAX];
    ssize_t na = readlink(a.c_str(), ba, sizeof ba), nb = readlink(b.c_str(), bb, sizeof bb);
    std::string ta(ba, na > 0 ? na : 0), tb(bb, nb > 0 ? nb : 0);
    if (ta != tb) return where + ": symlink target " + show(ta) + " vs " + show(tb);
    return "";
  }
  if (S_ISREG(sa.st_mode)) {
    if (sa.st_size != sb.st_size)
      return where + ": size " + std::to_string((long long)sa.st_size) + " vs " + std::to_string((long long)sb.st_size);
    std::string ca = read_file(a), cb = read_file(b);
    if (ca != cb) {
      size_t i = 0;
      while (i < ca.size() && i < cb.size() && ca[i] == cb[i]) i++;
      size_t len = std::min<size_t>(16, std::max(ca.size(), cb.size()) - i);
      return where + ": content differs at byte " + std::to_string(i) + ": " +
             show(ca.substr(i, std::min(len, ca.size() - std::min(i, ca.size())))) + " vs " +
             show(cb.substr(i, std::min(len, cb.size() - std::min(i, cb.size()))));
    }
    return "";
  }
  if (S_ISDIR(sa.st_mode)) {
    std::string err;
    std::vector<std::string> na = list_dir(a, &err);
    if (!err.empty()) return where + ": " + err;
    std::vector<std::string> nb = list_dir(b, &err);
    if (!err.empty()) return where + ": " + err;
    if (top) {
      auto tool = [](const std::string &n) { return n.rfind("hotbackup_", 0) == 0; };
      na.erase(std::remove_if(na.begin(), na.end(), tool), na.end());
      nb.erase(std::remove_if(nb.begin(), nb.end(), tool), nb.end());
    }
    size_t i = 0, j = 0;
    while (i < na.size() || j < nb.size()) {
      if (j >= nb.size() || (i < na.size() && na[i] < nb[j]))
        return (rel.empty() ? "" : rel + "/") + na[i] + ": only in the first tree";
      if (i >= na.size() || nb[j] < na[i]) return (rel.empty() ? "" : rel + "/") + nb[j] + ": only in the second tree";
      i++, j++;
    }
    for (auto &n : na) {
      std::string r = rel.empty() ? n : rel + "/" + n;
      std::string d = tree_diff(a + "/" + n, b + "/" + n, r, false, true);
      if (!d.empty()) return d;
    }
    return "";
  }
  return where + ": unsupported file type " + type_name(sa.st_mode);
}

std::string tree_equal(const std::string &a, const std::string &b, bool compare_root_mode) {
  return tree_diff(a, b, "", true, compare_root_mode);
}

// ============================================================== threads, processes
pid_t gettid_() { return (pid_t)syscall(SYS_gettid); }

bool wait_blocked(pid_t tid, double limit_s) {
  double deadline = now_s() + limit_s;
  std::string p = "/proc/self/task/" + std::to_string(tid) + "/stat";
  for (int it = 0; now_s() < deadline; it++) {
    int fd = open(p.c_str(), O_RDONLY);
    if (fd < 0) return false;
    char buf[512];
    ssize_t n = read(fd, buf, sizeof buf - 1);
    close(fd);
    if (n > 0) {
      buf[n] = 0;
      const char *rp = strrchr(buf, ')');
      if (rp && (rp[2] == 'S' || rp[2] == 'D')) return true;
    }
    poll_pause(it);
  }
  return false;
}

std::string shim_path() {
  Dl_info info;
  if (dladdr((void *)&hotbackup_request, &info) && info.dli_fname) {
    char buf[PATH_MAX];
    if (realpath(info.dli_fname, buf)) return buf;
    return info.dli_fname;
  }
  return "";
}

static int find_runtime(struct dl_phdr_info *info, size_t, void *data) {
  std::string *out = (std::string *)data;
  const char *n = info->dlpi_name;
  if (n && (strstr(n, "/libasan.so") || strstr(n, "/libtsan.so") || strstr(n, "/libubsan.so"))) {
    if (!out->empty()) *out += ":";
    *out += n;
  }
  return 0;
}

std::string sanitizer_runtime() {
  std::string r;
  dl_iterate_phdr(find_runtime, &r);
  return r;
}

int run_child(const std::vector<std::string> &argv, const std::vector<std::string> &env, std::string *out,
              double limit_s) {
  int pfd[2];
  if (pipe2(pfd, O_CLOEXEC) != 0) abort_here(__FILE__, __LINE__, std::string("pipe: ") + strerror(errno));
  pid_t pid = fork();
  if (pid < 0) abort_here(__FILE__, __LINE__, std::string("fork: ") + strerror(errno));
  if (pid == 0) {
    dup2(pfd[1], 1);
    dup2(pfd[1], 2);
    for (auto &e : env) putenv(strdup(e.c_str()));
    std::vector<char *> av;
    for (auto &a : argv) av.push_back(strdup(a.c_str()));
    av.push_back(nullptr);
    execvp(av[0], av.data());
    dprintf(2, "exec %s: %s\n", av[0], strerror(errno));
    _exit(127);
  }
  close(pfd[1]);
  std::string o;
  double deadline = now_s() + limit_s;
  int st = -1;
  bool eof = false;
  for (;;) {
    if (!eof) {
      struct pollfd p = {pfd[0], POLLIN, 0};
      if (poll(&p, 1, 50) > 0) {
        char buf[4096];
        ssize_t n = read(pfd[0], buf, sizeof buf);
        if (n > 0) o.append(buf, n);
        else if (n == 0) eof = true;
      }
    }
    pid_t w = waitpid(pid, &st, WNOHANG);
    if (w == pid && eof) break;
    if (w == pid) {
      // drain what is left
      char buf[4096];
      ssize_t n;
      while ((n = read(pfd[0], buf, sizeof buf)) > 0) o.append(buf, n);
      break;
    }
    if (eof) poll_pause(1000);
    if (now_s() > deadline) {
      kill(pid, SIGKILL);
      waitpid(pid, &st, 0);
      close(pfd[0]);
      if (out) *out = o;
      abort_here(__FILE__, __LINE__, "child " + argv[0] + " did not finish within " + std::to_string((int)limit_s) +
                                         " s (killed); output: " + shorten(o, 2000));
    }
  }
  close(pfd[0]);
  if (out) *out = o;
  return st;
}

// ============================================================== main
static std::string g_cwd;

static void ensure_env(int argc, char **argv) {
  const char *serve = getenv("HOTBACKUP_SERVE");
  const char *hooks = getenv("HOTBACKUP_TEST_HOOKS");
  const char *sock = getenv("HOTBACKUP_SOCKET");
  if (serve && strcmp(serve, "*") == 0 && hooks && strcmp(hooks, "1") == 0 && sock && *sock) return;
  if (getenv("HBT_REEXECED")) {
    fprintf(stderr, "harness: environment still incomplete after re-exec\n");
    exit(2);
  }
  setenv("HOTBACKUP_SERVE", "*", 1);
  setenv("HOTBACKUP_TEST_HOOKS", "1", 1);
  if (!sock || !*sock) {
    const char *tmp = getenv("TMPDIR");
    std::string p = std::string(tmp && *tmp ? tmp : "/tmp") + "/hbt-" + std::to_string(getpid()) + ".sock";
    setenv("HOTBACKUP_SOCKET", p.c_str(), 1);
  }
  unsetenv("HOTBACKUP_SERVED_PID");
  setenv("HBT_REEXECED", "1", 1);
  (void)argc;
  execv("/proc/self/exe", argv);
  perror("harness: re-exec");
  exit(2);
}

static std::string base_dir() {
  const char *tmp = getenv("TMPDIR");
  std::string t = tmp && *tmp ? tmp : "/tmp";
  char buf[PATH_MAX];
  if (realpath(t.c_str(), buf)) t = buf;
  return t;
}

int main(int argc, char **argv) {
  ensure_env(argc, argv);
  setvbuf(stdout, nullptr, _IOLBF, 0);
  signal(SIGPIPE, SIG_IGN);
  {
    char buf[PATH_MAX];
    if (getcwd(buf, sizeof buf)) g_cwd = buf;
  }
  std::vector<std::string> filters;
  bool list = false, keep = getenv("HBT_KEEP") != nullptr;
  for (int i = 1; i < argc; i++) {
    if (!strcmp(argv[i], "--list")) list = true;
    else if (!strcmp(argv[i], "--keep")) keep = true;
    else filters.push_back(argv[i]);
  }
  std::vector<Test> sel;
  for (auto &t : registry()) {
    bool m = filters.empty();
    for (auto &f : filters)
      if (t.name.find(f) != std::string::npos) m = true;
    if (m) sel.push_back(t);
  }
  if (list) {
    for (auto &t : sel) printf("%s\n", t.name.c_str());
    return 0;
  }
  if (!hotbackup_is_served()) {
    printf("1..0\n# the shim does not serve this process (HOTBACKUP_SERVE=%s)\nnot ok 1 - served\n# pass 0 fail 1\n",
           getenv("HOTBACKUP_SERVE") ? getenv("HOTBACKUP_SERVE") : "(unset)");
    return 1;
  }
  if (sel.empty()) {
    printf("1..0\n# no test matches the filter\n# pass 0 fail 1\n");
    return 1;
  }
  printf("1..%zu\n", sel.size());
  std::string root = base_dir();
  int pass = 0, fail = 0, n = 0;
  for (auto &t : sel) {
    n++;
    g_failed = false;
    g_skipped = false;
    Ctx c;
    c.name = t.name;
    c.base = root + "/hbt-" + std::to_string(getpid()) + "-" + t.name;
    c.S = c.base + "/src";
    c.D = c.base + "/dst";
    c.O = c.base + "/out";
    try {
      reset_shim();
      remove_tree(c.base);
      make_dirs(c.S);
      make_dirs(c.O);
      if (chmod(c.S.c_str(), 0755) != 0 || chmod(c.base.c_str(), 0755) != 0) abort_here(__FILE__, __LINE__, "chmod");
      t.fn(c);
    } catch (const TestAbort &) {
      // already reported
    } catch (const SkipSignal &) {
    } catch (const std::exception &e) {
      fail_here(__FILE__, __LINE__, std::string("exception: ") + e.what());
    } catch (...) {
      fail_here(__FILE__, __LINE__, "unknown exception");
    }
    if (!g_cwd.empty() && chdir(g_cwd.c_str()) != 0) note("cannot chdir back to " + g_cwd);
    try {
      reset_shim();
    } catch (...) {
    }
    if (g_skipped && !g_failed) {
      printf("ok %d - %s # SKIP %s\n", n, t.name.c_str(), g_skip_reason.c_str());
      pass++;
    } else if (g_failed) {
      note("test dir kept: " + c.base);
      printf("not ok %d - %s\n", n, t.name.c_str());
      fail++;
    } else {
      printf("ok %d - %s\n", n, t.name.c_str());
      pass++;
    }
    if (!g_failed && !keep) remove_tree(c.base);
  }
  printf("# pass %d fail %d\n", pass, fail);
  return fail ? 1 : 0;
}

}  // namespace hbt
