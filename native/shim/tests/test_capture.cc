// Capture correctness: writes during and after the copy end up in the backup exactly.
// Origins: tokubackup-lessons.md §4.4 group B, §5.3 rows 1-6, and the write paths of
// issue 2 (§2 "Interposition, complete", §4 "Copy, capture, cut, seal").
// Pause points force the phase: copy_start (capture on, nothing copied yet), chunk (the
// copier holds a chunk's range lock between its read and its write), cut (everything
// copied, capture still on). Nothing changes after the release, so the backup must equal
// the source when the backup is done.
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/sendfile.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <unistd.h>

#include <atomic>
#include <random>
#include <thread>

#include "harness.h"

using namespace hbt;

static int open_or_die(const std::string &p, int flags, mode_t mode = 0644) {
  int fd = open(p.c_str(), flags, mode);
  if (fd < 0) abort_here(__FILE__, __LINE__, "open " + p + ": " + strerror(errno));
  return fd;
}

// §4.4 B test6128: a file written before the backup; more bytes appended with write()
// right after the start, before the copier reached the file.
TEST(append_with_write_right_after_start) {
  write_file(t.path("f"), pattern(10000, 1));
  int fd = open_or_die(t.path("f"), O_WRONLY);
  CHECK_EQ(lseek(fd, 0, SEEK_END), (off_t)10000);
  during(t, "copy_start", [&] { CHECK_EQ(write(fd, "0123456789", 10), (ssize_t)10); });
  close(fd);
  CHECK_EQ(file_size(t.dpath("f")), 10010LL);
  CHECK_TREE_EQ(t.S, t.D);
}

// §4.4 B open_write_close: while the copier is inside the backup (paused on a chunk of one
// file), the app opens another existing file, writes in the middle and at the end, closes.
TEST(open_existing_write_close_during_copy) {
  write_file(t.path("a"), pattern(5000, 2));
  write_file(t.path("b"), pattern(5000, 3));
  during_chunk(t, [&](const std::string &paused) {
    std::string other = paused == t.path("a") ? t.path("b") : t.path("a");
    int fd = open_or_die(other, O_WRONLY);
    CHECK_EQ(pwrite(fd, "MIDDLE", 6, 2000), (ssize_t)6);
    CHECK_EQ(lseek(fd, 0, SEEK_END), (off_t)5000);
    CHECK_EQ(write(fd, "END", 3), (ssize_t)3);
    CHECK_SYS(close(fd));
  });
  CHECK_TREE_EQ(t.S, t.D);
}

// §4.4 B read_and_seek: during the backup create, write, read (moves the offset), lseek
// SEEK_CUR, write: the second write lands where the offset says.
TEST(create_write_read_seek_write) {
  write_file(t.path("other"), "x");
  during(t, "copy_start", [&] {
    int fd = open_or_die(t.path("g"), O_RDWR | O_CREAT | O_EXCL, 0640);
    CHECK_EQ(write(fd, "hello world", 11), (ssize_t)11);
    CHECK_EQ(lseek(fd, 0, SEEK_SET), (off_t)0);
    char buf[8];
    CHECK_EQ(read(fd, buf, 5), (ssize_t)5);
    CHECK_EQ(lseek(fd, 1, SEEK_CUR), (off_t)6);
    CHECK_EQ(write(fd, "XYZ", 3), (ssize_t)3);
    CHECK_SYS(close(fd));
  });
  CHECK_EQ(read_file(t.path("g")), std::string("hello XYZld"));
  CHECK_EQ(read_file(t.dpath("g")), std::string("hello XYZld"));
  CHECK_TREE_EQ(t.S, t.D);
}

// §4.4 B backup_no_fractal_tree: an fd opened and written before the backup; more writes
// through it after the copy, while capture is still on.
TEST(write_after_copy_through_fd_open_before_start) {
  int fd = open_or_die(t.path("log"), O_RDWR | O_CREAT, 0600);
  std::string a = pattern(3000, 4);
  CHECK_EQ(write(fd, a.data(), a.size()), (ssize_t)a.size());
  during(t, "cut", [&] {
    std::string b = pattern(4000, 5);
    CHECK_EQ(write(fd, b.data(), b.size()), (ssize_t)b.size());
    CHECK_EQ(pwrite(fd, "overwrite", 9, 100), (ssize_t)9);
  });
  close(fd);
  CHECK_EQ(file_size(t.dpath("log")), 7000LL);
  CHECK_TREE_EQ(t.S, t.D);
}

// §4.4 B backup_no_fractal_tree_threaded: two threads create and write files during
// capture while the main thread writes through two other fds.
TEST(threads_create_and_write_during_capture) {
  write_file(t.path("x"), pattern(1000, 6));
  write_file(t.path("y"), pattern(1000, 7));
  int fx = open_or_die(t.path("x"), O_WRONLY | O_APPEND);
  int fy = open_or_die(t.path("y"), O_WRONLY);
  during(t, "cut", [&] {
    auto worker = [&](int id) {
      for (int i = 0; i < 5; i++) {
        std::string p = t.path("t" + std::to_string(id) + "_" + std::to_string(i));
        int fd = open(p.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
        if (fd < 0) continue;
        std::string d = pattern(500 + 100 * i, 100 * id + i);
        (void)!write(fd, d.data(), d.size());
        close(fd);
      }
    };
    std::thread t1(worker, 1), t2(worker, 2);
    for (int i = 0; i < 10; i++) {
      CHECK_EQ(write(fx, "append", 6), (ssize_t)6);
      CHECK_EQ(pwrite(fy, "P", 1, i * 90), (ssize_t)1);
    }
    t1.join();
    t2.join();
  });
  close(fx);
  close(fy);
  for (int id = 1; id <= 2; id++)
    for (int i = 0; i < 5; i++) CHECK(exists(t.dpath("t" + std::to_string(id) + "_" + std::to_string(i))));
  CHECK_TREE_EQ(t.S, t.D);
}

// §4.4 B backup_no_ft2: open/write/close of four files interleaved during capture.
TEST(interleaved_open_write_close_of_four_files) {
  for (int i = 0; i < 4; i++) write_file(t.path("f" + std::to_string(i)), pattern(800, 10 + i));
  during(t, "copy_start", [&] {
    int fd[4];
    for (int i = 0; i < 4; i++) fd[i] = open_or_die(t.path("f" + std::to_string(i)), O_RDWR);
    for (int round = 0; round < 3; round++)
      for (int i = 3; i >= 0; i--) {
        std::string d = "r" + std::to_string(round) + "f" + std::to_string(i);
        CHECK_EQ(write(fd[i], d.data(), d.size()), (ssize_t)d.size());
        if (round == 2 && i % 2 == 0) CHECK_SYS(close(fd[i]));
      }
    CHECK_SYS(close(fd[1]));
    CHECK_SYS(close(fd[3]));
  });
  CHECK_TREE_EQ(t.S, t.D);
}

// §4.4 B lseek_write (added upstream only in 2020, after the LFS regression of §1.5):
// after the copy, lseek past the end and write: a sparse extension.
TEST(lseek_write_sparse_after_copy) {
  write_file(t.path("f"), pattern(1000, 20));
  int fd = open_or_die(t.path("f"), O_WRONLY);
  during(t, "cut", [&] {
    CHECK_EQ(lseek(fd, 1 << 20, SEEK_SET), (off_t)(1 << 20));
    CHECK_EQ(write(fd, "tail", 4), (ssize_t)4);
  });
  close(fd);
  CHECK_EQ(file_size(t.dpath("f")), (long long)(1 << 20) + 4);
  CHECK_TREE_EQ(t.S, t.D);
}

// §4.4 B open_lseek_write: a file created after the copy finished, lseek 1 MiB, write.
TEST(create_lseek_write_after_copy) {
  write_file(t.path("old"), "old");
  during(t, "cut", [&] {
    int fd = open_or_die(t.path("new"), O_WRONLY | O_CREAT | O_EXCL, 0600);
    CHECK_EQ(lseek(fd, 1 << 20, SEEK_SET), (off_t)(1 << 20));
    CHECK_EQ(write(fd, "x", 1), (ssize_t)1);
    CHECK_SYS(close(fd));
  });
  CHECK_TREE_EQ(t.S, t.D);
}

// §4.4 B pwrite_during_backup: pwrite at 1 MiB after the copy.
TEST(pwrite_after_copy) {
  write_file(t.path("f"), pattern(2000, 21));
  int fd = open_or_die(t.path("f"), O_RDWR);
  during(t, "cut", [&] {
    CHECK_EQ(pwrite(fd, "PW", 2, 1 << 20), (ssize_t)2);
    CHECK_EQ(pwrite64(fd, "inside", 6, 10), (ssize_t)6);
    // pwrite never moves the offset: this write lands at 0
    CHECK_EQ(write(fd, "AT0", 3), (ssize_t)3);
  });
  close(fd);
  CHECK_TREE_EQ(t.S, t.D);
}

// §4.4 B ftruncate: during capture create, write 12 bytes, ftruncate to 6.
TEST(ftruncate_during_capture) {
  write_file(t.path("keep"), "k");
  during(t, "copy_start", [&] {
    int fd = open_or_die(t.path("f"), O_RDWR | O_CREAT, 0644);
    CHECK_EQ(write(fd, "123456789012", 12), (ssize_t)12);
    CHECK_SYS(ftruncate(fd, 6));
    CHECK_SYS(close(fd));
  });
  CHECK_EQ(read_file(t.dpath("f")), std::string("123456"));
  CHECK_TREE_EQ(t.S, t.D);
}

// Issue 2 §4 "truncation in both directions": ftruncate shrink and grow after the copy.
TEST(ftruncate_shrink_and_grow_after_copy) {
  write_file(t.path("shrink"), pattern(9000, 22));
  write_file(t.path("grow"), pattern(100, 23));
  int fs = open_or_die(t.path("shrink"), O_RDWR), fg = open_or_die(t.path("grow"), O_RDWR);
  during(t, "cut", [&] {
    CHECK_SYS(ftruncate(fs, 10));
    CHECK_SYS(ftruncate64(fg, 70000));
    CHECK_EQ(pwrite(fg, "end", 3, 69997), (ssize_t)3);
  });
  close(fs);
  close(fg);
  CHECK_EQ(file_size(t.dpath("shrink")), 10LL);
  CHECK_TREE_EQ(t.S, t.D);
}

// §4.4 B test6478_read_injection: a failing read() (O_WRONLY fd) must not move the
// offset: write 5, failed read, write 4 -> 9 bytes.
TEST(failed_read_keeps_offset) {
  write_file(t.path("other"), "o");
  during(t, "copy_start", [&] {
    int fd = open_or_die(t.path("f"), O_WRONLY | O_CREAT, 0644);
    CHECK_EQ(write(fd, "12345", 5), (ssize_t)5);
    char buf[4];
    errno = 0;
    CHECK_EQ(read(fd, buf, 4), (ssize_t)-1);
    CHECK_EQ(errno, EBADF);
    CHECK_EQ(write(fd, "6789", 4), (ssize_t)4);
    CHECK_SYS(close(fd));
  });
  CHECK_EQ(file_size(t.dpath("f")), 9LL);
  CHECK_TREE_EQ(t.S, t.D);
}

// §4.4 B test6361: capture stops at the cut. 1 KiB before, 1 MiB while capturing after the
// copy, 1 MiB after the backup is done: the backup holds exactly the first two.
TEST(capture_stops_at_the_cut) {
  std::string expect = t.O + "/expect";
  write_file(t.path("f"), pattern(1024, 24));
  int fd = open_or_die(t.path("f"), O_WRONLY | O_APPEND);
  during(t, "cut", [&] {
    std::string m = pattern(1 << 20, 25);
    CHECK_EQ(write(fd, m.data(), m.size()), (ssize_t)m.size());
    copy_tree(t.S, expect);
  });
  std::string after = pattern(1 << 20, 26);
  CHECK_EQ(write(fd, after.data(), after.size()), (ssize_t)after.size());
  CHECK_SYS(pwrite(fd, "zz", 2, 0));
  write_file(t.path("created_after"), "late");
  close(fd);
  CHECK_EQ(file_size(t.dpath("f")), 1024LL + (1 << 20));
  CHECK_TREE_EQ(expect, t.D);
}

// §5.3 row 1 (worst case; probable cause of Percona-TokuBackup #79, "latest binlog
// missing"): a file open through two fds across the end of backup 1, written, then backup
// 2. Backup 2 must have the file with the write; backup 1 must not change.
TEST(two_fds_across_two_backups) {
  std::string d1 = t.base + "/dst1", d2 = t.base + "/dst2", e1 = t.O + "/e1";
  write_file(t.path("binlog"), "1111111111");
  int fa = open_or_die(t.path("binlog"), O_WRONLY | O_APPEND);
  int fb = open_or_die(t.path("binlog"), O_RDONLY);
  backup(d1, {t.S});
  CHECK_TREE_EQ(t.S, d1);
  copy_tree(d1, e1);
  CHECK_EQ(write(fa, "2222222222", 10), (ssize_t)10);
  backup(d2, {t.S});
  CHECK(exists(d2 + "/binlog"));
  CHECK_TREE_EQ(t.S, d2);
  CHECK_EQ(read_file(d1 + "/binlog"), std::string("1111111111"));
  CHECK_EQ(write(fa, "3333333333", 10), (ssize_t)10);
  CHECK_TREE_EQ(e1, d1);
  CHECK_EQ(read_file(d2 + "/binlog"), std::string("11111111112222222222"));
  close(fa);
  close(fb);
}

// §5.3 row 2: truncate(path) on a file under the source segfaulted the host. Both
// directions, plain and 64-bit names, after the copy.
TEST(truncate_by_path_does_not_crash) {
  write_file(t.path("a"), pattern(5000, 27));
  write_file(t.path("b"), pattern(50, 28));
  write_file(t.O + "/outside", pattern(50, 29));
  during(t, "cut", [&] {
    CHECK_SYS(truncate(t.path("a").c_str(), 3));
    CHECK_SYS(truncate64(t.path("b").c_str(), 4096));
    CHECK_SYS(truncate((t.O + "/outside").c_str(), 1));
    errno = 0;
    CHECK_EQ(truncate(t.path("missing").c_str(), 1), -1);
    CHECK_EQ(errno, ENOENT);
  });
  CHECK_EQ(file_size(t.dpath("a")), 3LL);
  CHECK_EQ(file_size(t.dpath("b")), 4096LL);
  CHECK_TREE_EQ(t.S, t.D);
}

// §5.3 row 3: an O_APPEND append to an already-copied file was mirrored at offset 0.
TEST(append_after_copy) {
  write_file(t.path("f"), "AAAAAAAAAA");
  int fd = open_or_die(t.path("f"), O_WRONLY | O_APPEND);
  during(t, "cut", [&] {
    CHECK_EQ(write(fd, "xyz", 3), (ssize_t)3);
    struct iovec iov[2] = {{(void *)"v", 1}, {(void *)"w", 1}};
    CHECK_EQ(writev(fd, iov, 2), (ssize_t)2);
  });
  close(fd);
  CHECK_EQ(read_file(t.path("f")), std::string("AAAAAAAAAAxyzvw"));
  CHECK_EQ(read_file(t.dpath("f")), std::string("AAAAAAAAAAxyzvw"));
  CHECK_TREE_EQ(t.S, t.D);
}

// Row 3's sibling: on Linux, pwrite/pwritev on an O_APPEND fd ignore the offset and append
// (pwrite(2), BUGS). The bytes must be mirrored where they landed: at the end.
TEST(pwrite_on_append_fd_after_copy) {
  write_file(t.path("f"), "AAAAAAAAAA");
  int fd = open_or_die(t.path("f"), O_WRONLY | O_APPEND);
  during(t, "cut", [&] {
    CHECK_EQ(pwrite(fd, "P", 1, 0), (ssize_t)1);
    struct iovec iov[1] = {{(void *)"Q", 1}};
    CHECK_EQ(pwritev(fd, iov, 1, 2), (ssize_t)1);
  });
  close(fd);
  CHECK_EQ(read_file(t.path("f")), std::string("AAAAAAAAAAPQ"));
  CHECK_EQ(read_file(t.dpath("f")), std::string("AAAAAAAAAAPQ"));
  CHECK_TREE_EQ(t.S, t.D);
}

// O_APPEND is a property of the open file description that fcntl(F_SETFL) can switch on and
// off; the shim keeps it per description, so both kinds of write must land where the kernel put them.
TEST(append_flag_switched_by_fcntl_after_copy) {
  write_file(t.path("f"), "AAAAAAAAAA");
  int fd = open_or_die(t.path("f"), O_WRONLY);
  int dupfd = dup(fd);
  during(t, "cut", [&] {
    CHECK_EQ(write(fd, "x", 1), (ssize_t)1);                       // at offset 0
    CHECK_SYS(fcntl(fd, F_SETFL, O_APPEND));
    CHECK_EQ(write(dupfd, "E", 1), (ssize_t)1);                    // the dup shares it: appends
    CHECK_EQ(pwrite(fd, "F", 1, 3), (ssize_t)1);                   // appends too
    CHECK_SYS(fcntl(dupfd, F_SETFL, 0));
    CHECK_EQ(pwrite(fd, "y", 1, 2), (ssize_t)1);                   // at offset 2 again
  });
  close(fd);
  close(dupfd);
  CHECK_EQ(read_file(t.path("f")), std::string("xAyAAAAAAAEF"));
  CHECK_EQ(read_file(t.dpath("f")), std::string("xAyAAAAAAAEF"));
  CHECK_TREE_EQ(t.S, t.D);
}

// §5.3 row 4: re-opening a copied file with O_TRUNC and writing 2 bytes left the old tail.
TEST(otrunc_reopen) {
  write_file(t.path("f"), pattern(4000, 30));
  during(t, "cut", [&] {
    int fd = open_or_die(t.path("f"), O_WRONLY | O_TRUNC);
    CHECK_EQ(write(fd, "hi", 2), (ssize_t)2);
    CHECK_SYS(close(fd));
  });
  CHECK_EQ(read_file(t.dpath("f")), std::string("hi"));
  CHECK_TREE_EQ(t.S, t.D);
}

// §5.3 row 5: a short write() (2 of 4 bytes) was mirrored whole. The kernel writes only the
// bytes before an unreadable page: buf's last 2 bytes sit in a PROT_NONE page.
TEST(short_write) {
  write_file(t.path("f"), "0123456789");
  long pg = sysconf(_SC_PAGESIZE);
  char *m = (char *)mmap(nullptr, 2 * pg, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  REQUIRE(m != MAP_FAILED);
  REQUIRE_SYS(mprotect(m + pg, pg, PROT_NONE));
  char *buf = m + pg - 2;
  buf[0] = 'S';
  buf[1] = 'W';
  int fd = open_or_die(t.path("f"), O_WRONLY);
  during(t, "cut", [&] {
    CHECK_EQ(write(fd, buf, 4), (ssize_t)2);
    CHECK_EQ(lseek(fd, 0, SEEK_CUR), (off_t)2);
    CHECK_EQ(pwrite(fd, buf, 4, 8), (ssize_t)2);
    errno = 0;
    CHECK_EQ(write(fd, m + pg, 4), (ssize_t)-1);  // nothing readable: EFAULT, nothing written
    CHECK_EQ(errno, EFAULT);
  });
  close(fd);
  munmap(m, 2 * pg);
  CHECK_EQ(read_file(t.path("f")), std::string("SW234567SW"));
  CHECK_EQ(read_file(t.dpath("f")), std::string("SW234567SW"));
  CHECK_TREE_EQ(t.S, t.D);
}

// §5.3 row 6: writev after the copy was missing (not interposed).
TEST(writev_after_copy) {
  write_file(t.path("f"), pattern(100, 31));
  int fd = open_or_die(t.path("f"), O_WRONLY);
  during(t, "cut", [&] {
    CHECK_EQ(lseek(fd, 50, SEEK_SET), (off_t)50);
    struct iovec iov[3] = {{(void *)"one", 3}, {(void *)"", 0}, {(void *)"three", 5}};
    CHECK_EQ(writev(fd, iov, 3), (ssize_t)8);
    CHECK_EQ(lseek(fd, 0, SEEK_CUR), (off_t)58);
    CHECK_EQ(writev(fd, iov, 1), (ssize_t)3);
  });
  close(fd);
  CHECK_TREE_EQ(t.S, t.D);
}

// Issue 2 §2: pwritev, pwritev64, pwritev2 (offset -1 = current offset) after the copy.
TEST(pwritev_family_after_copy) {
  write_file(t.path("f"), pattern(300, 32));
  int fd = open_or_die(t.path("f"), O_RDWR);
  during(t, "cut", [&] {
    struct iovec iov[2] = {{(void *)"AB", 2}, {(void *)"CDE", 3}};
    CHECK_EQ(pwritev(fd, iov, 2, 10), (ssize_t)5);
    CHECK_EQ(pwritev64(fd, iov, 2, 400), (ssize_t)5);
    CHECK_EQ(pwritev2(fd, iov, 1, 20, 0), (ssize_t)2);
    CHECK_EQ(lseek(fd, 100, SEEK_SET), (off_t)100);
    CHECK_EQ(pwritev2(fd, iov, 2, -1, 0), (ssize_t)5);  // at and moving the offset
    CHECK_EQ(lseek(fd, 0, SEEK_CUR), (off_t)105);
  });
  close(fd);
  CHECK_TREE_EQ(t.S, t.D);
}

// Issue 2 §2/§4: fallocate in every mode that changes content or size, posix_fallocate.
TEST(fallocate_modes_after_copy) {
  write_file(t.path("punch"), pattern(64 * 1024, 33));
  write_file(t.path("zero"), pattern(64 * 1024, 34));
  write_file(t.path("grow"), pattern(10, 35));
  write_file(t.path("pgrow"), pattern(10, 36));
  int fp = open_or_die(t.path("punch"), O_RDWR), fz = open_or_die(t.path("zero"), O_RDWR);
  int fg = open_or_die(t.path("grow"), O_RDWR), fq = open_or_die(t.path("pgrow"), O_RDWR);
  during(t, "cut", [&] {
    CHECK_SYS(fallocate(fp, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, 4096, 8192));
    int r = fallocate(fz, FALLOC_FL_ZERO_RANGE, 100, 5000);
    if (r != 0) note(std::string("FALLOC_FL_ZERO_RANGE unsupported here: ") + strerror(errno));
    CHECK_SYS(fallocate(fg, 0, 0, 20000));  // grows the size
    CHECK_SYS(fallocate64(fg, FALLOC_FL_KEEP_SIZE, 0, 90000));  // no visible change
    CHECK_EQ(posix_fallocate(fq, 0, 12345), 0);
  });
  for (int fd : {fp, fz, fg, fq}) close(fd);
  CHECK_EQ(file_size(t.dpath("grow")), 20000LL);
  CHECK_TREE_EQ(t.S, t.D);
}

// Issue 2 §3: dup'd fds share the open file; writes through dup, dup2, dup3, F_DUPFD land
// in the file even after the original fd is closed.
TEST(dup_fds_write_after_copy) {
  write_file(t.path("f"), pattern(100, 37));
  int fd = open_or_die(t.path("f"), O_WRONLY | O_APPEND);
  int spare = open_or_die(t.O + "/spare", O_WRONLY | O_CREAT, 0644);
  during(t, "cut", [&] {
    int a = dup(fd);
    int b = fcntl(fd, F_DUPFD_CLOEXEC, 50);
    CHECK(a >= 0 && b >= 50);
    CHECK_EQ(dup2(fd, spare), spare);  // spare now is the source file
    int c = dup3(fd, 77, O_CLOEXEC);
    CHECK_EQ(c, 77);
    CHECK_SYS(close(fd));
    CHECK_EQ(write(a, "a", 1), (ssize_t)1);
    CHECK_EQ(write(b, "b", 1), (ssize_t)1);
    CHECK_EQ(write(spare, "s", 1), (ssize_t)1);
    CHECK_EQ(write(c, "c", 1), (ssize_t)1);
    close(a);
    close(b);
    close(c);
  });
  close(spare);
  CHECK_EQ(file_size(t.dpath("f")), 104LL);
  CHECK_TREE_EQ(t.S, t.D);
}

// Issue 2 §3: an fd number reused after close (here: closed through syscall(SYS_close), as
// libuv does) refers to the new file, never to the old one.
TEST(fd_reused_after_syscall_close) {
  write_file(t.path("old"), pattern(100, 38));
  write_file(t.O + "/other", "other");
  during(t, "cut", [&] {
    int fd = open_or_die(t.path("old"), O_WRONLY);
    CHECK_EQ(syscall(SYS_close, fd), 0L);
    int fd2 = open_or_die(t.O + "/other", O_WRONLY);  // most likely the same number
    CHECK_EQ(pwrite(fd2, "OUT", 3, 0), (ssize_t)3);
    close(fd2);
    int fd3 = open_or_die(t.path("new"), O_WRONLY | O_CREAT, 0644);
    CHECK_EQ(write(fd3, "new", 3), (ssize_t)3);
    CHECK_EQ(syscall(SYS_close, fd3), 0L);
  });
  CHECK_EQ(read_file(t.dpath("old")), pattern(100, 38));
  CHECK_TREE_EQ(t.S, t.D);
}

// Issue 2 §2: files opened with openat, creat, __open_2 style (O_CREAT through a dirfd).
TEST(openat_and_creat_writes_after_copy) {
  make_dirs(t.path("sub"));
  write_file(t.path("sub/existing"), pattern(100, 39));
  during(t, "cut", [&] {
    int dfd = open_or_die(t.path("sub"), O_RDONLY | O_DIRECTORY);
    int a = openat(dfd, "created", O_WRONLY | O_CREAT | O_EXCL, 0600);
    CHECK_SYS(a);
    CHECK_EQ(write(a, "at", 2), (ssize_t)2);
    close(a);
    int b = openat64(dfd, "existing", O_WRONLY);
    CHECK_SYS(b);
    CHECK_EQ(pwrite(b, "EX", 2, 50), (ssize_t)2);
    close(b);
    int c = creat(t.path("creat").c_str(), 0640);
    CHECK_SYS(c);
    CHECK_EQ(write(c, "creat", 5), (ssize_t)5);
    close(c);
    close(dfd);
  });
  CHECK_TREE_EQ(t.S, t.D);
}

// Issue 2 §2: stdio writes (MariaDB's ib_buffer_pool, *.isl, *.cfg) after the copy.
TEST(stdio_writes_after_copy) {
  write_file(t.path("ib_buffer_pool"), "old old old old");
  write_file(t.path("kept_open.cfg"), "cfg");
  FILE *keep = fopen(t.path("kept_open.cfg").c_str(), "a");
  REQUIRE(keep);
  during(t, "cut", [&] {
    FILE *f = fopen(t.path("ib_buffer_pool").c_str(), "w");
    REQUIRE(f);
    CHECK_EQ(fputs("1,2\n3,4\n", f) >= 0, true);
    CHECK_EQ(fclose(f), 0);
    FILE *g = fopen(t.path("t1.isl").c_str(), "w+");
    REQUIRE(g);
    CHECK_EQ(fwrite("/data/t1.ibd", 1, 12, g), (size_t)12);
    CHECK_EQ(fclose(g), 0);
    CHECK(fputs("+appended", keep) >= 0);
    CHECK_EQ(fflush(keep), 0);
  });
  fclose(keep);
  CHECK_EQ(read_file(t.dpath("ib_buffer_pool")), std::string("1,2\n3,4\n"));
  CHECK_EQ(read_file(t.dpath("kept_open.cfg")), std::string("cfg+appended"));
  CHECK_TREE_EQ(t.S, t.D);
}

// Issue 2 §2: copy_file_range and sendfile into a file under the source after the copy.
TEST(copy_file_range_and_sendfile_into_source_after_copy) {
  write_file(t.O + "/input", pattern(10000, 40));
  write_file(t.path("cfr"), pattern(100, 41));
  write_file(t.path("sf"), pattern(100, 42));
  int in = open_or_die(t.O + "/input", O_RDONLY);
  int a = open_or_die(t.path("cfr"), O_WRONLY), b = open_or_die(t.path("sf"), O_WRONLY);
  during(t, "cut", [&] {
    off64_t ioff = 0, ooff = 50;
    CHECK_EQ(copy_file_range(in, &ioff, a, &ooff, 3000, 0), (ssize_t)3000);
    CHECK_EQ(lseek(a, 5000, SEEK_SET), (off_t)5000);
    CHECK_EQ(copy_file_range(in, &ioff, a, nullptr, 100, 0), (ssize_t)100);  // at a's offset
    off_t soff = 200;
    CHECK_EQ(lseek(b, 20, SEEK_SET), (off_t)20);
    CHECK_EQ(sendfile(b, in, &soff, 700), (ssize_t)700);
    off64_t ioff2 = 0;
    CHECK_EQ(syscall(SYS_copy_file_range, in, &ioff2, b, nullptr, 10, 0), 10L);  // libuv's way
  });
  close(in);
  close(a);
  close(b);
  CHECK_TREE_EQ(t.S, t.D);
}

// Issue 2 §2: a shared writable mapping of a file under a source during a backup cannot be
// mirrored: the backup fails with mmap_write naming the file; no manifest. The program's
// own mapping and writes keep working. A private or read-only mapping is fine (next test).
TEST(shared_writable_mmap_fails_backup) {
  write_file(t.path("mapped"), pattern(8192, 43));
  arm("cut");
  start_ok(t.D, {t.S});
  wait_paused("cut");
  int fd = open_or_die(t.path("mapped"), O_RDWR);
  void *p = mmap(nullptr, 8192, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
  CHECK(p != MAP_FAILED);
  if (p != MAP_FAILED) {
    memcpy(p, "MAPPED", 6);
    CHECK_EQ(msync(p, 8192, MS_SYNC), 0);
    munmap(p, 8192);
  }
  close(fd);
  release("cut");
  Json s = wait_terminal();
  CHECK_EQ(s["state"].str(), std::string("failed"));
  CHECK_EQ(s["error"]["code"].str(), std::string("mmap_write"));
  CHECK_MSG(s["error"]["message"].str().find("mapped") != std::string::npos ||
                s["error"]["path"].str().find("mapped") != std::string::npos,
            "the error names the file: " + s["error"].dump());
  CHECK(!exists(manifest_path(t.D)));
  CHECK_EQ(read_file(t.path("mapped")).substr(0, 6), std::string("MAPPED"));
}

TEST(private_or_readonly_mmap_does_not_fail_backup) {
  write_file(t.path("mapped"), pattern(8192, 44));
  write_file(t.O + "/outside", pattern(8192, 45));
  during(t, "cut", [&] {
    int fd = open_or_die(t.path("mapped"), O_RDWR);
    void *p = mmap(nullptr, 8192, PROT_READ | PROT_WRITE, MAP_PRIVATE, fd, 0);
    CHECK(p != MAP_FAILED);
    if (p != MAP_FAILED) {
      memcpy(p, "PRIVATE", 7);
      munmap(p, 8192);
    }
    void *q = mmap(nullptr, 8192, PROT_READ, MAP_SHARED, fd, 0);
    CHECK(q != MAP_FAILED);
    if (q != MAP_FAILED) munmap(q, 8192);
    close(fd);
    int fo = open_or_die(t.O + "/outside", O_RDWR);
    void *r = mmap(nullptr, 8192, PROT_READ | PROT_WRITE, MAP_SHARED, fo, 0);
    CHECK(r != MAP_FAILED);
    if (r != MAP_FAILED) {
      memcpy(r, "OUT", 3);
      munmap(r, 8192);
    }
    close(fo);
  });
  CHECK_TREE_EQ(t.S, t.D);
}

// Issue 2 §4 "Modes preserved" and DESIGN invariant 5: modes of files and directories,
// also of files created during the backup.
TEST(modes_preserved) {
  write_file(t.path("secret"), "s", 0600);
  write_file(t.path("script"), "#!/bin/sh\n", 0755);
  write_file(t.path("group"), "g", 0640);
  make_dirs(t.path("private"));
  chmod(t.path("private").c_str(), 0700);
  write_file(t.path("private/x"), "x", 0400);
  during(t, "cut", [&] {
    int fd = open_or_die(t.path("created"), O_WRONLY | O_CREAT, 0604);
    close(fd);
    CHECK_SYS(mkdir(t.path("newdir").c_str(), 0711));
  });
  CHECK_TREE_EQ(t.S, t.D);
}

int main(int argc, char **argv) { return hbt::main(argc, argv); }
