// Token bucket in bytes per second for the copier; the rate may change at any time.
#pragma once
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <mutex>

namespace hb {

class Throttle {
 public:
  void set_rate(uint64_t bytes_per_sec);  // 0 = unlimited
  uint64_t rate() const { return rate_.load(); }
  // Waits until n bytes may be copied. Returns false early if stop() returns true.
  bool acquire(uint64_t n, const std::function<bool()> &stop);
  // Chunk size that keeps pacing smooth at the current rate.
  size_t chunk_size(size_t max_chunk) const;
  void wake() { cv_.notify_all(); }

 private:
  using Clock = std::chrono::steady_clock;
  std::atomic<uint64_t> rate_{0};
  std::mutex mu_;
  std::condition_variable cv_;
  double tokens_ = 0;
  Clock::time_point last_ = Clock::now();
};

}  // namespace hb
