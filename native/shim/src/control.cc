#include "control.h"

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <climits>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <fcntl.h>
#include <mutex>
#include <poll.h>
#include <set>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <thread>
#include <unistd.h>
#include <vector>

#include "json.h"
#include "real.h"
#include "session.h"
#include "state.h"

namespace hb {

namespace {
constexpr size_t kMaxLine = 64 * 1024;
std::mutex g_control_mu;                     // one request at a time changes sessions
std::set<std::string> *g_armed = new std::set<std::string>();  // test pause points, kept across starts

std::string error_reply(const std::string &code, const std::string &message) {
  json::ObjectWriter e;
  e.field("code", code).field("message", message);
  json::ObjectWriter w;
  w.field("ok", false).raw("error", e.done());
  return w.done();
}

std::string idle_status() {
  json::ObjectWriter w;
  w.field("state", "idle").null("dest").raw("sources", "[]");
  w.field("bytes_total", 0).field("bytes_copied", 0).field("bytes_mirrored", 0);
  w.field("files_total", 0).field("files_copied", 0).field("throttle_bytes_per_sec", 0);
  w.field("rate_bytes_per_sec", 0).null("eta_seconds").null("started_at").null("cut_at").null("finished_at");
  w.null("cut_stall_us").null("error").field("pid", static_cast<int64_t>(getpid())).null("manifest");
  return w.done();
}

std::string status_reply() {
  json::ObjectWriter w;
  w.field("ok", true).raw("status", g_session ? g_session->status_json() : idle_status());
  return w.done();
}

// A byte count in a request: a finite, non-negative integer.
bool byte_count(const json::Value *v, uint64_t *out) {
  if (!v || v->type != json::Value::Number || v->num < 0 || v->num > 9007199254740992.0 ||
      v->num != std::floor(v->num))
    return false;
  *out = static_cast<uint64_t>(v->num);
  return true;
}

bool session_running() { return g_session && !g_session->terminal(); }

// A path field of a request, before any file-system call sees it: the C calls would stop at an
// embedded NUL and act on another path than the one reported, and ".", ".." or "//" components
// make containment checks (dest inside a source?) depend on the file system instead of the
// request. One trailing '/' is dropped. Relative paths are refused later, as bad_path.
bool clean_path(const std::string &field, std::string *path, std::string *reply) {
  auto refuse = [&](const std::string &why) {
    *reply = error_reply("bad_request", "\"" + field + "\" " + why);
    return false;
  };
  if (path->find('\0') != std::string::npos) return refuse("contains a NUL byte");
  if (path->empty()) return refuse("is empty");
  if (path->size() > 1 && path->back() == '/') path->pop_back();
  size_t start = path->front() == '/' ? 1 : 0;
  while (start <= path->size()) {
    size_t slash = path->find('/', start);
    if (slash == std::string::npos) slash = path->size();
    std::string part = path->substr(start, slash - start);
    if ((part.empty() && path->size() > 1) || part == "." || part == "..")
      return refuse("must be a normalised path (no empty, \".\" or \"..\" components): " + *path);
    start = slash + 1;
  }
  return true;
}

std::string do_start(const json::Value &req) {
  StartRequest sr;
  const json::Value *dest = req.get("dest");
  if (!dest || dest->type != json::Value::String) return error_reply("bad_request", "start needs \"dest\": an absolute path");
  sr.dest = dest->str;
  std::string refused;
  if (!clean_path("dest", &sr.dest, &refused)) return refused;
  if (const json::Value *srcs = req.get("sources")) {
    if (srcs->type != json::Value::Array) return error_reply("bad_request", "\"sources\" must be an array of absolute paths");
    for (auto &v : srcs->arr) {
      if (v.type != json::Value::String) return error_reply("bad_request", "\"sources\" must be an array of absolute paths");
      sr.sources.push_back(v.str);
      if (!clean_path("sources[" + std::to_string(sr.sources.size() - 1) + "]", &sr.sources.back(), &refused)) return refused;
    }
  } else {
    char cwd[PATH_MAX];
    if (!getcwd(cwd, sizeof cwd)) return error_reply("bad_path", "cannot read the server's working directory");
    sr.sources.push_back(cwd);
  }
  if (const json::Value *t = req.get("throttle_bytes_per_sec")) {
    if (!byte_count(t, &sr.throttle))
      return error_reply("bad_request", "\"throttle_bytes_per_sec\" must be a non-negative integer (0 = unlimited)");
  }
  if (session_running()) return error_reply("busy", "a backup is already running; cancel it or wait for it to end");
  SessionError err;
  std::unique_ptr<Session> s = Session::create(sr, &err);
  if (!s) {
    json::ObjectWriter e;
    e.field("code", err.code).field("message", err.message);
    if (err.path.empty()) e.null("path"); else e.field("path", err.path);
    json::ObjectWriter w;
    w.field("ok", false).raw("error", e.done());
    return w.done();
  }
  for (auto &p : *g_armed) s->arm_pause(p, true);
  Session *old;
  pthread_rwlock_wrlock(&g_barrier);
  old = g_session;
  g_session = s.release();
  g_capturing = true;
  pthread_rwlock_unlock(&g_barrier);
  wait_for_uncaptured_calls();
  delete old;  // terminal: its thread has finished or finishes now
  g_session->start_copier();
  return status_reply();
}

std::string do_test_op(const std::string &op, const json::Value &req) {
  if (op == "test_pause") {
    const json::Value *point = req.get("point"), *on = req.get("on");
    if (!point || point->type != json::Value::String || !on || on->type != json::Value::Bool ||
        (point->str != "copy_start" && point->str != "chunk" && point->str != "cut"))
      return error_reply("bad_request", "test_pause needs \"point\" (copy_start, chunk, cut) and \"on\" (bool)");
    if (on->b) g_armed->insert(point->str);
    else g_armed->erase(point->str);
    if (g_session) g_session->arm_pause(point->str, on->b);
    return status_reply();
  }
  if (op == "test_paused") {
    if (!g_session) return "{\"ok\":true,\"paused\":null,\"paused_path\":null}";
    return g_session->paused_json();
  }
  if (op == "test_fault") {
    const json::Value *call = req.get("call"), *nth = req.get("nth"), *err = req.get("errno");
    Call c;
    uint64_t n = 0, e = 0;
    if (!call || call->type != json::Value::String || !call_from_name(call->str.c_str(), &c) || !byte_count(nth, &n) ||
        (n && (!byte_count(err, &e) || e == 0 || e > 4095)))
      return error_reply("bad_request", "test_fault needs \"call\" (a backup-side call kind), \"nth\" and \"errno\"");
    faults::arm(c, static_cast<long>(n), static_cast<int>(e));
    return status_reply();
  }
  if (op == "test_counts") {
    json::ObjectWriter counts;
    for (int i = 0; i < static_cast<int>(Call::count); i++)
      counts.field(call_name(static_cast<Call>(i)), static_cast<int64_t>(faults::count(static_cast<Call>(i))));
    json::ObjectWriter w;
    w.field("ok", true).raw("counts", counts.done());
    return w.done();
  }
  return error_reply("bad_request", "unknown op: " + op);
}
}  // namespace

std::string handle_request(const std::string &line) {
  if (!served()) return error_reply("not_served", "the hotbackup shim is not serving this process");
  if (line.size() > kMaxLine) return error_reply("line_too_long", "request longer than 65536 bytes");
  json::Value req;
  std::string why;
  if (!json::parse(line, &req, &why)) return error_reply("bad_request", "request is not JSON: " + why);
  const json::Value *op = req.get("op");
  if (req.type != json::Value::Object || !op || op->type != json::Value::String)
    return error_reply("bad_request", "request must be a JSON object with a string \"op\"");
  std::lock_guard<std::mutex> g(g_control_mu);
  if (op->str == "status") return status_reply();
  if (op->str == "start") return do_start(req);
  if (op->str == "throttle") {
    uint64_t rate;
    if (!byte_count(req.get("bytes_per_sec"), &rate))
      return error_reply("bad_request", "throttle needs \"bytes_per_sec\": a non-negative integer (0 = unlimited)");
    if (!session_running()) return error_reply("not_running", "no backup is running");
    g_session->set_throttle(rate);
    return status_reply();
  }
  if (op->str == "cancel") {
    if (!session_running()) return error_reply("not_running", "no backup is running");
    g_session->cancel();
    g_session->join();  // the partial destination is gone when the reply says cancelled
    return status_reply();
  }
  if (g_test_hooks && op->str.compare(0, 5, "test_") == 0) return do_test_op(op->str, req);
  return error_reply("bad_request", "unknown op: " + op->str);
}

// ---------------------------------------------------------------------------------------
// The socket

namespace {
// Sockets are closed through the close() every library sees (sanitizers track fds by it).
void close_socket(int fd) { ::close(fd); }

std::string g_socket_path;
ino_t g_socket_ino = 0;
int g_listen_fd = -1;

bool prepare_default_dir(std::string *path) {
  std::string dir = "/tmp/hotbackup-" + std::to_string(getuid());
  if (real.mkdir(dir.c_str(), 0700) != 0 && errno != EEXIST) return false;
  struct stat st;
  // Refuse a directory someone else could have planted: ours, private, not a symlink.
  if (lstat(dir.c_str(), &st) != 0 || !S_ISDIR(st.st_mode) || st.st_uid != getuid() || (st.st_mode & 077)) return false;
  *path = dir + "/" + std::to_string(getpid()) + ".sock";
  return true;
}

void warn(const std::string &msg) {
  std::string line = "hotbackup: " + msg + "\n";
  ssize_t ignored = real.write(2, line.data(), line.size());
  (void)ignored;
}

// Connections are cheap to open and a leaking script can open many: at most kMaxClients are
// kept, a new one replaces the one silent for longest, and one silent for kIdleSeconds is
// closed, so a well-behaved client is always answered.
constexpr size_t kMaxClients = 32;
constexpr int kIdleSeconds = 30;

struct Client {
  int fd;
  std::string buf;
  std::chrono::steady_clock::time_point last;  // when it last sent something (or connected)
};

void drop(Client &c) {
  close_socket(c.fd);
  c.fd = -1;
}

void send_line(int fd, const std::string &reply) {
  std::string out = reply + "\n";
  size_t done = 0;
  while (done < out.size()) {
    ssize_t n = send(fd, out.data() + done, out.size() - done, MSG_NOSIGNAL);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return;
    done += static_cast<size_t>(n);
  }
}

void serve_loop() {
  t_state.internal = true;
  std::vector<Client> clients;
  for (;;) {
    std::vector<pollfd> pfds;
    pfds.push_back({g_listen_fd, POLLIN, 0});
    for (auto &c : clients) pfds.push_back({c.fd, POLLIN, 0});
    int n = poll(pfds.data(), pfds.size(), clients.empty() ? -1 : 1000);
    if (n < 0) {
      if (errno == EINTR) continue;
      return;
    }
    auto now = std::chrono::steady_clock::now();
    for (auto &c : clients)
      if (now - c.last > std::chrono::seconds(kIdleSeconds)) drop(c);
    if (pfds[0].revents & POLLIN) {
      int fd = accept4(g_listen_fd, nullptr, nullptr, SOCK_CLOEXEC);
      if (fd >= 0) {
        struct ucred cred;
        socklen_t len = sizeof cred;
        if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) != 0 || (cred.uid != getuid() && cred.uid != 0)) {
          close_socket(fd);
        } else {
          size_t open = 0;
          Client *quietest = nullptr;
          for (auto &c : clients)
            if (c.fd >= 0) {
              open++;
              if (!quietest || c.last < quietest->last) quietest = &c;
            }
          if (open >= kMaxClients) drop(*quietest);
          clients.push_back({fd, "", now});  // not polled before the next round: pfds holds the old list
        }
      }
    }
    for (size_t i = 1; i < pfds.size(); i++) {
      Client &c = clients[i - 1];
      if (!pfds[i].revents || c.fd < 0) continue;
      char buf[8192];
      ssize_t r = recv(c.fd, buf, sizeof buf, 0);
      if (r <= 0) {
        drop(c);
        continue;
      }
      c.last = now;
      c.buf.append(buf, static_cast<size_t>(r));
      size_t nl;
      while (c.fd >= 0 && (nl = c.buf.find('\n')) != std::string::npos) {
        std::string line = c.buf.substr(0, nl);
        c.buf.erase(0, nl + 1);
        if (!line.empty() && line.back() == '\r') line.pop_back();
        if (line.empty()) continue;
        send_line(c.fd, handle_request(line));
        if (line.size() > kMaxLine) {  // the reply said line_too_long: this peer is done
          shutdown(c.fd, SHUT_RDWR);
          close_socket(c.fd);
          c.fd = -1;
        }
      }
      if (c.fd >= 0 && c.buf.size() > kMaxLine) {
        send_line(c.fd, error_reply("line_too_long", "request longer than 65536 bytes"));
        shutdown(c.fd, SHUT_RDWR);
        close_socket(c.fd);
        c.fd = -1;
      }
    }
    clients.erase(std::remove_if(clients.begin(), clients.end(), [](const Client &c) { return c.fd < 0; }),
                  clients.end());
  }
}
}  // namespace

void start_control_socket() {
  const char *env = getenv("HOTBACKUP_SOCKET");
  std::string path;
  if (env && *env) path = env;
  else if (!prepare_default_dir(&path)) {
    warn("cannot prepare /tmp/hotbackup-" + std::to_string(getuid()) + " for the control socket; no socket served");
    return;
  }
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  if (path.size() >= sizeof addr.sun_path) {
    warn("control socket path too long: " + path);
    return;
  }
  std::memcpy(addr.sun_path, path.c_str(), path.size() + 1);
  int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return;
  struct stat st;
  if (lstat(path.c_str(), &st) == 0) {
    if (!S_ISSOCK(st.st_mode)) {
      warn("not serving the control socket: " + path + " exists and is not a socket");
      close_socket(fd);
      return;
    }
    if (st.st_uid != getuid()) {  // never remove what another user put there
      warn("not serving the control socket: " + path + " belongs to uid " + std::to_string(st.st_uid));
      close_socket(fd);
      return;
    }
    int probe = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    bool alive = probe >= 0 && connect(probe, reinterpret_cast<sockaddr *>(&addr), sizeof addr) == 0;
    if (probe >= 0) close_socket(probe);
    if (alive) {
      warn("not serving the control socket: another live server answers at " + path);
      close_socket(fd);
      return;
    }
    real.unlink(path.c_str());  // stale, from a process that is gone
  }
  if (bind(fd, reinterpret_cast<sockaddr *>(&addr), sizeof addr) != 0 || chmod(path.c_str(), 0600) != 0 ||
      listen(fd, 16) != 0) {
    warn("cannot serve the control socket at " + path + ": " + strerror(errno));
    close_socket(fd);
    return;
  }
  if (lstat(path.c_str(), &st) == 0) g_socket_ino = st.st_ino;
  g_socket_path = path;
  g_listen_fd = fd;
  spawn_quiet_thread(serve_loop).detach();
}

void stop_control_socket() {
  struct stat st;
  if (!g_socket_path.empty() && lstat(g_socket_path.c_str(), &st) == 0 && st.st_ino == g_socket_ino)
    real.unlink(g_socket_path.c_str());
}

}  // namespace hb
