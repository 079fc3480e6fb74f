// Combining CRC32C values of consecutive byte ranges, so one file can be checksummed by several
// threads at once: crc32c_combine(crc(A), crc(B), len(B)) == crc(A followed by B).
// The CRC itself is the shim's (native/shim/src/crc32c.cc, hb::crc32c_update).
#pragma once
#include <cstddef>
#include <cstdint>

namespace hb {
uint32_t crc32c_combine(uint32_t crc_a, uint32_t crc_b, uint64_t len_b);
}  // namespace hb
