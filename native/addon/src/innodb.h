// InnoDB page validation (MariaDB 10.11 data files: *.ibd, ibdata*, undo tablespaces).
//
// Facts used (MariaDB storage/innobase: fil0fil.h, fsp0types.h, buf0buf.cc buf_page_is_corrupted,
// buf0checksum.cc, page0zip.cc page_zip_verify_checksum); the code is our own:
//   - every page starts with the FIL header: checksum or key version (0..4), page number (4..8),
//     LSN (16..24), page type (24..26), flush LSN or key version (26..34), space id (34..38);
//   - page 0 holds the FSP header at 38; its FSP_SPACE_FLAGS (big-endian, at 38+16) tell the format:
//       full_crc32 (bit 4 set): page size 512 << bits 0..3; CRC32C of bytes [0, n-4) stored in the
//         last 4 bytes; bytes [n-8, n-4) repeat the low 32 bits of the LSN; page-compressed pages
//         (type bit 15) carry their payload length (type & 0x7fff) << 8 instead of n;
//       older formats (bit 4 clear): logical page size 16 KiB when bits 6..9 are 0, else 512 << them;
//         ROW_FORMAT=COMPRESSED when bits 1..4 are set (physical page 512 << them); checksum field 1
//         at 0 and field 2 at n-8, either both CRC32C-based ("crc32") or the fold checksums of
//         innodb_checksum_algorithm=innodb, or 0xDEADBEEF ("none");
//   - a page of NUL bytes is valid (never written).
#pragma once
#include <cstddef>
#include <cstdint>
#include <string>

namespace hb {
namespace innodb {

constexpr size_t kFlagsOffset = 38 + 16;  // FSP_HEADER_OFFSET + FSP_SPACE_FLAGS

struct SpaceFormat {
  bool valid = false;
  uint32_t flags = 0;
  bool full_crc32 = false;
  bool page_compression = false;  // PAGE_COMPRESSED=1 tablespace (legacy format flag bit 16)
  bool row_compressed = false;    // ROW_FORMAT=COMPRESSED (legacy format, zip pages; may equal the page size)
  uint32_t logical_size = 0;      // page size of the tablespace
  uint32_t physical_size = 0;     // bytes per page in the file (the zip size for ROW_FORMAT=COMPRESSED)
  std::string name;               // "full_crc32", "crc32", "compressed"
};

SpaceFormat format_from_flags(uint32_t flags);

enum class Verdict { ok, zero, bad, skipped };

struct PageCheck {
  Verdict verdict = Verdict::ok;
  std::string reason;  // for bad and skipped
};

// Checks one page of physical_size bytes. `any_format`: accept a page valid in any format
// (the doublewrite area of the system tablespace holds copies of other tablespaces' pages).
PageCheck check_page(const uint8_t *page, const SpaceFormat &fmt, bool any_format);

inline uint32_t be32(const uint8_t *p) {
  return (uint32_t(p[0]) << 24) | (uint32_t(p[1]) << 16) | (uint32_t(p[2]) << 8) | uint32_t(p[3]);
}
inline uint16_t be16(const uint8_t *p) { return uint16_t((p[0] << 8) | p[1]); }

}  // namespace innodb
}  // namespace hb
