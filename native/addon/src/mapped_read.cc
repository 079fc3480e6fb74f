#include "mapped_read.h"

#include <setjmp.h>
#include <signal.h>
#include <sys/mman.h>
#include <unistd.h>

#include <algorithm>
#include <mutex>

#include "crc32c.h"

namespace hb {
namespace scan {
namespace {

// The mapping this thread is reading, and where to resume if reading it faults.
struct Guard {
  sigjmp_buf resume;
  const char *lo = nullptr;
  const char *hi = nullptr;
};
thread_local Guard *t_guard = nullptr;

struct sigaction g_previous_sigbus;

void on_sigbus(int sig, siginfo_t *info, void *context) {
  Guard *g = t_guard;
  const char *at = static_cast<const char *>(info->si_addr);
  if (g && at >= g->lo && at < g->hi) siglongjmp(g->resume, 1);
  // Not a fault of ours: behave as if we were not here.
  const struct sigaction &prev = g_previous_sigbus;
  if ((prev.sa_flags & SA_SIGINFO) && prev.sa_sigaction) return prev.sa_sigaction(sig, info, context);
  if (!(prev.sa_flags & SA_SIGINFO) && prev.sa_handler != SIG_DFL && prev.sa_handler != SIG_IGN)
    return prev.sa_handler(sig);
  // Default action (a synchronous SIGBUS cannot be ignored): restore it; the faulting access
  // runs again on return and the process ends the way it would have without this handler.
  signal(SIGBUS, SIG_DFL);
}

void install_sigbus_handler() {
  static std::once_flag once;
  std::call_once(once, [] {
    struct sigaction sa = {};
    sa.sa_sigaction = on_sigbus;
    sa.sa_flags = SA_SIGINFO | SA_ONSTACK;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGBUS, &sa, &g_previous_sigbus);
  });
}

bool all_resident(void *addr, uint64_t length, std::vector<unsigned char> &vec) {
  const uint64_t page = uint64_t(sysconf(_SC_PAGESIZE));
  vec.resize(size_t((length + page - 1) / page));
  if (mincore(addr, size_t(length), vec.data()) != 0) return false;
  return std::all_of(vec.begin(), vec.end(), [](unsigned char v) { return v & 1; });
}

// Pieces between progress reports.
constexpr uint64_t kPiece = 4ull << 20;

}  // namespace

Mapped crc_mapped(const MappedRead &r, uint32_t *crc, std::vector<unsigned char> &residency) {
  if (r.length == 0) return Mapped::done;
  void *map = mmap(nullptr, size_t(r.length), PROT_READ, MAP_SHARED, r.fd, off_t(r.offset));
  if (map == MAP_FAILED) return Mapped::unavailable;
  if (!all_resident(map, r.length, residency)) {
    munmap(map, size_t(r.length));
    return Mapped::not_resident;
  }
  // Map every page now rather than fault them in 16 at a time (Linux 5.14+; harmless elsewhere).
#ifdef MADV_POPULATE_READ
  madvise(map, size_t(r.length), MADV_POPULATE_READ);
#endif
  if (r.before_read) r.before_read();

  install_sigbus_handler();
  const char *base = static_cast<const char *>(map);
  Guard guard;
  guard.lo = base;
  guard.hi = base + r.length;
  // Written between sigsetjmp and a possible siglongjmp, read after it: volatile.
  volatile uint32_t sum = *crc;
  volatile uint64_t done = 0;
  Mapped outcome = Mapped::done;
  t_guard = &guard;
  if (sigsetjmp(guard.resume, 1) == 0) {
    while (done < r.length) {
      const uint64_t n = std::min<uint64_t>(kPiece, r.length - done);
      sum = crc32c_update(sum, base + done, size_t(n));
      done = done + n;
      if (r.on_piece) r.on_piece(n);
    }
  } else {
    outcome = Mapped::shrank;
  }
  t_guard = nullptr;
  munmap(map, size_t(r.length));
  if (outcome == Mapped::done) *crc = sum;
  return outcome;
}

}  // namespace scan
}  // namespace hb
