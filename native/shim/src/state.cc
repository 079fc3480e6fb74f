#include "state.h"

#include <cerrno>
#include <csignal>
#include <linux/membarrier.h>
#include <mutex>
#include <sys/syscall.h>
#include <unistd.h>
#include <vector>

#include "files.h"
#include "real.h"
#include "session.h"

namespace hb {

std::atomic<bool> g_capturing{false};
std::atomic<bool> g_tracking{false};
bool g_test_hooks = false;
Session *g_session = nullptr;
pthread_rwlock_t g_barrier = PTHREAD_RWLOCK_WRITER_NONRECURSIVE_INITIALIZER_NP;
thread_local ThreadState t_state __attribute__((tls_model("initial-exec"))) = {{kIdle}, false, false};

namespace {
std::mutex g_threads_mu;
std::vector<ThreadState *> *g_threads = new std::vector<ThreadState *>();
pthread_key_t g_thread_key;
std::once_flag g_key_once;

void unregister_thread(void *p) {
  std::lock_guard<std::mutex> g(g_threads_mu);
  auto &v = *g_threads;
  for (size_t i = 0; i < v.size(); i++)
    if (v[i] == p) {
      v[i] = v.back();
      v.pop_back();
      break;
    }
}
}  // namespace

void register_thread() {
  std::call_once(g_key_once, [] { pthread_key_create(&g_thread_key, unregister_thread); });
  t_state.registered = true;
  pthread_setspecific(g_thread_key, &t_state);
  std::lock_guard<std::mutex> g(g_threads_mu);
  g_threads->push_back(&t_state);
}

void wait_for_uncaptured_calls() {
  // Makes every thread's earlier busy-mark visible and every later flag read see `true`.
  if (real.syscall(__NR_membarrier, MEMBARRIER_CMD_PRIVATE_EXPEDITED, 0, 0) != 0) {
    std::atomic_thread_fence(std::memory_order_seq_cst);
    usleep(20000);  // without membarrier: store buffers drain in far less than this
  }
  std::lock_guard<std::mutex> g(g_threads_mu);
  for (ThreadState *t : *g_threads) {
    if (t == &t_state) continue;
    long seen = t->busy.load(std::memory_order_acquire);
    if (seen == kIdle) continue;
    if (seen >= 0 && !files().is_tracked(static_cast<int>(seen))) continue;  // a socket or pipe may block forever
    while (t->busy.load(std::memory_order_acquire) == seen) usleep(100);
  }
}

CaptureScope::CaptureScope() {
  pthread_rwlock_rdlock(&g_barrier);
  s_ = (g_session && g_session->capturing()) ? g_session : nullptr;
}

std::thread spawn_quiet_thread(std::function<void()> fn) {
  sigset_t all, old;
  sigfillset(&all);
  pthread_sigmask(SIG_SETMASK, &all, &old);
  std::thread t([fn = std::move(fn)] {
    t_state.internal = true;
    fn();
  });
  pthread_sigmask(SIG_SETMASK, &old, nullptr);
  return t;
}

ErrnoKeeper::ErrnoKeeper() : saved_(errno) {}
ErrnoKeeper::~ErrnoKeeper() { errno = saved_; }

}  // namespace hb
