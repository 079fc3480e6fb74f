// CRC32C (Castagnoli), hardware-accelerated with SSE4.2 where the CPU has it. Shared by the
// shim (manifest checksums) and the addon (verify), so both compute the same thing.
#pragma once
#include <cstddef>
#include <cstdint>

namespace hb {
// Continues a CRC32C: crc32c_update(0, data, n) is the CRC32C of data.
uint32_t crc32c_update(uint32_t crc, const void *data, size_t n);
}  // namespace hb
