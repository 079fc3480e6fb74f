// Checksumming a file range that is already in the page cache through a read-only mapping, which
// saves the copy into a buffer that read() makes (the copy, not the checksum, is what limits a
// warm verify). A range that is not fully resident is left to read(): faulting pages in one by one
// reads a cold file slower than read() with readahead. If the file shrinks while mapped, the
// access past its new end raises SIGBUS; that is caught here (on this thread, for this mapping
// only) and reported, so a backup modified during verify cannot kill the process.
#pragma once
#include <cstdint>
#include <functional>
#include <vector>

namespace hb {
namespace scan {

enum class Mapped {
  done,          // *crc covers the whole range
  not_resident,  // some page of the range is not in the page cache: read it instead
  unavailable,   // the file cannot be mapped (e.g. a file system without mmap): read it instead
  shrank,        // the file became shorter than offset + length while it was read
};

struct MappedRead {
  int fd = -1;
  uint64_t offset = 0;  // a multiple of the page size
  uint64_t length = 0;
  // Called with each piece's length after it is checksummed (progress). Must not touch the mapping.
  std::function<void(uint64_t)> on_piece;
  // Test hook: runs once the range is mapped and found resident, before any of it is read.
  std::function<void()> before_read;
};

// Continues *crc over the range when it is resident. `residency` is scratch space, reused.
Mapped crc_mapped(const MappedRead &r, uint32_t *crc, std::vector<unsigned char> &residency);

}  // namespace scan
}  // namespace hb
