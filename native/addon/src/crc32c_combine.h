// Combining CRC32C values of consecutive byte ranges, so one file can be checksummed by several
// threads at once: crc32c_combine(crc(A), crc(B), len(B)) == crc(A followed by B). And a faster
// single-thread CRC32C of large buffers built on the same identity.
// The CRC itself is always the shim's (native/shim/src/crc32c.cc, hb::crc32c_update).
#pragma once
#include <cstddef>
#include <cstdint>

namespace hb {
uint32_t crc32c_combine(uint32_t crc_a, uint32_t crc_b, uint64_t len_b);

// Same result as crc32c_update(crc, data, n). For large buffers it runs three independent CRC
// chains over three thirds of the buffer, alternating short stripes so the CPU overlaps them
// (crc32c_update's loop is bound by the latency of one chain), then combines them.
uint32_t crc32c_update_wide(uint32_t crc, const void *data, size_t n);
}  // namespace hb
