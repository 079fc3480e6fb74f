// Fault injection through the test hooks: the k-th backup-side call of a kind fails.
// Origins: tokubackup-lessons.md §4.2 and §4.4 group E (test6415_enospc_injection,
// test6469_many_enospc_injection, test6477_close_injection, ftruncate_injection_6480,
// rename_injection, unlink_injection, open_injection_6476, test6483_mkdir_injection),
// §6.1 item 6-7; issue 2 §8 and "Tests that must exist" (fault injection); DESIGN
// invariants 2 and 4.
//
// For each kind: a deterministic workload runs with a backup once without faults, which
// counts that kind's backup-side calls (test_counts). Then for every k from 1 to that count
// the same workload runs with the k-th call failing: every workload call returns what it
// returned without the fault (same result, same errno), the source ends identical, the
// backup ends failed with the errno's name as error.code, no manifest exists and the
// partial destination is gone (or empty). With k = count + 1 the backup succeeds.
#include <dirent.h>
#include <fcntl.h>
#include <stdio.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

#include "harness.h"

using namespace hbt;

namespace {

struct Op {
  std::string what;
  long long ret;
  int err;
};

struct Run {
  std::string src, dest;
  std::vector<Op> ops;
  Json end;  // final status
  std::map<std::string, long long> counts;
};

struct Recorder {
  std::vector<Op> &ops;
  long long operator()(const std::string &what, long long r) {
    ops.push_back({what, r, r < 0 ? errno : 0});
    return r;
  }
};

void setup_source(const std::string &s) {
  make_dirs(s + "/dir/empty");
  write_file(s + "/a", pattern(20000, 1));
  write_file(s + "/b", pattern(5000, 2), 0600);
  write_file(s + "/dir/c", pattern(3000, 3));
  write_file(s + "/gone", "to be unlinked");
  write_file(s + "/old", "to be renamed");
  if (symlink("a", (s + "/link").c_str()) != 0) abort_here(__FILE__, __LINE__, "symlink");
}

// Phase 1: capture on, nothing copied yet. Phase 2: everything copied, capture on.
void phase1(const std::string &s, Recorder &rec) {
  int fd = (int)rec("open new1", open((s + "/new1").c_str(), O_RDWR | O_CREAT | O_EXCL, 0644));
  std::string d = pattern(1000, 4);
  rec("write new1", write(fd, d.data(), d.size()));
  int fa = (int)rec("open a", open((s + "/a").c_str(), O_RDWR));
  rec("pwrite a", pwrite(fa, "phase1", 6, 100));
  rec("close a", close(fa));
  rec("close new1", close(fd));
  rec("mkdir nd", mkdir((s + "/nd").c_str(), 0755));
  int fx = (int)rec("open nd/x", open((s + "/nd/x").c_str(), O_WRONLY | O_CREAT, 0640));
  rec("write nd/x", write(fx, "x", 1));
  rec("close nd/x", close(fx));
  rec("rename old", rename((s + "/old").c_str(), (s + "/dir/old2").c_str()));
  rec("unlink gone", unlink((s + "/gone").c_str()));
  rec("unlink missing", unlink((s + "/missing").c_str()));
}

void phase2(const std::string &s, Recorder &rec) {
  int fa = (int)rec("open a append", open((s + "/a").c_str(), O_WRONLY | O_APPEND));
  rec("write a", write(fa, "phase2", 6));
  struct iovec iov[2] = {{(void *)"v1", 2}, {(void *)"v22", 3}};
  rec("writev a", writev(fa, iov, 2));
  rec("fsync a", fsync(fa));
  rec("close a", close(fa));
  int fb = (int)rec("open b", open((s + "/b").c_str(), O_RDWR));
  rec("ftruncate b", ftruncate(fb, 1234));
  rec("pwrite b", pwrite(fb, "bbb", 3, 2000));
  rec("close b", close(fb));
  rec("truncate c", truncate((s + "/dir/c").c_str(), 10));
  rec("rename new1", rename((s + "/new1").c_str(), (s + "/new2").c_str()));
  rec("unlink old2", unlink((s + "/dir/old2").c_str()));
  rec("mkdir e", mkdir((s + "/e").c_str(), 0700));
  rec("rmdir empty", rmdir((s + "/dir/empty").c_str()));
  rec("link a", link((s + "/a").c_str(), (s + "/a_link").c_str()));
  rec("symlink", symlink("b", (s + "/e/blink").c_str()));
  int fn = (int)rec("open otrunc", open((s + "/nd/x").c_str(), O_WRONLY | O_TRUNC));
  rec("write otrunc", write(fn, "yz", 2));
  rec("close otrunc", close(fn));
  rec("rename missing", rename((s + "/missing").c_str(), (s + "/missing2").c_str()));
  rec("mkdir existing", mkdir((s + "/e").c_str(), 0700));
}

bool dest_clean(const std::string &d, std::string *why) {
  if (!exists(d)) return true;
  if (!is_dir(d)) {
    *why = d + " is left and is not a directory";
    return false;
  }
  DIR *dir = opendir(d.c_str());
  if (!dir) return true;
  std::string first;
  while (struct dirent *e = readdir(dir))
    if (strcmp(e->d_name, ".") && strcmp(e->d_name, "..") && first.empty()) first = e->d_name;
  closedir(dir);
  if (first.empty()) return true;
  *why = "partial destination " + d + " left with content (e.g. " + first + ")";
  return false;
}

Run run_workload(Ctx &t, const std::string &tag, const std::string &call, long nth, int err) {
  Run r;
  r.src = t.base + "/s_" + tag;
  r.dest = t.base + "/d_" + tag;
  remove_tree(r.src);
  remove_tree(r.dest);
  setup_source(r.src);
  if (nth > 0) fault(call, nth, err);
  arm("copy_start");
  arm("cut");
  Reply st = start(r.dest, {r.src});
  Recorder rec{r.ops};
  if (!st.ok()) {
    // a start refused because of the fault is acceptable only for a fault run
    if (nth == 0) abort_here(__FILE__, __LINE__, "start failed without a fault: " + st.raw);
    note("start refused: " + st.raw);
    phase1(r.src, rec);
    phase2(r.src, rec);
    r.end = parse_json("{\"state\":" + jstr("refused:" + st.code()) + ",\"error\":null,\"manifest\":null}");
  } else {
    wait_paused_or_end("copy_start");
    phase1(r.src, rec);
    release("copy_start");
    wait_paused_or_end("cut");
    phase2(r.src, rec);
    release("cut");
    r.end = wait_terminal();
    // `failed` is published when the error happens; the copier removes the partial output
    // afterwards and then sets finished_at (that the state should only be published after
    // the cleanup is checked by failure_reported_only_after_cleanup).
    for (int i = 0; i < 60000 && r.end["state"].str() == "failed" && r.end["finished_at"].is_null(); i++) {
      struct timespec ts = {0, 1000000};
      nanosleep(&ts, nullptr);
      r.end = status();
    }
  }
  r.counts = counts();
  if (nth > 0) fault(call, 0, 0);
  return r;
}

std::string show_ops_diff(const std::vector<Op> &a, const std::vector<Op> &b) {
  if (a.size() != b.size()) return "different number of calls: " + std::to_string(a.size()) + " vs " + std::to_string(b.size());
  for (size_t i = 0; i < a.size(); i++) {
    bool fd_like = a[i].what.rfind("open", 0) == 0;  // fd numbers may differ; success may not
    bool same = a[i].what == b[i].what && a[i].err == b[i].err &&
                (fd_like ? ((a[i].ret >= 0) == (b[i].ret >= 0)) : a[i].ret == b[i].ret);
    if (!same)
      return "call '" + a[i].what + "': without the fault returned " + std::to_string(a[i].ret) + " errno " +
             errno_name(a[i].err) + ", with it " + std::to_string(b[i].ret) + " errno " + errno_name(b[i].err);
  }
  return "";
}

void fault_every_k(Ctx &t, const std::string &call, int err, long min_count) {
  Run base = run_workload(t, "base", call, 0, 0);
  REQUIRE_MSG(base.end["state"].str() == "done", "workload backup without faults: " + base.end.dump());
  REQUIRE_TREE_EQ(base.src, base.dest);
  for (auto &o : base.ops)
    if (o.ret < 0 && o.what.find("missing") == std::string::npos && o.what.find("existing") == std::string::npos)
      CHECK_MSG(false, "workload call '" + o.what + "' failed without a fault: " + errno_name(o.err));
  long n = (long)base.counts[call];
  note(call + ": " + std::to_string(n) + " backup-side calls in the workload");
  REQUIRE_MSG(n >= min_count, "expected at least " + std::to_string(min_count) + " backup-side " + call +
                                  " calls, counted " + std::to_string(n));
  std::string want = errno_name(err);
  int failures = 0;
  for (long k = 1; k <= n + 1; k++) {
    std::string tag = call + std::to_string(k);
    Run r = run_workload(t, tag, call, k, err);
    std::string where = call + " #" + std::to_string(k) + "/" + std::to_string(n) + " " + want + ": ";
    int before = failures;
    std::string d = show_ops_diff(base.ops, r.ops);
    if (!d.empty()) {
      CHECK_MSG(false, where + d);
      failures++;
    }
    std::string sd = tree_equal(base.src, r.src);
    if (!sd.empty()) {
      CHECK_MSG(false, where + "the source differs from the run without the fault: " + sd);
      failures++;
    }
    if (k <= n) {
      std::string why;
      if (r.end["state"].str() != "failed" || r.end["error"]["code"].str() != want) {
        CHECK_MSG(false, where + "expected failed/" + want + ", got " + r.end["state"].str() + " " +
                             r.end["error"].dump());
        failures++;
      } else {
        CHECK_MSG(!r.end["error"]["message"].str().empty(), where + "error without message");
        CHECK_MSG(r.end["error"].has("path"), where + "error without path: " + r.end["error"].dump());
      }
      if (exists(manifest_path(r.dest))) {
        CHECK_MSG(false, where + "a manifest exists after a failure");
        failures++;
      }
      if (!dest_clean(r.dest, &why)) {
        CHECK_MSG(false, where + why);
        failures++;
      }
      CHECK_MSG(r.end["manifest"].is_null(), where + "status names a manifest: " + r.end.dump());
    } else {
      if (r.end["state"].str() != "done") {
        CHECK_MSG(false, where + "a fault past the last call failed the backup: " + r.end.dump());
        failures++;
      } else {
        CHECK_TREE_EQ(r.src, r.dest);
      }
    }
    if (failures == before) {
      remove_tree(r.src);
      remove_tree(r.dest);
    }
    if (failures > 5) abort_here(__FILE__, __LINE__, "too many failures for " + call + ", stopping");
  }
}

}  // namespace

// test6415 / test6469: ENOSPC on copier and mirror writes.
TEST(enospc_on_every_write) { fault_every_k(t, "write", ENOSPC, 1); }
TEST(eio_on_every_write) { fault_every_k(t, "write", EIO, 1); }
// open_injection_6476
TEST(enospc_on_every_open) { fault_every_k(t, "open", ENOSPC, 1); }
TEST(eio_on_every_open) { fault_every_k(t, "open", EIO, 1); }
// test6477_close_injection
TEST(enospc_on_every_close) { fault_every_k(t, "close", ENOSPC, 1); }
TEST(eio_on_every_close) { fault_every_k(t, "close", EIO, 1); }
// rename_injection (captured renames, and the manifest's own rename)
TEST(enospc_on_every_rename) { fault_every_k(t, "rename", ENOSPC, 1); }
TEST(eio_on_every_rename) { fault_every_k(t, "rename", EIO, 1); }
// unlink_injection
TEST(enospc_on_every_unlink) { fault_every_k(t, "unlink", ENOSPC, 1); }
TEST(eio_on_every_unlink) { fault_every_k(t, "unlink", EIO, 1); }
// test6483_mkdir_injection
TEST(enospc_on_every_mkdir) { fault_every_k(t, "mkdir", ENOSPC, 1); }
TEST(eio_on_every_mkdir) { fault_every_k(t, "mkdir", EIO, 1); }
// DESIGN "Seal": fsync of every file and directory
TEST(enospc_on_every_fsync) { fault_every_k(t, "fsync", ENOSPC, 1); }
TEST(eio_on_every_fsync) { fault_every_k(t, "fsync", EIO, 1); }
// ftruncate_injection_6480 (mirrored ftruncate/truncate)
TEST(enospc_on_every_truncate) { fault_every_k(t, "truncate", ENOSPC, 1); }
TEST(eio_on_every_truncate) { fault_every_k(t, "truncate", EIO, 1); }
// the remaining kinds of the protocol: a source read, links, symlinks, rmdir
TEST(eio_on_every_read) { fault_every_k(t, "read", EIO, 0); }
TEST(enospc_on_every_link) { fault_every_k(t, "link", ENOSPC, 1); }
TEST(enospc_on_every_symlink) { fault_every_k(t, "symlink", ENOSPC, 1); }
TEST(eio_on_every_rmdir) { fault_every_k(t, "rmdir", EIO, 1); }

// Issue 2 §8 and DESIGN "incomplete never looks complete": when status first says failed,
// the partial output is already gone and finished_at is known (a client that sees the
// terminal state may act on the destination at once, as `start --wait` does).
TEST(failure_reported_only_after_cleanup) {
  for (int round = 0; round < 5; round++) {
    std::string src = t.base + "/s" + std::to_string(round), dest = t.base + "/d" + std::to_string(round);
    make_dirs(src + "/sub");
    for (int i = 0; i < 20; i++) write_file(src + "/sub/f" + std::to_string(i), pattern(3000, i));
    int fd = open((src + "/sub/f0").c_str(), O_RDWR);
    REQUIRE_SYS(fd);
    arm("cut");
    start_ok(dest, {src});
    wait_paused("cut");
    long w = counts()["write"];
    fault("write", w + 1, ENOSPC);  // the mirror of the next write
    CHECK_EQ(pwrite(fd, "x", 1, 0), (ssize_t)1);
    Json s = wait_terminal();
    std::string why;
    bool clean = dest_clean(dest, &why);
    CHECK_EQ(s["state"].str(), std::string("failed"));
    CHECK_EQ(s["error"]["code"].str(), std::string("ENOSPC"));
    CHECK_MSG(clean, "status said failed while " + why);
    CHECK_MSG(!s["finished_at"].is_null(), "status said failed with finished_at null");
    fault("write", 0, 0);
    release("cut");
    close(fd);
    wait_state({"failed"});
    for (int i = 0; i < 60000 && status()["finished_at"].is_null(); i++) usleep(1000);
  }
}

// Issue 2 §8 "a vanished destination": the destination is removed while the backup runs
// (after the copy, capture on). The server's calls keep their results; the backup fails
// with an errno code; no manifest appears and the destination is not recreated.
TEST(vanished_destination_fails_backup_cleanly) {
  write_file(t.path("a"), pattern(20000, 1));
  make_dirs(t.path("d"));
  write_file(t.path("d/b"), pattern(3000, 2));
  int fd = open(t.path("a").c_str(), O_RDWR);
  REQUIRE_SYS(fd);
  arm("cut");
  start_ok(t.D, {t.S});
  wait_paused("cut");
  remove_tree(t.D);
  CHECK_EQ(pwrite(fd, "after", 5, 10), (ssize_t)5);
  CHECK_SYS(rename(t.path("d/b").c_str(), t.path("c").c_str()));
  CHECK_SYS(mkdir(t.path("e").c_str(), 0755));
  write_file(t.path("e/new"), "new");
  CHECK_SYS(unlink(t.path("c").c_str()));
  release("cut");
  Json s = wait_terminal();
  close(fd);
  CHECK_EQ(s["state"].str(), std::string("failed"));
  CHECK_MSG(s["error"]["code"].str().rfind("E", 0) == 0, "error code is an errno name: " + s["error"].dump());
  CHECK(s["manifest"].is_null());
  std::string why;
  CHECK_MSG(dest_clean(t.D, &why), why);
  CHECK_EQ(read_file(t.path("a")).substr(10, 5), std::string("after"));
}

int main(int argc, char **argv) { return hbt::main(argc, argv); }
