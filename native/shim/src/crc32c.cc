// CRC32C in three parts: the raw register update (SSE4.2 crc32 instruction, or slicing-by-8
// tables), arithmetic modulo the polynomial to shift a register past zero bytes, and the two
// built on those: crc32c_update, which runs three independent hardware chains over three
// consecutive blocks (one chain is bound by the instruction's latency, three fill its
// throughput) and joins them, and crc32c_combine.
#include "crc32c.h"

#include <cstring>

namespace hb {
namespace {

constexpr uint32_t kPoly = 0x82F63B78u;  // Castagnoli, bit-reflected

// ---- arithmetic modulo P, reflected representation (bit 31 is x^0) ----

// a(x) * b(x) mod P(x). a must not be zero.
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

// x^(8n) mod P: the factor that moves a CRC register past n zero bytes.
uint32_t x8n_mod_p(uint64_t n) {
  static const struct Powers {
    uint32_t x2k[3 + 64];  // x^(2^k) mod P, k up to the highest bit of a 64-bit length, plus 3
    Powers() {
      uint32_t p = 1u << 30;  // x^1
      for (auto &v : x2k) {
        v = p;
        p = mult_mod_p(p, p);
      }
    }
  } powers;
  uint32_t p = 1u << 31;  // x^0
  for (unsigned k = 3; n; n >>= 1, k++)
    if (n & 1) p = mult_mod_p(powers.x2k[k], p);
  return p;
}

// Multiplication of a register by one fixed factor, as four table lookups (it is linear in the
// register's bits), for the joins inside crc32c_update.
struct ShiftBy {
  uint32_t t[4][256];
  explicit ShiftBy(uint32_t factor) {
    for (unsigned j = 0; j < 4; j++)
      for (uint32_t v = 0; v < 256; v++) t[j][v] = mult_mod_p(factor, v << (8 * j));
  }
  uint32_t operator()(uint32_t r) const {
    return t[0][r & 0xFF] ^ t[1][(r >> 8) & 0xFF] ^ t[2][(r >> 16) & 0xFF] ^ t[3][r >> 24];
  }
};

// ---- raw register updates (no pre/post inversion) ----

struct Slices {
  uint32_t t[8][256];
  Slices() {
    for (uint32_t i = 0; i < 256; i++) {
      uint32_t c = i;
      for (int k = 0; k < 8; k++) c = (c >> 1) ^ (kPoly & (0u - (c & 1)));
      t[0][i] = c;
    }
    for (uint32_t i = 0; i < 256; i++)
      for (int s = 1; s < 8; s++) t[s][i] = (t[s - 1][i] >> 8) ^ t[0][t[s - 1][i] & 0xFF];
  }
};

uint32_t update_portable(uint32_t crc, const unsigned char *p, size_t n) {
  static const Slices slices;
  const auto &t = slices.t;
  while (n >= 8) {
    uint64_t v;
    std::memcpy(&v, p, 8);
    v ^= crc;
    crc = t[7][v & 0xFF] ^ t[6][(v >> 8) & 0xFF] ^ t[5][(v >> 16) & 0xFF] ^ t[4][(v >> 24) & 0xFF] ^
          t[3][(v >> 32) & 0xFF] ^ t[2][(v >> 40) & 0xFF] ^ t[1][(v >> 48) & 0xFF] ^ t[0][v >> 56];
    p += 8;
    n -= 8;
  }
  while (n--) crc = (crc >> 8) ^ t[0][(crc ^ *p++) & 0xFF];
  return crc;
}

#if defined(__x86_64__)
// Each of the three chains covers kBlock bytes per round; the join costs two ShiftBy lookups, a
// few percent of a round at this size, and buffers under 3 * kBlock take the single chain.
constexpr size_t kBlock = 1024;

__attribute__((target("sse4.2"))) uint32_t update_sse42_chain(uint32_t crc, const unsigned char *p, size_t n) {
  uint64_t c = crc;
  for (; n >= 8; p += 8, n -= 8) {
    uint64_t v;
    std::memcpy(&v, p, 8);
    c = __builtin_ia32_crc32di(c, v);
  }
  uint32_t c32 = static_cast<uint32_t>(c);
  while (n--) c32 = __builtin_ia32_crc32qi(c32, *p++);
  return c32;
}

__attribute__((target("sse4.2"))) uint32_t update_sse42(uint32_t crc, const unsigned char *p, size_t n) {
  static const ShiftBy past_one_block(x8n_mod_p(kBlock));
  static const ShiftBy past_two_blocks(x8n_mod_p(2 * kBlock));
  for (; n >= 3 * kBlock; p += 3 * kBlock, n -= 3 * kBlock) {
    uint64_t a = crc, b = 0, c = 0;
    for (size_t i = 0; i < kBlock; i += 8) {
      uint64_t va, vb, vc;
      std::memcpy(&va, p + i, 8);
      std::memcpy(&vb, p + kBlock + i, 8);
      std::memcpy(&vc, p + 2 * kBlock + i, 8);
      a = __builtin_ia32_crc32di(a, va);
      b = __builtin_ia32_crc32di(b, vb);
      c = __builtin_ia32_crc32di(c, vc);
    }
    // The register is linear: reg(r, A B C) = reg(r, A) shifted past B and C, xor reg(0, B)
    // shifted past C, xor reg(0, C).
    crc = past_two_blocks(uint32_t(a)) ^ past_one_block(uint32_t(b)) ^ uint32_t(c);
  }
  return update_sse42_chain(crc, p, n);
}

bool have_sse42() {
  static const bool yes = __builtin_cpu_supports("sse4.2");
  return yes;
}
#endif

}  // namespace

uint32_t crc32c_update(uint32_t crc, const void *data, size_t n) {
  const unsigned char *p = static_cast<const unsigned char *>(data);
  crc = ~crc;
#if defined(__x86_64__)
  crc = have_sse42() ? update_sse42(crc, p, n) : update_portable(crc, p, n);
#else
  crc = update_portable(crc, p, n);
#endif
  return ~crc;
}

uint32_t crc32c_combine(uint32_t crc_a, uint32_t crc_b, uint64_t len_b) {
  // The pre/post inversions cancel out: crc(A B) = crc(A) * x^(8 len_b) xor crc(B).
  return mult_mod_p(x8n_mod_p(len_b), crc_a) ^ crc_b;
}

}  // namespace hb
