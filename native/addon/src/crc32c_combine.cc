// Polynomial arithmetic modulo the (bit-reflected) Castagnoli polynomial: appending len_b bytes
// to A multiplies A's CRC register by x^(8*len_b) mod P. Powers x^(2^k) are tabulated once.
#include "crc32c_combine.h"

#include "crc32c.h"

namespace hb {
namespace {

constexpr uint32_t kPoly = 0x82F63B78u;  // CRC32C, reflected

// a(x) * b(x) mod P(x), in the reflected representation (bit 31 is x^0).
uint32_t mult_mod_p(uint32_t a, uint32_t b) {
  uint32_t m = 1u << 31;
  uint32_t p = 0;
  for (;;) {
    if (a & m) {
      p ^= b;
      if ((a & (m - 1)) == 0) break;
    }
    m >>= 1;
    b = (b & 1) ? (b >> 1) ^ kPoly : b >> 1;
  }
  return p;
}

struct PowerTable {
  uint32_t x2n[32];  // x^(2^k) mod P
  PowerTable() {
    uint32_t p = 1u << 30;  // x^1
    x2n[0] = p;
    for (int k = 1; k < 32; k++) x2n[k] = p = mult_mod_p(p, p);
  }
};

// x^(n * 2^k) mod P.
uint32_t x_pow_n_mod_p(uint64_t n, unsigned k) {
  static const PowerTable table;
  uint32_t p = 1u << 31;  // x^0
  while (n) {
    if (n & 1) p = mult_mod_p(table.x2n[k & 31], p);
    n >>= 1;
    k++;
  }
  return p;
}

}  // namespace

uint32_t crc32c_combine(uint32_t crc_a, uint32_t crc_b, uint64_t len_b) {
  return mult_mod_p(x_pow_n_mod_p(len_b, 3), crc_a) ^ crc_b;
}

uint32_t crc32c_update_wide(uint32_t crc, const void *data, size_t n) {
  // 512-byte stripes measured best here (256..512: ~2x one chain; 4 KiB: no gain).
  constexpr size_t kStripe = 512;
  constexpr size_t kMin = 3 * 8 * kStripe;  // below this the combine costs more than it saves
  const unsigned char *p = static_cast<const unsigned char *>(data);
  if (n < kMin) return crc32c_update(crc, p, n);
  const size_t third = n / 3 / kStripe * kStripe;
  const unsigned char *pa = p, *pb = p + third, *pc = p + 2 * third;
  uint32_t a = crc, b = 0, c = 0;
  for (size_t off = 0; off < third; off += kStripe) {
    a = crc32c_update(a, pa + off, kStripe);
    b = crc32c_update(b, pb + off, kStripe);
    c = crc32c_update(c, pc + off, kStripe);
  }
  const uint32_t abc = crc32c_combine(crc32c_combine(a, b, third), c, third);
  return crc32c_update(abc, p + 3 * third, n - 3 * third);
}

}  // namespace hb
