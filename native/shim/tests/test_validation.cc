// Start requests, their validation, and the control socket.
// Origins: tokubackup-lessons.md §4.4 group A (destination/source validation), §6.2 "API
// hygiene" (validate every pair for equality and nesting); issue 2 §6; docs/protocol.md.
// Every rejected request must get the documented error code and change nothing.
#include <fcntl.h>
#include <poll.h>
#include <pwd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include "harness.h"

using namespace hbt;

// A rejected start: the error code, the state and last session unchanged, dest untouched.
static void expect_rejected(Ctx &t, const std::string &req, const std::string &code, const std::string &dest) {
  Json before = status();
  bool dest_existed = exists(dest);
  Reply r = request(req);
  CHECK_MSG(!r.ok(), "accepted: " + req + " -> " + r.raw);
  CHECK_MSG(r.code() == code, "request " + req + " gave " + r.raw + ", expected code " + code);
  CHECK_MSG(!r.j["error"]["message"].str().empty(), "no error message: " + r.raw);
  Json after = status();
  CHECK_EQ(after["state"].str(), before["state"].str());
  CHECK_EQ(after["dest"].dump(), before["dest"].dump());
  CHECK_EQ(after["started_at"].dump(), before["started_at"].dump());
  CHECK_EQ(exists(dest), dest_existed);
  CHECK(!exists(manifest_path(dest)));
}

static std::string start_req(const std::string &dest, const std::vector<std::string> &sources) {
  std::string q = "{\"op\":\"start\",\"dest\":" + jstr(dest) + ",\"sources\":[";
  for (size_t i = 0; i < sources.size(); i++) q += (i ? "," : "") + jstr(sources[i]);
  return q + "]}";
}

// §4.4 A null_dest_dir_6317 (dest NULL -> EINVAL): here a relative or empty dest.
TEST(start_relative_dest) {
  write_file(t.path("f"), "f");
  expect_rejected(t, start_req("relative/dest", {t.S}), "bad_path", t.S + "/relative");
  expect_rejected(t, start_req("", {t.S}), "bad_request", t.D);
}

// Issue 14: a path field with a NUL byte, an empty string or a ".", ".." or "//" component is
// refused as bad input naming the field, before any file-system call sees it (a NUL used to be
// accepted, and the session then failed naming a path the C calls never used).
TEST(start_paths_must_be_clean) {
  write_file(t.path("f"), "f");
  std::string nul = t.D + std::string(1, '\0') + "y";
  struct Case { std::string dest; std::vector<std::string> sources; std::string field; };
  std::vector<Case> cases = {
      {nul, {t.S}, "dest"},
      {t.D + "/./b", {t.S}, "dest"},
      {t.O + "/../x", {t.S}, "dest"},
      {t.base + "//b", {t.S}, "dest"},
      {t.D, {t.S + std::string(1, '\0')}, "sources[0]"},
      {t.D, {t.O, ""}, "sources[1]"},
      {t.D, {t.S + "/../" + "src"}, "sources[0]"},
  };
  for (auto &c : cases) {
    Reply r = request(start_req(c.dest, c.sources));
    CHECK_MSG(!r.ok() && r.code() == "bad_request", r.raw);
    CHECK_MSG(r.j["error"]["message"].str().find("\"" + c.field + "\"") != std::string::npos, r.raw);
    CHECK(!exists(t.D));
  }
  // One trailing slash is not a component: accepted, and the backup is the same.
  backup(t.D + "/", {t.S + "/"});
  CHECK_TREE_EQ(t.S, t.D);
}

// A relative source.
TEST(start_relative_source) {
  expect_rejected(t, start_req(t.D, {"src"}), "bad_path", t.D);
}

// §4.4 A no_dest_dir_6317b: a missing dest is created (DESIGN: "dest empty or creatable").
TEST(start_missing_dest_is_created) {
  write_file(t.path("f"), "f");
  CHECK(!exists(t.D));
  backup(t.D, {t.S});
  CHECK_TREE_EQ(t.S, t.D);
}

// An existing empty dest is fine.
TEST(start_existing_empty_dest) {
  write_file(t.path("f"), "f");
  make_dirs(t.D);
  backup(t.D, {t.S});
  CHECK_TREE_EQ(t.S, t.D);
}

// §4.4 A nondir_dest_dir_6317: dest is a regular file.
TEST(start_dest_is_a_file) {
  write_file(t.D, "i am a file");
  expect_rejected(t, start_req(t.D, {t.S}), "bad_path", t.D);
  CHECK_EQ(read_file(t.D), std::string("i am a file"));
}

// §4.4 A empty_dest: dest not empty.
TEST(start_dest_not_empty) {
  make_dirs(t.D);
  write_file(t.D + "/precious", "precious");
  expect_rejected(t, start_req(t.D, {t.S}), "dest_not_empty", t.D);
  CHECK_EQ(read_file(t.D + "/precious"), std::string("precious"));
}

// §4.4 A cannotopen_dest_dir / dest_no_permissions_10: dest not writable (as a non-root
// user only: root writes anywhere).
TEST(start_dest_not_writable) {
  if (geteuid() == 0) skip("root ignores permissions");
  make_dirs(t.D);
  chmod(t.D.c_str(), 0500);
  Reply r = request(start_req(t.D, {t.S}));
  CHECK(!r.ok());
  CHECK_MSG(r.code() == "EACCES" || r.code() == "bad_path", r.raw);
  chmod(t.D.c_str(), 0700);
}

// §4.4 A source_no_permissions_10: an unreadable file in the source fails the backup
// (non-root only), with the path, and no manifest.
TEST(unreadable_source_file_fails_backup) {
  if (geteuid() == 0) skip("root reads anything");
  write_file(t.path("secret"), "s", 0000);
  start_ok(t.D, {t.S});
  Json s = wait_terminal();
  CHECK_EQ(s["state"].str(), std::string("failed"));
  CHECK_EQ(s["error"]["code"].str(), std::string("EACCES"));
  CHECK(!exists(manifest_path(t.D)));
}

// §2.7 / §6.2: dest inside a source, equal to it, a source inside dest.
TEST(start_dest_inside_source) {
  write_file(t.path("f"), "f");
  expect_rejected(t, start_req(t.path("backup"), {t.S}), "dest_in_source", t.path("backup"));
  expect_rejected(t, start_req(t.S, {t.S}), "dest_in_source", t.S);
  std::string other = t.base + "/other";
  make_dirs(other);
  // upstream checked only pair 0: the second source must be checked too
  expect_rejected(t, start_req(t.path("backup"), {other, t.S}), "dest_in_source", t.path("backup"));
}

TEST(start_source_inside_dest) {
  make_dirs(t.O + "/inner");
  write_file(t.O + "/inner/f", "f");
  expect_rejected(t, start_req(t.O, {t.O + "/inner"}), "source_in_dest", t.O);
  std::string d2 = t.base + "/d2";
  make_dirs(d2 + "/db");
  expect_rejected(t, start_req(d2, {t.S, d2 + "/db"}), "source_in_dest", d2);
}

// Sources nested in each other or listed twice.
TEST(start_nested_or_duplicate_sources) {
  make_dirs(t.path("inner"));
  Reply r = request(start_req(t.D, {t.S, t.path("inner")}));
  CHECK(!r.ok());
  CHECK_MSG(r.code() == "bad_path" || r.code() == "bad_request", r.raw);
  r = request(start_req(t.D, {t.S, t.S}));
  CHECK(!r.ok());
  CHECK_MSG(r.code() == "bad_path" || r.code() == "bad_request", r.raw);
  CHECK(!exists(t.D));
}

TEST(start_source_missing) {
  expect_rejected(t, start_req(t.D, {t.base + "/nope"}), "source_missing", t.D);
  expect_rejected(t, start_req(t.D, {t.S, t.base + "/nope"}), "source_missing", t.D);
}

// A source that is a file, not a directory.
TEST(start_source_is_a_file) {
  write_file(t.base + "/file", "x");
  Reply r = request(start_req(t.D, {t.base + "/file"}));
  CHECK(!r.ok());
  CHECK_MSG(r.code() == "bad_path" || r.code() == "source_missing", r.raw);
  CHECK(!exists(t.D));
}

// A second start while one runs: busy, and the running one is unaffected.
TEST(start_second_while_running) {
  write_file(t.path("f"), pattern(10000, 1));
  arm("copy_start");
  start_ok(t.D, {t.S});
  wait_paused("copy_start");
  Json before = status();
  std::string d2 = t.base + "/dst2";
  expect_rejected(t, start_req(d2, {t.S}), "busy", d2);
  CHECK_EQ(status()["dest"].str(), t.D);
  release("copy_start");
  wait_done();
  CHECK_TREE_EQ(t.S, t.D);
  (void)before;
}

// Malformed requests: bad_request, nothing changes.
TEST(bad_requests) {
  std::string d = t.D;
  for (const std::string &q : std::vector<std::string>{
           "not json", "{", "[]", "\"start\"", "{}", "{\"op\":42}", "{\"op\":\"explode\"}",
           "{\"op\":\"start\"}", "{\"op\":\"start\",\"dest\":42}", "{\"op\":\"start\",\"dest\":null}",
           "{\"op\":\"start\",\"dest\":" + jstr(d) + ",\"sources\":\"/x\"}",
           "{\"op\":\"start\",\"dest\":" + jstr(d) + ",\"sources\":[42]}",
           "{\"op\":\"start\",\"dest\":" + jstr(d) + ",\"sources\":[" + jstr(t.S) + "],\"throttle_bytes_per_sec\":\"fast\"}",
           "{\"op\":\"start\",\"dest\":" + jstr(d) + ",\"sources\":[" + jstr(t.S) + "],\"throttle_bytes_per_sec\":-1}",
           "{\"op\":\"start\",\"dest\":" + jstr(d) + ",\"sources\":[" + jstr(t.S) + "]} trailing",
       }) {
    expect_rejected(t, q, "bad_request", d);
  }
}

// Default source: the served process's working directory.
TEST(default_source_is_cwd) {
  write_file(t.path("f"), pattern(3000, 2));
  make_dirs(t.path("sub"));
  write_file(t.path("sub/g"), "g");
  REQUIRE_SYS(chdir(t.S.c_str()));
  Json s = start_ok(t.D, {});
  REQUIRE(s["sources"].a.size() == 1);
  CHECK_EQ(s["sources"][0].str(), t.S);
  wait_done();
  CHECK_TREE_EQ(t.S, t.D);
}

// A start after a failed, a cancelled and a done backup works; the status shows the last.
TEST(start_after_every_terminal_state) {
  write_file(t.path("f"), pattern(3000, 3));
  arm("copy_start");
  start_ok(t.base + "/c", {t.S});
  wait_paused("copy_start");
  request_ok("{\"op\":\"cancel\"}");
  CHECK_EQ(state(), std::string("cancelled"));
  release("copy_start");
  fault("fsync", 1, EIO);
  start_ok(t.base + "/f", {t.S});
  Json s = wait_terminal();
  CHECK_EQ(s["state"].str(), std::string("failed"));
  CHECK_EQ(s["error"]["code"].str(), std::string("EIO"));
  fault("fsync", 0, 0);
  backup(t.D, {t.S});
  CHECK_TREE_EQ(t.S, t.D);
  std::string d2 = t.base + "/d2";
  backup(d2, {t.S});
  CHECK_TREE_EQ(t.S, d2);
}

// ---------------------------------------------------------------- the control socket
static std::string sock_path() { return getenv("HOTBACKUP_SOCKET") ? getenv("HOTBACKUP_SOCKET") : ""; }

static int connect_sock() {
  int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) abort_here(__FILE__, __LINE__, std::string("socket: ") + strerror(errno));
  struct sockaddr_un a = {};
  a.sun_family = AF_UNIX;
  std::string p = sock_path();
  snprintf(a.sun_path, sizeof a.sun_path, "%s", p.c_str());
  // the socket thread may still be starting right after exec: bounded retries
  for (int i = 0; i < 2000; i++) {
    if (connect(fd, (struct sockaddr *)&a, sizeof a) == 0) return fd;
    usleep(5000);
  }
  abort_here(__FILE__, __LINE__, "cannot connect to " + p + ": " + strerror(errno));
}

static void send_all(int fd, const std::string &s) {
  size_t off = 0;
  while (off < s.size()) {
    ssize_t n = send(fd, s.data() + off, s.size() - off, MSG_NOSIGNAL);
    if (n <= 0) abort_here(__FILE__, __LINE__, std::string("send: ") + strerror(errno));
    off += n;
  }
}

// Reads one line (bounded wait); returns false on EOF/error/timeout. *eof tells EOF.
static bool read_line(int fd, std::string &buf, std::string &line, bool *eof = nullptr, int limit_ms = 60000) {
  if (eof) *eof = false;
  for (int waited = 0; waited < limit_ms;) {
    size_t nl = buf.find('\n');
    if (nl != std::string::npos) {
      line = buf.substr(0, nl);
      buf.erase(0, nl + 1);
      return true;
    }
    struct pollfd p = {fd, POLLIN, 0};
    int r = poll(&p, 1, 100);
    if (r == 0) {
      waited += 100;
      continue;
    }
    char tmp[4096];
    ssize_t n = recv(fd, tmp, sizeof tmp, 0);
    if (n <= 0) {
      if (eof) *eof = true;
      return false;
    }
    buf.append(tmp, n);
  }
  return false;
}

TEST(socket_mode_0600) {
  int fd = connect_sock();  // also waits for the socket to exist
  close(fd);
  struct stat st;
  REQUIRE_SYS(lstat(sock_path().c_str(), &st));
  CHECK(S_ISSOCK(st.st_mode));
  CHECK_EQ((unsigned)(st.st_mode & 07777), 0600u);
  CHECK_EQ((long long)st.st_uid, (long long)geteuid());
}

TEST(socket_garbage_then_status_on_same_connection) {
  int fd = connect_sock();
  std::string buf, line;
  send_all(fd, "this is not json\n");
  REQUIRE(read_line(fd, buf, line));
  Json j = parse_json(line);
  CHECK(j.is_obj() && j["ok"].type == Json::Bool && !j["ok"].b);
  CHECK_EQ(j["error"]["code"].str(), std::string("bad_request"));
  send_all(fd, "{\"op\":\"status\"}\n");
  REQUIRE(read_line(fd, buf, line));
  j = parse_json(line);
  CHECK(j["ok"].truthy());
  CHECK_EQ(j["status"]["pid"].num(), (long long)getpid());
  // two requests in one write, and one split across two writes
  send_all(fd, "{\"op\":\"status\"}\n{\"op\":\"nope\"}\n{\"op\":\"sta");
  REQUIRE(read_line(fd, buf, line));
  CHECK(parse_json(line)["ok"].truthy());
  REQUIRE(read_line(fd, buf, line));
  CHECK_EQ(parse_json(line)["error"]["code"].str(), std::string("bad_request"));
  send_all(fd, "tus\"}\n");
  REQUIRE(read_line(fd, buf, line));
  CHECK(parse_json(line)["ok"].truthy());
  // an empty line and a NUL byte inside a line do not crash it
  send_all(fd, std::string("{\"op\":\"st\0atus\"}\n", 17));
  REQUIRE(read_line(fd, buf, line));
  CHECK(!parse_json(line)["ok"].truthy());
  send_all(fd, "{\"op\":\"status\"}\n");
  REQUIRE(read_line(fd, buf, line));
  CHECK(parse_json(line)["ok"].truthy());
  close(fd);
}

// A line longer than 64 KiB: error reply line_too_long, then the connection is closed;
// the server keeps serving new connections.
TEST(socket_oversized_line) {
  int fd = connect_sock();
  std::string big = "{\"op\":\"status\",\"pad\":\"" + std::string(70000, 'x') + "\"}\n";
  // the server may close while we still send: ignore send errors after the first bytes
  size_t off = 0;
  while (off < big.size()) {
    ssize_t n = send(fd, big.data() + off, big.size() - off, MSG_NOSIGNAL);
    if (n <= 0) break;
    off += n;
  }
  std::string buf, line;
  bool eof = false;
  bool got = read_line(fd, buf, line, &eof);
  CHECK_MSG(got, "no reply to an oversized line");
  if (got) CHECK_EQ(parse_json(line)["error"]["code"].str(), std::string("line_too_long"));
  if (got) {
    got = read_line(fd, buf, line, &eof, 20000);
    CHECK_MSG(!got && eof, "connection not closed within 20 s after line_too_long" + (got ? ": " + line : ""));
  }
  close(fd);
  fd = connect_sock();
  send_all(fd, "{\"op\":\"status\"}\n");
  CHECK(read_line(fd, buf = "", line) && parse_json(line)["ok"].truthy());
  close(fd);
}

// A peer whose uid is neither ours nor root is disconnected without a reply (as root we
// can test it by connecting from a child that dropped to nobody).
// Issue 14: clients that connect and say nothing (300 of them, more than the 32 kept) do not
// lock out a well-behaved one: the quietest is dropped for each newcomer. A half-sent line
// from one client does not hold up another.
TEST(socket_silent_clients_do_not_lock_out_a_new_one) {
  std::vector<int> silent;
  for (int i = 0; i < 300; i++) silent.push_back(connect_sock());
  int half = connect_sock();
  send_all(half, "{\"op\":\"sta");
  int fd = connect_sock();
  std::string buf, line;
  send_all(fd, "{\"op\":\"status\"}\n");
  REQUIRE(read_line(fd, buf, line));
  CHECK(parse_json(line)["ok"].truthy());
  close(fd);
  close(half);
  for (int s : silent) close(s);
}

// Issue 14: something already at the socket path that is not ours to replace (another uid's
// stale socket, a regular file, a symlink) is left exactly as it was: the served process serves
// no socket and says why on stderr.
TEST(socket_path_taken_by_something_else_is_left_alone) {
  if (geteuid() != 0) skip("needs root to give a socket to another uid");
  std::string preload = sanitizer_runtime();
  preload += (preload.empty() ? "" : ":") + shim_path();
  struct Case { std::string name, expect; };
  for (const Case &c : {Case{"sock", "belongs to uid 65534"}, Case{"file", "is not a socket"},
                        Case{"link", "is not a socket"}}) {
    std::string path = t.O + "/" + c.name;
    if (c.name == "sock") {  // a stale socket (its listener closed) owned by nobody
      int s = socket(AF_UNIX, SOCK_STREAM, 0);
      struct sockaddr_un a = {};
      a.sun_family = AF_UNIX;
      snprintf(a.sun_path, sizeof a.sun_path, "%s", path.c_str());
      REQUIRE_SYS(bind(s, (struct sockaddr *)&a, sizeof a));
      close(s);
      REQUIRE_SYS(lchown(path.c_str(), 65534, 65534));
    } else if (c.name == "file") {
      write_file(path, "not yours");
    } else {
      write_file(t.O + "/target", "not yours either");
      REQUIRE_SYS(symlink((t.O + "/target").c_str(), path.c_str()));
    }
    struct stat before;
    REQUIRE_SYS(lstat(path.c_str(), &before));
    std::string out;
    int st = run_child({"/bin/sleep", "0.2"},
                       {"LD_PRELOAD=" + preload, "HOTBACKUP_SERVE=sleep", "HOTBACKUP_SERVED_PID=", "HOTBACKUP_SOCKET=" + path},
                       &out);
    CHECK_MSG(WIFEXITED(st) && WEXITSTATUS(st) == 0, c.name + ": sleep failed: " + out);
    CHECK_MSG(out.find(c.expect) != std::string::npos, c.name + ": expected a warning with \"" + c.expect + "\": " + out);
    struct stat after;
    REQUIRE_SYS(lstat(path.c_str(), &after));
    CHECK_EQ((long long)after.st_ino, (long long)before.st_ino);
    CHECK_EQ((long long)after.st_uid, (long long)before.st_uid);
    CHECK_EQ((unsigned)after.st_mode, (unsigned)before.st_mode);
  }
  CHECK_EQ(read_file(t.O + "/target"), std::string("not yours either"));
}

TEST(socket_refuses_other_uid) {
  if (geteuid() != 0) skip("needs root to connect as another uid");
  struct passwd *pw = getpwnam("nobody");
  uid_t uid = pw ? pw->pw_uid : 65534;
  int fd = connect_sock();
  close(fd);
  std::string sock = sock_path();
  // nobody may not be able to reach the socket's directory: connect through a hard link in
  // a world-searchable directory (same inode, same listener). Mode 0600 alone keeps nobody
  // out (connect gets EACCES); open it up for a moment so that the SO_PEERCRED check
  // itself is what refuses the peer.
  std::string p = "/tmp/hbt-peer-" + std::to_string(getpid()) + ".sock";
  unlink(p.c_str());
  if (link(sock.c_str(), p.c_str()) != 0) skip(std::string("cannot hard-link the socket into /tmp: ") + strerror(errno));
  struct stat st0;
  REQUIRE_SYS(stat(p.c_str(), &st0));
  REQUIRE_SYS(chmod(p.c_str(), 0666));
  pid_t pid = fork();
  if (pid == 0) {
    if (setgid(65534) != 0 || setuid(uid) != 0) _exit(3);
    int s = socket(AF_UNIX, SOCK_STREAM, 0);
    struct sockaddr_un a = {};
    a.sun_family = AF_UNIX;
    snprintf(a.sun_path, sizeof a.sun_path, "%s", p.c_str());
    if (connect(s, (struct sockaddr *)&a, sizeof a) != 0) _exit(4);
    const char *q = "{\"op\":\"status\"}\n";
    (void)!send(s, q, strlen(q), MSG_NOSIGNAL);
    char c;
    struct pollfd pf = {s, POLLIN, 0};
    if (poll(&pf, 1, 30000) <= 0) _exit(5);  // neither reply nor close
    ssize_t n = recv(s, &c, 1, 0);
    _exit(n <= 0 ? 0 : 6);  // a reply byte = served another uid
  }
  int st = 0;
  pid_t w = waitpid(pid, &st, 0);
  chmod(p.c_str(), st0.st_mode & 07777);
  unlink(p.c_str());
  REQUIRE(w == pid);
  CHECK_MSG(WIFEXITED(st) && WEXITSTATUS(st) == 0,
            "child (uid nobody) exit status " + std::to_string(WIFEXITED(st) ? WEXITSTATUS(st) : -st) +
                " (4: connect failed, 5: neither reply nor close, 6: got a reply)");
}

// The in-process handler and the socket give the same kind of answer (one handler).
TEST(socket_and_in_process_agree) {
  int fd = connect_sock();
  std::string buf, line;
  send_all(fd, "{\"op\":\"start\",\"dest\":\"relative\"}\n");
  REQUIRE(read_line(fd, buf, line));
  Reply r = request("{\"op\":\"start\",\"dest\":\"relative\"}");
  CHECK_EQ(parse_json(line)["error"]["code"].str(), r.code());
  close(fd);
}

int main(int argc, char **argv) { return hbt::main(argc, argv); }
