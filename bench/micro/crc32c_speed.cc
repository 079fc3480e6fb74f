// crc32c_speed: throughput of the shim's CRC32C (native/shim/src/crc32c.cc, three interleaved
// hardware chains) against one crc32 chain, the plain loop it replaced, measured in alternating
// batches in one process over a 256 KiB buffer (the verifier's read size, in L2). Prints one
// JSON object: GB/s of each (medians of the batches) and their ratio; exits 1 if the two
// disagree on the checksum.
//
//   g++ -O2 -std=c++17 -Inative/shim/src bench/micro/crc32c_speed.cc native/shim/src/crc32c.cc -o /tmp/crc32c_speed
//   /tmp/crc32c_speed [batches]
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <vector>

#include "crc32c.h"

namespace {

__attribute__((target("sse4.2"))) uint32_t one_chain(uint32_t crc, const unsigned char *p, size_t n) {
  uint64_t c = ~crc;
  for (; n >= 8; p += 8, n -= 8) {
    uint64_t v;
    std::memcpy(&v, p, 8);
    c = __builtin_ia32_crc32di(c, v);
  }
  uint32_t c32 = static_cast<uint32_t>(c);
  while (n--) c32 = __builtin_ia32_crc32qi(c32, *p++);
  return ~c32;
}

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v[v.size() / 2];
}

}  // namespace

int main(int argc, char **argv) {
  if (!__builtin_cpu_supports("sse4.2")) {
    std::printf("{\"error\":\"this CPU has no SSE4.2\"}\n");
    return 1;
  }
  const int batches = argc > 1 ? std::atoi(argv[1]) : 15;
  const size_t size = 256 << 10;
  const int reps = 2048;  // 512 MiB per batch
  std::vector<unsigned char> buf(size);
  for (size_t i = 0; i < size; i++) buf[i] = static_cast<unsigned char>(i * 2654435761u >> 13);
  if (hb::crc32c_update(0, buf.data(), size) != one_chain(0, buf.data(), size)) {
    std::printf("{\"error\":\"crc32c_update and the one-chain loop disagree\"}\n");
    return 1;
  }
  std::vector<double> wide, chain;
  volatile uint32_t sink = 0;
  for (int b = 0; b < batches; b++) {
    for (int which = 0; which < 2; which++) {
      const bool w = (which + b) % 2 == 0;  // alternate which goes first
      auto t0 = std::chrono::steady_clock::now();
      uint32_t c = 0;
      for (int r = 0; r < reps; r++) c = w ? hb::crc32c_update(c, buf.data(), size) : one_chain(c, buf.data(), size);
      double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
      sink = sink + c;
      (w ? wide : chain).push_back(double(size) * reps / s / 1e9);
    }
  }
  const double gw = median(wide), gc = median(chain);
  std::printf("{\"buffer_bytes\":%zu,\"batches\":%d,\"crc32c_update_gb_per_s\":%.2f,\"one_chain_gb_per_s\":%.2f,\"ratio\":%.2f}\n",
              size, batches, gw, gc, gw / gc);
  return 0;
}
