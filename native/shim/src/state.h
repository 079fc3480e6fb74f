// Process-wide state of the shim: whether this process is served, the one "capturing?" flag
// the idle path checks, per-thread in-flight marks, and the barrier that defines the cut.
#pragma once
#include <atomic>
#include <functional>
#include <pthread.h>
#include <thread>

namespace hb {

class Session;

// The only thing a write path reads when no backup runs.
extern std::atomic<bool> g_capturing;
// The fd table is kept (this process is served and is not a fork child).
extern std::atomic<bool> g_tracking;
extern bool g_test_hooks;

bool served();

// Per-thread state. `busy` says which call the thread is in on the idle path (an fd, or
// kPathCall), so that a starting backup can wait for calls that began before capture did.
constexpr long kIdle = -1;
constexpr long kPathCall = -2;
struct ThreadState {
  std::atomic<long> busy;
  bool registered;
  bool internal;  // the shim's own threads: their calls are never captured
};
extern thread_local ThreadState t_state __attribute__((tls_model("initial-exec")));
void register_thread();

// The shim's own calls made through the public names (see real.cc) must not be captured.
class InternalScope {
 public:
  InternalScope() : prev_(t_state.internal) { t_state.internal = true; }
  ~InternalScope() { t_state.internal = prev_; }
  InternalScope(const InternalScope &) = delete;
  InternalScope &operator=(const InternalScope &) = delete;

 private:
  bool prev_;
};

// Marks the calling thread as inside a mutating call for its duration.
class BusyMark {
 public:
  explicit BusyMark(long what) {
    if (__builtin_expect(!t_state.registered, 0)) register_thread();
    t_state.busy.store(what, std::memory_order_relaxed);
    std::atomic_signal_fence(std::memory_order_seq_cst);  // the matching fence is membarrier()
  }
  ~BusyMark() { t_state.busy.store(kIdle, std::memory_order_release); }
  void clear() { t_state.busy.store(kIdle, std::memory_order_release); }
  BusyMark(const BusyMark &) = delete;
  BusyMark &operator=(const BusyMark &) = delete;
};

inline bool capture_requested() { return g_capturing.load(std::memory_order_relaxed); }

// After g_capturing is set: returns once every call that read the flag as false has
// returned (calls on fds that are not tracked files, e.g. sockets, are not waited for).
void wait_for_uncaptured_calls();

// The barrier: captures hold it shared across "real call + mirror"; the cut holds it
// exclusively. Writer-preferring, so a waiting cut is not starved.
extern pthread_rwlock_t g_barrier;

// While alive: the barrier is held shared; session() is the live session or null.
class CaptureScope {
 public:
  CaptureScope();
  ~CaptureScope() { pthread_rwlock_unlock(&g_barrier); }
  Session *session() const { return s_; }
  CaptureScope(const CaptureScope &) = delete;
  CaptureScope &operator=(const CaptureScope &) = delete;

 private:
  Session *s_;
};

// A thread of the shim's own, with every signal blocked: a signal meant for the server
// (mariadbd waits for SIGTERM in a sigwait thread) must never be delivered to ours.
std::thread spawn_quiet_thread(std::function<void()> fn);

// Replaced only with the barrier held exclusively.
extern Session *g_session;

// Sets errno back on scope exit (the server must see the real call's errno).
class ErrnoKeeper {
 public:
  ErrnoKeeper();
  ~ErrnoKeeper();

 private:
  int saved_;
};

}  // namespace hb
