// A tiny test harness for the shim's C++ tests (no external framework).
//
// A test program is one or more TEST(name) { ... } blocks plus
//     int main(int argc, char **argv) { return hbt::main(argc, argv); }
// It prints "ok N - name" / "not ok N - name" per test and "# pass N fail M" at the end,
// exits non-zero on any failure, and runs only the tests whose name contains one of its
// arguments (if any; "--list" prints the names). It must run with HOTBACKUP_SERVE='*'
// HOTBACKUP_TEST_HOOKS=1 HOTBACKUP_SOCKET=<path>; when they are missing it re-executes
// itself with them, so it can be run by hand.
//
// Every test gets a fresh temp dir t.base holding t.S (the source, created), t.D (the
// backup destination, not created) and t.O (a directory outside both, created). The shim
// is driven in process through hotbackup_request() (the same handler as the socket).
//
// Synchronisation: pause points and status polling only. Polling loops have a generous
// upper bound and fail loudly when it is reached; nothing assumes a speed.
#pragma once
#include <errno.h>
#include <stdint.h>
#include <string.h>
#include <sys/types.h>

#include <functional>
#include <map>
#include <sstream>
#include <stdexcept>
#include <string>
#include <vector>

namespace hbt {

// ---------------------------------------------------------------- JSON (minimal, complete)
struct Json {
  enum Type { Null, Bool, Num, Str, Arr, Obj } type = Null;
  bool b = false;
  double n = 0;
  std::string s;
  std::vector<Json> a;
  std::vector<std::pair<std::string, Json>> o;

  bool is_null() const { return type == Null; }
  bool is_str() const { return type == Str; }
  bool is_num() const { return type == Num; }
  bool is_obj() const { return type == Obj; }
  bool is_arr() const { return type == Arr; }
  bool has(const std::string &k) const;
  const Json *get(const std::string &k) const;        // the member, or nullptr when missing
  const Json &operator[](const std::string &k) const;  // a Null when missing
  const Json &operator[](size_t i) const;              // a Null when out of range
  std::string str() const { return type == Str ? s : std::string(); }
  long long num() const { return type == Num ? (long long)n : -1; }
  bool truthy() const { return type == Bool && b; }
  std::string dump() const;
};
// Parses text; on a syntax error returns a Null and sets *err.
Json parse_json(const std::string &text, std::string *err = nullptr);
// A JSON string literal (quoted, escaped).
std::string jstr(const std::string &s);

// ---------------------------------------------------------------- failures
struct TestAbort : std::runtime_error {
  using std::runtime_error::runtime_error;
};
void fail_here(const char *file, int line, const std::string &msg);  // records, continues
[[noreturn]] void abort_here(const char *file, int line, const std::string &msg);  // records, throws
void note(const std::string &msg);  // a "# ..." diagnostic line
bool current_test_failed();

template <class T> std::string show(const T &v) {
  std::ostringstream os;
  os << v;
  return os.str();
}
std::string show(const std::string &v);
std::string show(const char *v);
inline std::string show(char *v) { return show((const char *)v); }
inline std::string show(bool v) { return v ? "true" : "false"; }
inline std::string show(std::nullptr_t) { return "null"; }

template <class A, class B>
bool check_eq(const char *file, int line, const char *ea, const char *eb, const A &a, const B &b, bool fatal) {
  if (a == b) return true;
  std::string m = std::string("CHECK_EQ(") + ea + ", " + eb + ") failed: " + show(a) + " != " + show(b);
  if (fatal) abort_here(file, line, m);
  fail_here(file, line, m);
  return false;
}
inline bool check_eq(const char *file, int line, const char *ea, const char *eb, const std::string &a,
                     const char *b, bool fatal) {
  return check_eq(file, line, ea, eb, a, std::string(b), fatal);
}

#define CHECK(cond)                                                                  \
  ((cond) ? true : (::hbt::fail_here(__FILE__, __LINE__, "CHECK(" #cond ") failed"), false))
#define CHECK_MSG(cond, msg)                                                                 \
  ((cond) ? true                                                                             \
          : (::hbt::fail_here(__FILE__, __LINE__, std::string("CHECK(" #cond ") failed: ") + \
                                                      (msg)),                                \
             false))
#define REQUIRE(cond)                                                                \
  do {                                                                               \
    if (!(cond)) ::hbt::abort_here(__FILE__, __LINE__, "REQUIRE(" #cond ") failed"); \
  } while (0)
#define REQUIRE_MSG(cond, msg)                                                                     \
  do {                                                                                             \
    if (!(cond))                                                                                   \
      ::hbt::abort_here(__FILE__, __LINE__, std::string("REQUIRE(" #cond ") failed: ") + (msg)); \
  } while (0)
#define CHECK_EQ(a, b) ::hbt::check_eq(__FILE__, __LINE__, #a, #b, (a), (b), false)
#define REQUIRE_EQ(a, b) ::hbt::check_eq(__FILE__, __LINE__, #a, #b, (a), (b), true)
// A libc call that must succeed (result >= 0): shows errno otherwise.
#define CHECK_SYS(expr) ::hbt::check_sys(__FILE__, __LINE__, #expr, (long long)(expr), false)
#define REQUIRE_SYS(expr) ::hbt::check_sys(__FILE__, __LINE__, #expr, (long long)(expr), true)
long long check_sys(const char *file, int line, const char *expr, long long r, bool fatal);
// Two trees must be equal (see tree_equal); on a difference shows the first one.
#define CHECK_TREE_EQ(a, b) ::hbt::check_tree(__FILE__, __LINE__, (a), (b), false)
#define REQUIRE_TREE_EQ(a, b) ::hbt::check_tree(__FILE__, __LINE__, (a), (b), true)
bool check_tree(const char *file, int line, const std::string &a, const std::string &b, bool fatal);

std::string errno_name(int e);  // "ENOSPC"

// ---------------------------------------------------------------- tests
struct Ctx {
  std::string name;
  std::string base;  // fresh per test
  std::string S;     // source (created, empty)
  std::string D;     // backup destination (not created)
  std::string O;     // outside both (created, empty)
  std::string path(const std::string &rel) const { return S + "/" + rel; }  // under S
  std::string dpath(const std::string &rel) const { return D + "/" + rel; }  // under D
};
using TestFn = void (*)(Ctx &);
int register_test(const char *name, TestFn fn);
#define TEST(name)                                                    \
  static void hbt_test_##name(::hbt::Ctx &t);                         \
  static int hbt_reg_##name = ::hbt::register_test(#name, hbt_test_##name); \
  static void hbt_test_##name(::hbt::Ctx &t)
// Reports the current test as skipped (as root, say) and leaves it.
[[noreturn]] void skip(const std::string &why);

int main(int argc, char **argv);

// ---------------------------------------------------------------- the shim
struct Reply {
  std::string raw;
  Json j;
  bool ok() const { return j["ok"].truthy(); }
  std::string code() const { return j["error"]["code"].str(); }
  const Json &status() const { return j["status"]; }
};
Reply request(const std::string &json);           // hotbackup_request, parsed
Reply request_ok(const std::string &json);        // aborts the test unless ok
Json status();                                    // the status object
std::string state();                              // status().state
// {"op":"start",...}; throttle < 0 = omitted; sources empty = omitted.
Reply start(const std::string &dest, const std::vector<std::string> &sources, long long throttle = -1);
Json start_ok(const std::string &dest, const std::vector<std::string> &sources, long long throttle = -1);
bool is_terminal(const std::string &state);        // idle done failed cancelled
// Polls status until its state is one of `states`; aborts the test with the last status
// after `limit_s` seconds (a bound, not a speed assumption).
Json wait_state(const std::vector<std::string> &states, double limit_s = 300);
Json wait_terminal(double limit_s = 300);
// Waits for the end and requires state done with a manifest in dest.
Json wait_done(double limit_s = 300);
// start + wait_done.
Json backup(const std::string &dest, const std::vector<std::string> &sources, long long throttle = -1);

// Pause points: copy_start, chunk, cut.
void arm(const std::string &point);
void release(const std::string &point);  // disarms, which releases a waiting copier
// Waits until test_paused reports `point`; returns the test_paused reply.
Json wait_paused(const std::string &point, double limit_s = 300);
// Like wait_paused, but returns false if the backup ends (failed, ...) first.
bool wait_paused_or_end(const std::string &point, double limit_s = 300);

// Fault injection: the nth backup-side call of kind `call` fails with `err`; nth 0 clears.
void fault(const std::string &call, long nth, int err);
std::map<std::string, long long> counts();
extern const std::vector<std::string> kCallKinds;

// Runs a backup of t.S (or `sources`) to t.D that pauses at `point` (copy_start, cut), runs
// fn there, releases, and waits for done (the backup then equals the sources at the cut).
Json during(Ctx &t, const std::string &point, const std::function<void()> &fn,
            const std::vector<std::string> &sources = {});
// The same at the first chunk pause; fn gets the paused path (its range lock is held:
// touching that file's first chunk from this thread would wait forever).
Json during_chunk(Ctx &t, const std::function<void(const std::string &)> &fn);

// Leaves the shim idle-ish: disarms pause points and faults, cancels a running backup.
void reset_shim();

// ---------------------------------------------------------------- files
void write_file(const std::string &path, const std::string &data, mode_t mode = 0644);
std::string read_file(const std::string &path);  // aborts the test if unreadable
bool exists(const std::string &path);            // lstat succeeds
bool is_dir(const std::string &path);
long long file_size(const std::string &path);   // -1 if missing
void make_dirs(const std::string &path, mode_t mode = 0755);
void remove_tree(const std::string &path);
void copy_tree(const std::string &from, const std::string &to);  // cp -a (types, modes, links)
std::string pattern(size_t n, unsigned seed);  // deterministic bytes
// Compares two trees exactly: entry names, types, sizes, modes (07777), content, symlink
// targets; entries named hotbackup_* at the top are ignored (the tool's own files).
// Returns "" when equal, else the first difference.
std::string tree_equal(const std::string &a, const std::string &b, bool compare_root_mode = true);
std::string manifest_path(const std::string &dest);

// Threads: the kernel tid of the calling thread; whether tid sleeps in the kernel now.
pid_t gettid_();
// Best effort: waits (bounded) until thread `tid` of this process is asleep in the kernel
// (blocked on a lock, say). Returns whether it saw that; never a test failure by itself.
bool wait_blocked(pid_t tid, double limit_s = 5);

// A path to the built libhotbackup.so this program runs with.
std::string shim_path();
// Extra LD_PRELOAD entries a child needs before the shim (a sanitizer runtime), or "".
std::string sanitizer_runtime();
// Runs argv (execvp) in a child with extra env, waits (bounded); returns the exit status
// (as from waitpid) and the child's stdout+stderr in *out.
int run_child(const std::vector<std::string> &argv, const std::vector<std::string> &env, std::string *out,
              double limit_s = 120);

}  // namespace hbt
