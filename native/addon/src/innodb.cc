#include "innodb.h"

#include <cstdio>
#include <cstring>

#include "crc32c.h"

namespace hb {
namespace innodb {
namespace {

// FIL header / trailer offsets.
constexpr size_t kPageOffset = 4;      // FIL_PAGE_OFFSET: the page number
constexpr size_t kLsn = 16;            // FIL_PAGE_LSN (8 bytes)
constexpr size_t kType = 24;           // FIL_PAGE_TYPE
constexpr size_t kFlushLsn = 26;       // FIL_PAGE_FILE_FLUSH_LSN_OR_KEY_VERSION (8 bytes)
constexpr size_t kSpaceId = 34;        // FIL_PAGE_ARCH_LOG_NO_OR_SPACE_ID
constexpr size_t kData = 38;           // FIL_PAGE_DATA
constexpr size_t kTrailer = 8;         // FIL_PAGE_END_LSN_OLD_CHKSUM (legacy) / FIL_PAGE_FCRC32_END_LSN
constexpr uint32_t kNoChecksum = 0xDEADBEEFu;      // BUF_NO_CHECKSUM_MAGIC
constexpr uint16_t kTypePageCompressed = 34354;    // FIL_PAGE_PAGE_COMPRESSED
constexpr uint16_t kTypePageCompressedEncrypted = 37401;
constexpr uint16_t kFcrc32CompressedBit = 1u << 15;

bool all_zero(const uint8_t *p, size_t n) {
  // Word at a time; pages are large and mostly not zero, so the first word usually decides.
  size_t i = 0;
  for (; i + 8 <= n; i += 8) {
    uint64_t v;
    std::memcpy(&v, p + i, 8);
    if (v) return false;
  }
  for (; i < n; i++)
    if (p[i]) return false;
  return true;
}

std::string hex(uint32_t v) {
  char b[16];
  std::snprintf(b, sizeof b, "%08x", v);
  return b;
}

PageCheck bad(std::string why) { return {Verdict::bad, std::move(why)}; }

uint32_t crc(const uint8_t *p, size_t n) { return crc32c_update(0, p, n); }

// ut_fold_binary of innodb_checksum_algorithm=innodb: 64-bit arithmetic, truncated by the callers
// (the low 32 bits only depend on the low 32 bits of every step).
uint64_t fold_pair(uint64_t n1, uint64_t n2) { return ((((n1 ^ n2 ^ 1653893711u) << 8) + n1) ^ 1463735687u) + n2; }
uint64_t fold_binary(const uint8_t *p, size_t n) {
  uint64_t fold = 0;
  for (size_t i = 0; i < n; i++) fold = fold_pair(fold, p[i]);
  return fold;
}

// Legacy "crc32": CRC32C of [4, 26) XOR CRC32C of [38, n-8).
uint32_t legacy_crc32(const uint8_t *page, size_t n) {
  return crc(page + kPageOffset, kFlushLsn - kPageOffset) ^ crc(page + kData, n - kData - kTrailer);
}
// Legacy "innodb" field 1 ("new" checksum) and field 2 ("old" checksum).
uint32_t legacy_innodb_new(const uint8_t *page, size_t n) {
  return uint32_t(fold_binary(page + kPageOffset, kFlushLsn - kPageOffset) + fold_binary(page + kData, n - kData - kTrailer));
}
uint32_t legacy_innodb_old(const uint8_t *page) { return uint32_t(fold_binary(page, kFlushLsn)); }

uint32_t adler32(uint32_t adler, const uint8_t *p, size_t n) {
  uint32_t a = adler & 0xFFFF, b = adler >> 16;
  while (n) {
    size_t k = n < 5552 ? n : 5552;  // largest block before the sums can overflow 32 bits
    n -= k;
    while (k--) {
      a += *p++;
      b += a;
    }
    a %= 65521;
    b %= 65521;
  }
  return (b << 16) | a;
}

// ROW_FORMAT=COMPRESSED page checksums: over [4, 16), [24, 26) and [34, n).
uint32_t zip_crc32(const uint8_t *p, size_t n) {
  return crc(p + kPageOffset, kLsn - kPageOffset) ^ crc(p + kType, 2) ^ crc(p + kSpaceId, n - kSpaceId);
}
uint32_t zip_adler32(const uint8_t *p, size_t n) {
  // The server calls zlib's adler32(0L, ...) directly: both sums start at 0, not at 1.
  uint32_t s = adler32(0, p + kPageOffset, kLsn - kPageOffset);
  s = adler32(s, p + kType, 2);
  return adler32(s, p + kSpaceId, n - kSpaceId);
}

PageCheck check_full_crc32(const uint8_t *page, uint32_t page_size) {
  uint32_t size = page_size;
  bool compressed = false;
  const uint16_t type = be16(page + kType);
  if (type & kFcrc32CompressedBit) {
    const uint32_t payload = uint32_t(type & ~kFcrc32CompressedBit) << 8;
    if (payload >= page_size) return bad("page_compressed payload length " + std::to_string(payload) + " is not below the page size");
    size = payload;
    compressed = true;
  }
  if (size < kData + kTrailer) return bad("page_compressed payload length " + std::to_string(size) + " is too small");
  const uint32_t stored = be32(page + size - 4);
  if (!stored && size == page_size && all_zero(page, size)) return {Verdict::zero, {}};
  const uint32_t computed = crc(page, size - 4);
  if (stored != computed) return bad("full_crc32 checksum mismatch: stored " + hex(stored) + ", computed " + hex(computed));
  if (!compressed && be32(page) == 0 && std::memcmp(page + kLsn + 4, page + size - kTrailer, 4) != 0) {
    return bad("LSN mismatch: header " + hex(be32(page + kLsn + 4)) + ", trailer " + hex(be32(page + size - kTrailer)));
  }
  return {};
}

PageCheck check_legacy_checksums(const uint8_t *page, size_t n, uint32_t f1, uint32_t f2);

PageCheck check_legacy(const uint8_t *page, const SpaceFormat &fmt) {
  const size_t n = fmt.logical_size;
  const uint16_t type = be16(page + kType);
  if ((type == kTypePageCompressed || type == kTypePageCompressedEncrypted) && fmt.page_compression) {
    return {Verdict::skipped, "page_compressed (checked by the server after decompression)"};
  }
  if (std::memcmp(page + kLsn + 4, page + n - kTrailer + 4, 4) != 0) {
    return bad("LSN mismatch: header " + hex(be32(page + kLsn + 4)) + ", trailer " + hex(be32(page + n - kTrailer + 4)));
  }
  const uint32_t f1 = be32(page);
  const uint32_t f2 = be32(page + n - kTrailer);
  if (!f1 && !f2) {
    // All NUL, except that old servers wrote FIL_PAGE_FILE_FLUSH_LSN into first pages.
    if (all_zero(page, kFlushLsn) && all_zero(page + kFlushLsn + 8, n - kFlushLsn - 8)) return {Verdict::zero, {}};
  }
  if (f1 == kNoChecksum && f2 == kNoChecksum) return {};
  PageCheck r = check_legacy_checksums(page, n, f1, f2);
  // Pages of an encrypted tablespace carry a key version where others have 0; the server checks
  // them after decrypting. Only a page that fails as plain text is taken for one.
  if (r.verdict == Verdict::bad && be32(page + kPageOffset) != 0 && be32(page + kFlushLsn) != 0) {
    return {Verdict::skipped, "encrypted page (key version " + std::to_string(be32(page + kFlushLsn)) + ")"};
  }
  return r;
}

PageCheck check_legacy_checksums(const uint8_t *page, size_t n, uint32_t f1, uint32_t f2) {
  const uint32_t c = legacy_crc32(page, n);
  const bool crc_ok = f1 == c && f2 == c;
  if (f2 != be32(page + kLsn) && f2 != kNoChecksum && !crc_ok) {
    const uint32_t old = legacy_innodb_old(page);
    if (f2 != old) {
      return bad("checksum mismatch: stored " + hex(f1) + "/" + hex(f2) + ", computed crc32 " + hex(c) + ", innodb " +
                 hex(legacy_innodb_new(page, n)) + "/" + hex(old));
    }
  }
  if (f1 == 0 || f1 == kNoChecksum || crc_ok) return {};
  const uint32_t nw = legacy_innodb_new(page, n);
  if (f1 != nw) {
    return bad("checksum mismatch: stored " + hex(f1) + "/" + hex(f2) + ", computed crc32 " + hex(c) + ", innodb " + hex(nw));
  }
  return {};
}

PageCheck check_zip(const uint8_t *page, size_t n) {
  const uint32_t stored = be32(page);
  if (stored == 0 && be32(page + kLsn) == 0 && be32(page + kLsn + 4) == 0) {
    if (all_zero(page, n)) return {Verdict::zero, {}};
    return bad("checksum 0 on a page that is not empty");
  }
  if (stored == kNoChecksum) return {};
  const uint32_t c = zip_crc32(page, n);
  if (stored == c) return {};
  const uint32_t a = zip_adler32(page, n);
  if (stored == a) return {};
  return bad("compressed page checksum mismatch: stored " + hex(stored) + ", computed crc32 " + hex(c) + ", adler32 " + hex(a));
}

}  // namespace

SpaceFormat format_from_flags(uint32_t flags) {
  SpaceFormat f;
  f.flags = flags;
  f.full_crc32 = flags & (1u << 4);
  if (f.full_crc32) {
    const uint32_t ssize = flags & 15u;
    f.logical_size = (ssize >= 3 && ssize <= 7) ? 512u << ssize : 0;
    f.physical_size = f.logical_size;
    f.name = "full_crc32";
  } else {
    const uint32_t ssize = (flags >> 6) & 15u;
    f.logical_size = ssize == 0 ? 16384u : (ssize == 3 || ssize == 4 || ssize == 6 || ssize == 7) ? 512u << ssize : 0;
    const uint32_t zip_ssize = (flags >> 1) & 15u;
    f.page_compression = flags & (1u << 16);
    if (zip_ssize) {
      f.row_compressed = true;
      f.physical_size = (zip_ssize <= 7 && (512u << zip_ssize) <= f.logical_size) ? 512u << zip_ssize : 0;
      f.name = "compressed";
    } else {
      f.physical_size = f.logical_size;
      f.name = "crc32";
    }
  }
  f.valid = f.logical_size != 0 && f.physical_size != 0;
  return f;
}

PageCheck check_page(const uint8_t *page, const SpaceFormat &fmt, bool any_format) {
  PageCheck r;
  if (fmt.full_crc32) r = check_full_crc32(page, fmt.physical_size);
  else if (fmt.row_compressed) r = check_zip(page, fmt.physical_size);
  else r = check_legacy(page, fmt);
  if (r.verdict != Verdict::bad || !any_format || fmt.row_compressed) return r;
  // A doublewrite copy may come from any tablespace of the instance (same page size): either
  // checksum format, page_compressed, or a ROW_FORMAT=COMPRESSED page in the first zip-size
  // bytes of its slot.
  const uint32_t n = fmt.logical_size;
  PageCheck alt = check_full_crc32(page, n);
  if (alt.verdict != Verdict::bad) return alt;
  SpaceFormat legacy = fmt;
  legacy.full_crc32 = false;
  legacy.page_compression = true;
  alt = check_legacy(page, legacy);
  if (alt.verdict != Verdict::bad) return alt;
  for (uint32_t z = 1024; z <= n && z <= 16384; z <<= 1) {
    if (check_zip(page, z).verdict == Verdict::ok) return {};
  }
  return r;
}

}  // namespace innodb
}  // namespace hb
