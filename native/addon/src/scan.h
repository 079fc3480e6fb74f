// The verify engine: reads a list of files on a small pool of threads, computes each file's
// CRC32C (segments of one file run in parallel and are combined) and, for InnoDB tablespaces,
// checks every page from the same buffers, so each byte is read once. Segments already in the
// page cache are checksummed in place through a mapping (mapped_read.h). Plain C++, no N-API:
// addon.cc runs it on a worker thread and turns the results into JavaScript values.
#pragma once
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "innodb.h"

namespace hb {
namespace scan {

struct BadPage {
  uint64_t page = 0;
  uint64_t offset = 0;
  std::string reason;
};

constexpr size_t kMaxBadPagesPerFile = 1000;

struct PageReport {
  std::string error;  // the tablespace could not be checked at all (e.g. unknown FSP flags)
  innodb::SpaceFormat format;
  uint64_t pages = 0;          // full pages checked
  uint64_t zero_pages = 0;     // all-NUL pages (valid)
  uint64_t skipped_pages = 0;  // pages the format does not let us check here (page_compressed, encrypted)
  std::string skip_reason;     // the first skip reason
  uint64_t bad_count = 0;
  std::vector<BadPage> bad;    // the first kMaxBadPagesPerFile bad pages, in page order
  uint64_t trailing_bytes = 0; // bytes after the last full page
};

struct FileResult {
  // In:
  std::string path;
  bool pages = false;         // check InnoDB pages
  bool system_space = false;  // ibdata*: pages in the doublewrite area may be copies in either format
  // Out:
  uint64_t size = 0;          // bytes read
  uint32_t mode = 0;          // permission bits (st_mode & 07777) of the file opened
  uint32_t crc32c = 0;
  int err = 0;                // errno of the first failure, 0 when the file was read completely
  std::string err_message;
  PageReport pages_report;
};

// Readers by default: one per CPU, and at least kMinReaders whatever the CPU count, because a
// cold backup is read faster with more requests in flight (2 GiB from a cold cache on 2 CPUs:
// 1.82 s with 6 readers, 1.87 with 4, 2.01 with 2) while a warm one, bound by memory bandwidth,
// loses nothing measurable to two extra threads.
constexpr unsigned kMinReaders = 4;
unsigned default_threads();

struct Options {
  unsigned threads = default_threads();
  uint64_t segment_bytes = 32ull << 20;  // rounded up to a multiple of 64 KiB
  size_t buffer_bytes = 256u << 10;      // per thread (fits in L2 with the CRC reading it back), rounded up to a multiple of 64 KiB
  // Checksum segments already in the page cache through a mapping instead of read()
  // (mapped_read.h); segments with page checks are always read.
  bool map_cached = true;
  // Test hook: called with the file's path once a segment is mapped, before it is read.
  std::function<void(const std::string &path)> test_before_mapped_read;
};

// Called from the pool's threads (never concurrently with itself), at most every ~50 ms and once
// at the end: bytes read so far, files finished so far.
using Progress = std::function<void(uint64_t bytes, uint64_t files)>;

void run(std::vector<FileResult> &files, const Options &opts, const Progress &progress);

}  // namespace scan
}  // namespace hb
