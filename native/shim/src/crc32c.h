// CRC32C (Castagnoli), hardware-accelerated with SSE4.2 where the CPU has it. Shared by the
// shim (manifest checksums, computed as the copier writes) and the addon (verify), so both
// compute the same thing with the same code.
#pragma once
#include <cstddef>
#include <cstdint>

namespace hb {
// Continues a CRC32C: crc32c_update(0, data, n) is the CRC32C of data.
uint32_t crc32c_update(uint32_t crc, const void *data, size_t n);

// The CRC32C of A followed by B, from crc(A), crc(B) and B's length: lets several threads
// checksum parts of one file and join the results.
uint32_t crc32c_combine(uint32_t crc_a, uint32_t crc_b, uint64_t len_b);
}  // namespace hb
