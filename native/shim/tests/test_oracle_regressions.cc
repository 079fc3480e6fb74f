// Deterministic reductions of the shim bugs the oracle (test_oracle.cc) found, one named test
// each, forced with the test pause points. Needs HOTBACKUP_SERVE=* and HOTBACKUP_TEST_HOOKS=1
// (test/oracle.test.ts sets them). Prints TAP-like "ok N - name" / "not ok N - name".
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <functional>
#include <string>
#include <vector>

#include "hotbackup.h"

#ifndef RENAME_EXCHANGE
#define RENAME_EXCHANGE (1 << 1)
#endif

namespace {

std::string req(const std::string &r) {
  char *p = hotbackup_request(r.c_str());
  std::string s = p ? p : "";
  hotbackup_free(p);
  return s;
}

std::string slurp(const std::string &p) {
  int fd = open(p.c_str(), O_RDONLY);
  if (fd < 0) return "(missing)";
  std::string s;
  char b[4096];
  ssize_t n;
  while ((n = read(fd, b, sizeof b)) > 0) s.append(b, size_t(n));
  close(fd);
  return s;
}

std::string printable(const std::string &s) {
  if (s == "(missing)") return s;
  std::string o = "\"";
  for (char c : s) o += (c >= 32 && c < 127) ? c : '.';
  return o + "\"";
}

void put(const std::string &path, const std::string &data) {
  int fd = open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
  if (fd >= 0) {
    if (write(fd, data.data(), data.size()) < 0) perror("write");
    close(fd);
  }
}

void pause_point(const char *p, bool on) {
  req(std::string("{\"op\":\"test_pause\",\"point\":\"") + p + "\",\"on\":" + (on ? "true" : "false") + "}");
}

bool wait_paused(const char *p) {
  std::string want = std::string("\"paused\":\"") + p + "\"";
  for (int i = 0; i < 600000; ++i) {  // a liveness bound (10 min), not a timing assertion
    if (req("{\"op\":\"test_paused\"}").find(want) != std::string::npos) return true;
    usleep(1000);
  }
  return false;
}

std::string wait_terminal() {
  for (;;) {
    std::string s = req("{\"op\":\"status\"}");
    if (s.find("\"state\":\"done\"") != std::string::npos || s.find("\"state\":\"failed\"") != std::string::npos ||
        s.find("\"state\":\"cancelled\"") != std::string::npos)
      return s;
    usleep(1000);
  }
}

struct Dirs {
  std::string root, S, O, D;
};

Dirs fresh() {
  const char *t = getenv("TMPDIR");
  std::string tmpl = std::string(t && *t ? t : "/tmp") + "/hb-oracle-reg-XXXXXX";
  std::vector<char> b(tmpl.begin(), tmpl.end());
  b.push_back(0);
  Dirs d;
  d.root = mkdtemp(b.data());
  d.S = d.root + "/S";
  d.O = d.root + "/O";
  d.D = d.root + "/D";
  mkdir(d.S.c_str(), 0755);
  mkdir(d.O.c_str(), 0755);
  return d;
}

bool start(const Dirs &d) {
  std::string r = req("{\"op\":\"start\",\"dest\":\"" + d.D + "\",\"sources\":[\"" + d.S + "\"]}");
  if (r.find("\"ok\":true") == std::string::npos) {
    printf("# start refused: %s\n", r.c_str());
    return false;
  }
  return true;
}

// Compares S/rel with D/rel after the backup; prints the difference.
bool same(const Dirs &d, const std::string &rel, const std::string &status) {
  std::string a = slurp(d.S + "/" + rel), b = slurp(d.D + "/" + rel);
  if (status.find("\"state\":\"done\"") == std::string::npos) {
    printf("# backup not done: %s\n", status.c_str());
    return false;
  }
  if (a == b) return true;
  printf("# %s: source %s, backup %s\n", rel.c_str(), printable(a).c_str(), printable(b).c_str());
  return false;
}

// pwrite through an O_APPEND fd lands at the end of the file on Linux (pwrite(2), BUGS); the
// mirror must put the bytes where they landed, not at the offset argument.
bool pwrite_on_o_append_fd_lands_at_eof() {
  Dirs d = fresh();
  int fd = open((d.S + "/f").c_str(), O_RDWR | O_CREAT | O_APPEND, 0644);
  if (write(fd, "AAAA", 4) != 4) return false;
  pause_point("cut", true);
  if (!start(d) || !wait_paused("cut")) return false;
  if (pwrite(fd, "B", 1, 0) != 1) return false;  // source: AAAAB
  pause_point("cut", false);
  bool ok = same(d, "f", wait_terminal());
  close(fd);
  return ok;
}

// A stdio stream opened on a name that is unlinked (the file stays linked under another name)
// before the flush: the flushed bytes belong in the file under its other name.
bool stdio_flush_after_opened_name_unlinked() {
  Dirs d = fresh();
  FILE *f = fopen((d.S + "/a").c_str(), "w");
  fwrite("hello", 1, 5, f);
  pause_point("cut", true);
  if (!start(d) || !wait_paused("cut")) return false;
  link((d.S + "/a").c_str(), (d.S + "/b").c_str());
  unlink((d.S + "/a").c_str());
  fflush(f);  // source: b = "hello"
  pause_point("cut", false);
  bool ok = same(d, "b", wait_terminal());
  fclose(f);
  return ok;
}

// The same through RENAME_EXCHANGE: the stream's file moves to the other name, the flush
// lands in it.
bool stdio_flush_after_rename_exchange() {
  Dirs d = fresh();
  put(d.S + "/other", "other");
  FILE *f = fopen((d.S + "/a").c_str(), "w");
  fwrite("hello", 1, 5, f);
  pause_point("cut", true);
  if (!start(d) || !wait_paused("cut")) return false;
  renameat2(AT_FDCWD, (d.S + "/a").c_str(), AT_FDCWD, (d.S + "/other").c_str(), RENAME_EXCHANGE);
  fflush(f);  // source: other = "hello", a = "other"
  pause_point("cut", false);
  std::string st = wait_terminal();
  bool ok = same(d, "other", st) && same(d, "a", st);
  fclose(f);
  return ok;
}

// RENAME_EXCHANGE of two directories while the copier has processed one of them (created its
// backup directory, queued its entries by path) but not yet its entries: the entries must end
// up under the directory's new name.
bool rename_exchange_of_directory_with_entries_still_queued() {
  Dirs d = fresh();
  mkdir((d.S + "/a").c_str(), 0755);
  mkdir((d.S + "/b").c_str(), 0755);
  mkdir((d.S + "/b/y").c_str(), 0755);
  put(d.S + "/b/f1", std::string(4096, 'x'));
  put(d.S + "/b/y/z", "zz");
  pause_point("chunk", true);  // the copier stops in the first chunk of b/f1; b/y is still queued
  if (!start(d) || !wait_paused("chunk")) return false;
  renameat2(AT_FDCWD, (d.S + "/a").c_str(), AT_FDCWD, (d.S + "/b").c_str(), RENAME_EXCHANGE);
  pause_point("chunk", false);
  std::string st = wait_terminal();
  return same(d, "a/y/z", st) && same(d, "a/f1", st);
}

}  // namespace

int main() {
  setvbuf(stdout, nullptr, _IOLBF, 0);
  if (!hotbackup_is_served()) {
    printf("not ok 1 - the shim does not serve this process (set HOTBACKUP_SERVE=*)\n");
    return 1;
  }
  if (req("{\"op\":\"test_paused\"}").find("\"ok\":true") == std::string::npos) {
    printf("not ok 1 - test hooks are off (set HOTBACKUP_TEST_HOOKS=1)\n");
    return 1;
  }
  umask(022);
  struct Case {
    const char *name;
    std::function<bool()> fn;
  };
  std::vector<Case> cases = {
      {"pwrite_on_o_append_fd_lands_at_eof", pwrite_on_o_append_fd_lands_at_eof},
      {"stdio_flush_after_opened_name_unlinked", stdio_flush_after_opened_name_unlinked},
      {"stdio_flush_after_rename_exchange", stdio_flush_after_rename_exchange},
      {"rename_exchange_of_directory_with_entries_still_queued", rename_exchange_of_directory_with_entries_still_queued},
  };
  int failed = 0, n = 0;
  for (auto &c : cases) {
    bool ok = c.fn();
    printf("%s %d - %s\n", ok ? "ok" : "not ok", ++n, c.name);
    failed += !ok;
  }
  printf("# pass %d fail %d\n", n - failed, failed);
  return failed ? 1 : 0;
}
