// The shim as a library in a process: its exported names, which process it serves
// (children, fork without exec), native async I/O disabled.
// Origins: tokubackup-lessons.md §1.5 (the LFS regression: "test the exported symbol
// list, not just behaviour"), §6.2 (cover the interposition surface; io_submit/io_uring);
// issue 2 §2 and §7; docs/protocol.md "Which process is served".
#include <dirent.h>
#include <dlfcn.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <set>

#include "harness.h"
#include "hotbackup.h"

using namespace hbt;

// The wrapped names, from the one list (native/shim/src/interpose.def, on the include
// path of the build).
#if __has_include("interpose.def")
static const char *const kWrapped[] = {
#define WRAP(ret, name, params, args) #name,
#define WRAP_VARIADIC(ret, name, params, args) #name,
#include "interpose.def"
#undef WRAP
#undef WRAP_VARIADIC
};
#define HAVE_DEF 1
#else
#define HAVE_DEF 0
#endif

static std::string run_capture(const std::string &cmd, int *status) {
  FILE *p = popen(cmd.c_str(), "r");
  if (!p) abort_here(__FILE__, __LINE__, "popen " + cmd + ": " + strerror(errno));
  std::string out;
  char buf[4096];
  size_t n;
  while ((n = fread(buf, 1, sizeof buf, p)) > 0) out.append(buf, n);
  *status = pclose(p);
  return out;
}

// §1.5: the exported symbol list is exactly interpose.def plus the hotbackup_* C API.
TEST(exported_symbols_match_interpose_def) {
#if !HAVE_DEF
  abort_here(__FILE__, __LINE__, "interpose.def was not on the include path at build time");
#else
  std::string lib = shim_path();
  REQUIRE_MSG(!lib.empty(), "cannot locate libhotbackup.so");
  int st = 0;
  std::string out = run_capture("nm -D --defined-only '" + lib + "' 2>&1", &st);
  REQUIRE_MSG(st == 0, "nm failed: " + out);
  std::set<std::string> exported;
  size_t pos = 0;
  while (pos < out.size()) {
    size_t nl = out.find('\n', pos);
    if (nl == std::string::npos) nl = out.size();
    std::string line = out.substr(pos, nl - pos);
    pos = nl + 1;
    // "<value> <type> <name>[@@version]"
    size_t sp = line.rfind(' ');
    if (sp == std::string::npos) continue;
    std::string name = line.substr(sp + 1);
    size_t at = name.find('@');
    if (at != std::string::npos) name = name.substr(0, at);
    char type = sp >= 1 ? line[sp - 1] : '?';
    if (type == 'A') continue;  // version nodes
    exported.insert(name);
  }
  std::set<std::string> wanted(std::begin(kWrapped), std::end(kWrapped));
  CHECK(wanted.size() > 50);
  for (auto &w : wanted) CHECK_MSG(exported.count(w), "interpose.def lists " + w + " but the library does not export it");
  for (const char *api : {"hotbackup_request", "hotbackup_free", "hotbackup_is_served"})
    CHECK_MSG(exported.count(api), std::string("C API not exported: ") + api);
  for (auto &e : exported)
    CHECK_MSG(wanted.count(e) || e.rfind("hotbackup_", 0) == 0, "exported but not in interpose.def: " + e);
  // and this program binds each of them to the shim, not to libc
  for (auto &w : wanted) {
    void *p = dlsym(RTLD_DEFAULT, w.c_str());
    Dl_info info;
    if (!p || !dladdr(p, &info) || !info.dli_fname) {
      CHECK_MSG(false, "dlsym(" + w + ") found nothing");
      continue;
    }
    char real[4096];
    std::string f = realpath(info.dli_fname, real) ? real : info.dli_fname;
    // a sanitizer runtime comes first and forwards to the next definition (the shim)
    bool sanitizer = f.find("/libasan.so") != std::string::npos || f.find("/libtsan.so") != std::string::npos ||
                     f.find("/libubsan.so") != std::string::npos;
    CHECK_MSG(f == lib || sanitizer, w + " resolves to " + f + ", not the shim");
  }
#endif
}

TEST(this_process_is_served) {
  CHECK_EQ(hotbackup_is_served(), 1);
  CHECK_EQ(status()["pid"].num(), (long long)getpid());
  const char *sp = getenv("HOTBACKUP_SERVED_PID");
  CHECK_MSG(sp && atoll(sp) == getpid(), std::string("HOTBACKUP_SERVED_PID=") + (sp ? sp : "(unset)"));
}

// Issue 2 §2, DESIGN "Load": native async I/O is unavailable in the served process, so
// MariaDB falls back to pwrite the shim sees.
TEST(native_async_io_disabled) {
  char params[120] = {};  // struct io_uring_params
  errno = 0;
  long r = syscall(SYS_io_uring_setup, 8, params);
  int e = errno;
  if (r >= 0) close((int)r);
  CHECK_EQ(r, -1L);
  CHECK_EQ(errno_name(e), std::string("ENOSYS"));
  typedef int (*init_fn)(unsigned, void *, unsigned);
  typedef int (*setup_fn)(unsigned, void *);
  // liburing and libaio report errors as negative return values
  init_fn qi = (init_fn)dlsym(RTLD_DEFAULT, "io_uring_queue_init");
  REQUIRE(qi);
  char ring[512] = {};
  CHECK_EQ(qi(8, ring, 0), -ENOSYS);
  setup_fn su = (setup_fn)dlsym(RTLD_DEFAULT, "io_setup");
  REQUIRE(su);
  unsigned long ctx = 0;
  CHECK_EQ(su(8, &ctx), -ENOSYS);
}

// Issue 2 §7 and the fakeroot t.no_ld_preload idea: a shell the server spawns, with the
// shim preloaded (LD_PRELOAD is inherited), works normally and does not claim the socket;
// the same while a backup runs; and with HOTBACKUP_SERVE unset (sh is never served).
TEST(exec_shell_child_works_and_leaves_socket) {
  std::string preload = sanitizer_runtime();
  preload += (preload.empty() ? "" : ":") + shim_path();
  std::string sock = getenv("HOTBACKUP_SOCKET");
  write_file(t.path("f"), pattern(2000, 1));
  for (int variant = 0; variant < 3; variant++) {
    std::string file = t.O + "/out" + std::to_string(variant);
    std::vector<std::string> env = {"LD_PRELOAD=" + preload};
    if (variant == 2) env.push_back("HOTBACKUP_SERVE=");
    std::string f_before = read_file(t.path("f"));
    if (variant == 1) {
      arm("cut");
      start_ok(t.D, {t.S});
      wait_paused("cut");
    }
    std::string out;
    int st = run_child({"/bin/sh", "-c", "echo hello > '" + file + "' && cat '" + file + "' && echo x >> '" +
                                             t.path("f") + "'"},
                       env, &out);
    CHECK_MSG(WIFEXITED(st) && WEXITSTATUS(st) == 0, "sh failed (variant " + std::to_string(variant) + "): " + out);
    CHECK_MSG(out.find("hello") != std::string::npos, "sh output: " + out);
    CHECK_EQ(read_file(file), std::string("hello\n"));
    struct stat sst;
    CHECK_MSG(stat(sock.c_str(), &sst) == 0 && S_ISSOCK(sst.st_mode), "socket gone after the child ran");
    CHECK_EQ(status()["pid"].num(), (long long)getpid());
    if (variant == 1) {
      release("cut");
      wait_done();
      // the child's append is another process's write: not captured
      CHECK_EQ(read_file(t.dpath("f")), f_before);
      CHECK_EQ(read_file(t.path("f")), f_before + "x\n");
    }
  }
}

// An exec'ed child of a served process (same binary, so it links the shim; inherits
// HOTBACKUP_SERVE='*' and HOTBACKUP_SERVED_PID) is inert and does not take the socket.
TEST(exec_child_of_served_process_is_inert) {
  std::string out;
  int st = run_child({"/proc/self/exe", "--hbt-probe"}, {}, &out);
  CHECK_MSG(WIFEXITED(st) && WEXITSTATUS(st) == 0, "probe failed: " + out);
  CHECK_MSG(out.find("served=0") != std::string::npos, "child says: " + out);
  CHECK_MSG(out.find("not_served") != std::string::npos, "child's request reply: " + out);
  CHECK_EQ(status()["pid"].num(), (long long)getpid());
}

// Issue 2 §7: fork() without exec while a backup runs (paused at a chunk, holding its
// range lock, and at the cut): the child must not deadlock, must be inert (no backup, no
// mirroring, no threads), and the parent's backup finishes normally without the child's
// writes (another process's writes are not captured).
TEST(fork_without_exec_during_backup) {
  for (const char *point : {"chunk", "cut"}) {
    std::string dest = t.base + "/dst_" + point;
    std::string orig = pattern(50000, 2);
    write_file(t.path("f"), orig);
    arm(point);
    start_ok(dest, {t.S});
    wait_paused(point);
    int fd = open(t.path("f").c_str(), O_RDWR);
    REQUIRE_SYS(fd);
    pid_t pid = fork();
    REQUIRE_SYS(pid);
    if (pid == 0) {
      int code = 0;
      if (hotbackup_is_served() != 0) code |= 1;
      char *rep = hotbackup_request("{\"op\":\"status\"}");
      if (!rep || !strstr(rep, "not_served")) code |= 2;
      if (rep) hotbackup_free(rep);
      // a write into the chunk the parent's copier holds: must not wait for it
      if (pwrite(fd, "CHILD", 5, 10) != 5) code |= 4;
      int g = open((std::string(t.O) + "/child_file").c_str(), O_WRONLY | O_CREAT, 0644);
      if (g < 0 || write(g, "c", 1) != 1 || close(g) != 0) code |= 8;
      if (rename((std::string(t.O) + "/child_file").c_str(), (std::string(t.O) + "/child_file2").c_str()) != 0)
        code |= 16;
      DIR *d = opendir("/proc/self/task");
      int threads = 0;
      while (d && readdir(d)) threads++;
      if (d) closedir(d);
      if (threads - 2 != 1) code |= 32;
      _exit(code);
    }
    int st = 0;
    pid_t w = 0;
    for (int i = 0; i < 60000 && (w = waitpid(pid, &st, WNOHANG)) == 0; i++) {
      struct timespec ts = {0, 1000000};
      nanosleep(&ts, nullptr);
    }
    if (w == 0) {
      kill(pid, SIGKILL);
      waitpid(pid, &st, 0);
      fail_here(__FILE__, __LINE__, std::string("forked child deadlocked (pause at ") + point + ")");
    } else {
      CHECK_MSG(WIFEXITED(st) && WEXITSTATUS(st) == 0,
                std::string("child at ") + point + " exit " + std::to_string(WIFEXITED(st) ? WEXITSTATUS(st) : -1) +
                    " (1 served, 2 answered requests, 4 pwrite, 8 open/write/close, 16 rename, 32 threads)");
    }
    close(fd);
    release(point);
    wait_done();
    CHECK_EQ(read_file(dest + "/f"), orig);
    CHECK_EQ(read_file(t.path("f")).substr(10, 5), std::string("CHILD"));
  }
}

int main(int argc, char **argv) {
  if (argc > 1 && strcmp(argv[1], "--hbt-probe") == 0) {
    char *r = hotbackup_request("{\"op\":\"status\"}");
    printf("served=%d\n%s\n", hotbackup_is_served(), r ? r : "(null)");
    if (r) hotbackup_free(r);
    return 0;
  }
  return hbt::main(argc, argv);
}
