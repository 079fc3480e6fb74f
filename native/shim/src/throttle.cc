#include "throttle.h"

#include <algorithm>

namespace hb {

void Throttle::set_rate(uint64_t bytes_per_sec) {
  {
    std::lock_guard<std::mutex> g(mu_);
    rate_ = bytes_per_sec;
    tokens_ = 0;  // a new rate starts from an empty bucket, so it holds from now on
    last_ = Clock::now();
  }
  cv_.notify_all();
}

size_t Throttle::chunk_size(size_t max_chunk) const {
  uint64_t r = rate_.load();
  if (r == 0) return max_chunk;
  // About ten chunks a second, but never tiny.
  return static_cast<size_t>(std::clamp<uint64_t>(r / 10, 4096, max_chunk));
}

bool Throttle::acquire(uint64_t n, const std::function<bool()> &stop) {
  std::unique_lock<std::mutex> g(mu_);
  for (;;) {
    if (stop()) return false;
    uint64_t r = rate_.load();
    auto now = Clock::now();
    if (r == 0) {
      last_ = now;
      tokens_ = 0;
      return true;
    }
    double elapsed = std::chrono::duration<double>(now - last_).count();
    last_ = now;
    // A burst of at most a quarter second keeps the measured rate close to the set one.
    tokens_ = std::min(tokens_ + elapsed * static_cast<double>(r), std::max<double>(r / 4.0, n));
    if (tokens_ >= static_cast<double>(n)) {
      tokens_ -= static_cast<double>(n);
      return true;
    }
    double wait = (static_cast<double>(n) - tokens_) / static_cast<double>(r);
    cv_.wait_for(g, std::chrono::duration<double>(std::min(wait, 0.25)));
  }
}

}  // namespace hb
