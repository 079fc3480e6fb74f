// The byte-exact reference at the cut (HOTBACKUP_TEST_REFERENCE, src/reference.h): the shim
// copies the sources while the cut holds the barrier, and the sealed backup must equal it.
// These tests show it does under concurrent writes of every kind, that it is able to tell a
// torn image (a write the shim never saw) from a good one, and they reproduce the stdio defect
// it found (a flush whose bytes were written before the cut but mirrored after it; a buffer
// the server changed while its write ran, mirrored as it was after the call).
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <atomic>
#include <random>
#include <thread>
#include <vector>

#include "harness.h"

using namespace hbt;

namespace {
// The reference for the next backup of this test, set in this process's environment (the
// shim reads it when a backup starts).
std::string use_reference(Ctx &t, const std::string &name = "ref") {
  std::string ref = t.base + "/" + name;
  setenv("HOTBACKUP_TEST_REFERENCE", ref.c_str(), 1);
  return ref;
}
struct ReferenceOff {
  ~ReferenceOff() { unsetenv("HOTBACKUP_TEST_REFERENCE"); }
};

// Takes n small backups of t.S one after the other, each with its reference; returns how many
// differ from it (*first: the first difference). A differing pair is kept for diagnosis.
int backups_differing_from_reference(Ctx &t, int n, std::string *first) {
  int differing = 0;
  for (int i = 0; i < n && !current_test_failed(); i++) {
    std::string dest = t.base + "/b" + std::to_string(i);
    std::string ref = use_reference(t, "ref" + std::to_string(i));
    start_ok(dest, {t.S});
    wait_done();
    std::string diff = tree_equal(dest, ref);
    if (diff.empty()) {
      remove_tree(dest);
      remove_tree(ref);
    } else if (differing++ == 0) {
      *first = "backup " + std::to_string(i) + ": " + diff;
    }
  }
  return differing;
}
}  // namespace

// Writers of every kind run across the whole backup, the cut included: the backup equals the
// reference copied at the cut, byte for byte (while the sources have moved on since).
TEST(backup_equals_the_reference_under_concurrent_writes) {
  ReferenceOff off;
  for (int i = 0; i < 8; i++) write_file(t.path("f" + std::to_string(i)), pattern(300000, i));
  make_dirs(t.path("d"));
  std::string ref = use_reference(t);
  std::atomic<bool> stop{false};
  std::vector<std::thread> writers;
  for (int w = 0; w < 3; w++)
    writers.emplace_back([&, w] {
      std::mt19937 rng(w + 1);
      std::string buf = pattern(16384, w + 7);
      for (long n = 0; !stop; n++) {
        std::string f = t.path("f" + std::to_string(rng() % 8));
        int fd = open(f.c_str(), O_WRONLY);
        if (fd < 0) continue;
        switch (rng() % 6) {
          case 0: case 1: pwrite(fd, buf.data(), 1 + rng() % buf.size(), rng() % 400000); break;
          case 2: lseek(fd, 0, SEEK_END); write(fd, buf.data(), 512); break;
          case 3: ftruncate(fd, rng() % 400000); break;
          case 4: fallocate(fd, 0, rng() % 300000, 8192); break;
          default: {
            std::string tmp = t.path("d/tmp" + std::to_string(w));
            write_file(tmp, pattern(4096, (unsigned)n));
            rename(tmp.c_str(), t.path("d/r" + std::to_string(w) + "_" + std::to_string(n % 5)).c_str());
          }
        }
        close(fd);
      }
    });
  start_ok(t.D, {t.S}, 8 << 20);  // slow enough that the writers overlap the copy
  Json st = wait_done();
  stop = true;
  for (auto &th : writers) th.join();
  CHECK(st["bytes_mirrored"].num() > 0);
  CHECK_EQ(tree_equal(t.D, ref), std::string());
}

// A write the shim does not see (a raw system call) lands after its file was copied and before
// the cut: the image is torn, and the reference comparison says where.
TEST(reference_catches_a_write_the_shim_never_saw) {
  ReferenceOff off;
  write_file(t.path("data"), pattern(65536, 3));
  std::string ref = use_reference(t);
  int fd = open(t.path("data").c_str(), O_WRONLY);
  REQUIRE_SYS(fd);
  during(t, "cut", [&] {
    const char torn[] = "TORN";
    // All six arguments: the shim's variadic syscall() reads six, as the kernel interface does.
    CHECK_EQ(syscall(SYS_pwrite64, fd, torn, 4L, 4096L, 0L, 0L), 4L);
  });
  close(fd);
  std::string diff = tree_equal(t.D, ref);
  CHECK_MSG(diff.find("data") != std::string::npos, "the comparison must name the torn file, said: " + diff);
}

// Reproducer: fflush writes the stream's buffer with libc's own write, which no wrapper sees,
// and mirrored it afterwards under a CaptureScope of its own. A cut between the two left the
// flushed bytes out of the backup although they were in the file before the cut. Many small
// backups cut while a thread flushes all the time; each must equal its reference.
TEST(stdio_flush_and_its_mirror_are_one_step_for_the_cut) {
  ReferenceOff off;
  write_file(t.path("steady"), pattern(8192, 5));
  std::atomic<bool> stop{false};
  std::thread flusher([&] {
    FILE *f = fopen(t.path("stream").c_str(), "w");
    if (!f) return;
    for (long n = 0; !stop; n++) {
      if (n % 64 == 0) rewind(f);  // the file stays small: each flush's resync copies all of it
      fprintf(f, "line %ld\n", n);
      fflush(f);
    }
    fclose(f);
  });
  std::string first;
  int torn = backups_differing_from_reference(t, 40, &first);
  stop = true;
  flusher.join();
  CHECK_MSG(torn == 0, std::to_string(torn) + " of 40 backups differ from their reference; first: " + first);
}

// Reproducer of the torn redo log of 2026-12-04: InnoDB keeps appending to the log block it is
// writing after it released the log latch, so the buffer changes while pwrite runs. The shim
// mirrored the caller's buffer after the call, i.e. bytes the kernel may never have written; a
// cut before the block's next write kept them. One thread rewrites a block from a buffer that
// another thread scribbles on without pause; every backup must equal its reference.
TEST(a_buffer_changed_while_its_write_runs_is_mirrored_as_written) {
#if defined(__SANITIZE_THREAD__)
  skip("races on a buffer on purpose, as InnoDB does: not a TSan test");
#endif
  ReferenceOff off;
  write_file(t.path("log"), pattern(65536, 9));
  alignas(4096) static char block[4096];
  std::atomic<bool> stop{false};
  std::thread scribbler([&] {
    for (unsigned n = 0; !stop; n++) {
      volatile char *b = block;
      for (size_t i = 0; i < sizeof block; i += 64) b[i] = static_cast<char>(n + i);
    }
  });
  int fd = open(t.path("log").c_str(), O_WRONLY);
  REQUIRE_SYS(fd);
  std::thread writer([&] {
    while (!stop) pwrite(fd, block, sizeof block, 8192);
  });
  std::string first;
  int torn = backups_differing_from_reference(t, 40, &first);
  stop = true;
  writer.join();
  scribbler.join();
  close(fd);
  CHECK_MSG(torn == 0, std::to_string(torn) + " of 40 backups differ from their reference; first: " + first);
}

int main(int argc, char **argv) { return hbt::main(argc, argv); }
