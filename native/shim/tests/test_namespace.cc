// Namespace operations during a backup: create, rename, unlink, mkdir, rmdir, links,
// symlinks, into and out of the tree.
// Origins: tokubackup-lessons.md §4.4 group C, §5.3 rows 7-14, §2.5; issue 2 §3 and §4.
#include <dirent.h>
#include <fcntl.h>
#include <stdio.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <thread>

#include "harness.h"

using namespace hbt;

static int open_or_die(const std::string &p, int flags, mode_t mode = 0644) {
  int fd = open(p.c_str(), flags, mode);
  if (fd < 0) abort_here(__FILE__, __LINE__, "open " + p + ": " + strerror(errno));
  return fd;
}

// §4.4 C rename (upstream its verify() returned 0: only crashes were checked; here with a
// real oracle): four files renamed before the start, after the start before the copy,
// after the copy while capturing, and after the end. The backup has the names at the cut.
TEST(rename_in_four_phases) {
  std::string expect = t.O + "/expect";
  for (int i = 1; i <= 4; i++) write_file(t.path("r" + std::to_string(i)), pattern(3000, i));
  CHECK_SYS(rename(t.path("r1").c_str(), t.path("n1").c_str()));
  arm("copy_start");
  arm("cut");
  start_ok(t.D, {t.S});
  wait_paused("copy_start");
  CHECK_SYS(rename(t.path("r2").c_str(), t.path("n2").c_str()));
  release("copy_start");
  wait_paused("cut");
  CHECK_SYS(rename(t.path("r3").c_str(), t.path("n3").c_str()));
  copy_tree(t.S, expect);
  release("cut");
  wait_done();
  CHECK_SYS(rename(t.path("r4").c_str(), t.path("n4").c_str()));
  CHECK_TREE_EQ(expect, t.D);
  CHECK(exists(t.dpath("r4")) && !exists(t.dpath("n4")));
  CHECK(!exists(t.dpath("r3")) && exists(t.dpath("n3")));
}

// §4.4 C capture_only_rename: after the copy, create then rename: new name only.
TEST(create_then_rename_after_copy) {
  write_file(t.path("keep"), "k");
  during(t, "cut", [&] {
    write_file(t.path("tmpname"), pattern(2000, 5));
    CHECK_SYS(rename(t.path("tmpname").c_str(), t.path("final").c_str()));
  });
  CHECK(!exists(t.dpath("tmpname")));
  CHECK_TREE_EQ(t.S, t.D);
}

// §4.4 C unlink (verification disabled upstream): four phases as rename_in_four_phases.
TEST(unlink_in_four_phases) {
  std::string expect = t.O + "/expect";
  for (int i = 1; i <= 4; i++) write_file(t.path("u" + std::to_string(i)), pattern(3000, 10 + i));
  CHECK_SYS(unlink(t.path("u1").c_str()));
  arm("copy_start");
  arm("cut");
  start_ok(t.D, {t.S});
  wait_paused("copy_start");
  CHECK_SYS(unlink(t.path("u2").c_str()));
  release("copy_start");
  wait_paused("cut");
  CHECK_SYS(unlink(t.path("u3").c_str()));
  copy_tree(t.S, expect);
  release("cut");
  wait_done();
  CHECK_SYS(unlink(t.path("u4").c_str()));
  CHECK_TREE_EQ(expect, t.D);
}

// §4.4 C unlink_during_copy_test6515: two files held open, unlinked right after the start;
// later writes through the open fds must not bring them back.
TEST(unlink_open_files_during_copy) {
  write_file(t.path("keep"), "k");
  write_file(t.path("a"), pattern(1 << 20, 20));
  write_file(t.path("b"), pattern(1 << 20, 21));
  int fa = open_or_die(t.path("a"), O_RDWR), fb = open_or_die(t.path("b"), O_RDWR);
  during(t, "copy_start", [&] {
    CHECK_SYS(unlink(t.path("a").c_str()));
    CHECK_SYS(unlink(t.path("b").c_str()));
    CHECK_EQ(pwrite(fa, "ghost", 5, 0), (ssize_t)5);
    CHECK_EQ(write(fb, "ghost", 5), (ssize_t)5);
  });
  struct stat st;
  CHECK(fstat(fa, &st) == 0 && st.st_size == (1 << 20));
  close(fa);
  close(fb);
  CHECK(!exists(t.dpath("a")) && !exists(t.dpath("b")));
  CHECK_TREE_EQ(t.S, t.D);
}

// §4.4 C unlink_during_copy_test6515b: the same with the files closed first.
TEST(unlink_closed_files_during_copy) {
  write_file(t.path("keep"), "k");
  write_file(t.path("a"), pattern(1 << 20, 22));
  write_file(t.path("b"), pattern(1 << 20, 23));
  during(t, "copy_start", [&] {
    CHECK_SYS(unlink(t.path("a").c_str()));
    CHECK_SYS(unlink(t.path("b").c_str()));
  });
  CHECK_TREE_EQ(t.S, t.D);
}

// §4.4 C unlink_during_copy_test6515c: files fully copied, then unlinked while capturing:
// the copies go; the app's fds still see the full size and can still write.
TEST(unlink_after_copy_app_fds_keep_size) {
  write_file(t.path("keep"), "k");
  write_file(t.path("a"), pattern(100000, 24));
  int fa = open_or_die(t.path("a"), O_RDWR);
  during(t, "cut", [&] {
    CHECK_SYS(unlink(t.path("a").c_str()));
    struct stat st;
    CHECK(fstat(fa, &st) == 0 && st.st_size == 100000);
    CHECK_EQ(pwrite(fa, "still", 5, 100000), (ssize_t)5);
    CHECK(fstat(fa, &st) == 0 && st.st_size == 100005);
  });
  close(fa);
  CHECK(!exists(t.dpath("a")));
  CHECK_TREE_EQ(t.S, t.D);
}

// §4.4 C unlink_copy_race: the copier is inside a file (chunk read, not written) when the
// app unlinks it: the file is absent from the backup. The unlink runs on another thread
// (it may wait for the chunk's range lock).
TEST(unlink_during_chunk) {
  write_file(t.path("victim"), pattern(200000, 25));
  during_chunk(t, [&](const std::string &paused) {
    CHECK_EQ(paused, t.path("victim"));
    std::atomic<int> r{1};
    arm("cut");  // the unlink completes before the cut, whenever it runs
    std::thread th([&] { r = unlink(t.path("victim").c_str()); });
    // the unlink may or may not wait for the chunk; release lets it finish either way
    release("chunk");
    th.join();
    wait_paused("cut");
    release("cut");
    CHECK_EQ(r.load(), 0);
  });
  CHECK(!exists(t.dpath("victim")));
  CHECK_TREE_EQ(t.S, t.D);
}

// §4.4 C failed_rename_kills_backup_6703 / failed_unlink_kills_backup_6704: failing
// namespace calls keep their result and errno and do not fail the backup.
TEST(failed_namespace_calls_keep_errno_and_backup) {
  write_file(t.path("f"), "f");
  make_dirs(t.path("full"));
  write_file(t.path("full/x"), "x");
  during(t, "cut", [&] {
    errno = 0;
    CHECK_EQ(rename(t.path("nope").c_str(), t.path("nope2").c_str()), -1);
    CHECK_EQ(errno, ENOENT);
    errno = 0;
    CHECK_EQ(unlink(t.path("nope").c_str()), -1);
    CHECK_EQ(errno, ENOENT);
    errno = 0;
    CHECK_EQ(mkdir(t.path("full").c_str(), 0755), -1);
    CHECK_EQ(errno, EEXIST);
    errno = 0;
    CHECK_EQ(rmdir(t.path("full").c_str()), -1);
    CHECK_EQ(errno, ENOTEMPTY);
    errno = 0;
    CHECK_EQ(unlink(t.path("full").c_str()), -1);
    CHECK_EQ(errno, EISDIR);
    errno = 0;
    CHECK_EQ(link(t.path("f").c_str(), t.path("full/x").c_str()), -1);
    CHECK_EQ(errno, EEXIST);
    errno = 0;
    CHECK_EQ(symlink("t", t.path("f").c_str()), -1);
    CHECK_EQ(errno, EEXIST);
    errno = 0;
    CHECK_EQ(open(t.path("f").c_str(), O_WRONLY | O_CREAT | O_EXCL, 0644), -1);
    CHECK_EQ(errno, EEXIST);
  });
  CHECK_TREE_EQ(t.S, t.D);
}

// §4.4 C notinsource_6570 / 6570b (its rename part was disabled upstream, "broken"): in a
// directory that is not backed up, open/write/close/unlink, open/unlink/write/close,
// open/write/rename/close, lseek/read/pread/pwrite/ftruncate, mkdir/rmdir during the
// backup: no error, nothing of it in the backup, the outside files exactly as written.
TEST(ops_outside_tree_not_captured) {
  write_file(t.path("in"), pattern(1000, 26));
  std::string o = t.O;
  during(t, "cut", [&] {
    int a = open_or_die(o + "/a", O_RDWR | O_CREAT, 0644);
    CHECK_EQ(write(a, "aaaa", 4), (ssize_t)4);
    close(a);
    CHECK_SYS(unlink((o + "/a").c_str()));
    int b = open_or_die(o + "/b", O_RDWR | O_CREAT, 0644);
    CHECK_SYS(unlink((o + "/b").c_str()));
    CHECK_EQ(write(b, "bbbb", 4), (ssize_t)4);
    close(b);
    int c = open_or_die(o + "/c", O_RDWR | O_CREAT, 0644);
    CHECK_EQ(write(c, "0123456789", 10), (ssize_t)10);
    CHECK_SYS(rename((o + "/c").c_str(), (o + "/c2").c_str()));
    CHECK_EQ(lseek(c, 2, SEEK_SET), (off_t)2);
    char buf[4];
    CHECK_EQ(read(c, buf, 3), (ssize_t)3);
    CHECK_EQ(pread(c, buf, 2, 8), (ssize_t)2);
    CHECK_EQ(pwrite(c, "PW", 2, 0), (ssize_t)2);
    CHECK_EQ(write(c, "W", 1), (ssize_t)1);
    CHECK_SYS(ftruncate(c, 9));
    close(c);
    CHECK_SYS(mkdir((o + "/d").c_str(), 0755));
    CHECK_SYS(mkdir((o + "/d/e").c_str(), 0755));
    CHECK_SYS(rmdir((o + "/d/e").c_str()));
  });
  CHECK_EQ(read_file(o + "/c2"), std::string("PW234W678"));
  CHECK(is_dir(o + "/d") && !exists(o + "/d/e"));
  CHECK_TREE_EQ(t.S, t.D);
}

// §4.4 C test6483_mkdir_injection (the scenario; its injection is in test_faults):
// mkdir dir0 then dir0/dir1 during capture before the copy, a file in the inner one.
TEST(mkdir_nested_during_capture) {
  write_file(t.path("f"), "f");
  during(t, "copy_start", [&] {
    CHECK_SYS(mkdir(t.path("dir0").c_str(), 0755));
    CHECK_SYS(mkdir(t.path("dir0/dir1").c_str(), 0750));
    write_file(t.path("dir0/dir1/file"), "deep");
  });
  CHECK_TREE_EQ(t.S, t.D);
}

// §5.3 row 7: mkdir of an empty dir after the copier passed was missing (only parents of
// files were created).
TEST(mkdir_empty_after_copy) {
  make_dirs(t.path("a"));
  write_file(t.path("a/f"), "f");
  during(t, "cut", [&] {
    CHECK_SYS(mkdir(t.path("empty").c_str(), 0755));
    CHECK_SYS(mkdir(t.path("a/empty2").c_str(), 0700));
    CHECK_SYS(mkdirat(AT_FDCWD, t.path("a/empty3").c_str(), 0755));
  });
  CHECK(is_dir(t.dpath("empty")) && is_dir(t.dpath("a/empty2")) && is_dir(t.dpath("a/empty3")));
  CHECK_TREE_EQ(t.S, t.D);
}

// §5.3 row 8: rmdir was not interposed: a dropped database's dir remained in the backup.
TEST(rmdir_after_copy) {
  make_dirs(t.path("db1"));
  make_dirs(t.path("db2/sub"));
  write_file(t.path("db2/t.frm"), "frm");
  write_file(t.path("keep"), "k");
  during(t, "cut", [&] {
    CHECK_SYS(rmdir(t.path("db1").c_str()));
    CHECK_SYS(unlink(t.path("db2/t.frm").c_str()));
    CHECK_SYS(rmdir(t.path("db2/sub").c_str()));
    CHECK_SYS(unlinkat(AT_FDCWD, t.path("db2").c_str(), AT_REMOVEDIR));
  });
  CHECK(!exists(t.dpath("db1")) && !exists(t.dpath("db2")));
  CHECK_TREE_EQ(t.S, t.D);
}

// §5.3 row 9: a file renamed from outside the tree into it was missing.
TEST(rename_into_tree) {
  write_file(t.path("keep"), "k");
  write_file(t.O + "/incoming", pattern(70000, 27));
  int fd = open_or_die(t.O + "/incoming", O_RDWR);
  during(t, "cut", [&] {
    CHECK_SYS(rename((t.O + "/incoming").c_str(), t.path("arrived").c_str()));
    CHECK_EQ(pwrite(fd, "after-move", 10, 5), (ssize_t)10);  // the fd follows the file
  });
  close(fd);
  CHECK(exists(t.dpath("arrived")));
  CHECK_TREE_EQ(t.S, t.D);
}

// A directory with content renamed from outside into the tree after the copy.
TEST(rename_dir_into_tree) {
  write_file(t.path("keep"), "k");
  make_dirs(t.O + "/newdb/sub");
  write_file(t.O + "/newdb/t1.ibd", pattern(50000, 28));
  write_file(t.O + "/newdb/sub/x", "x");
  during(t, "cut", [&] { CHECK_SYS(rename((t.O + "/newdb").c_str(), t.path("newdb").c_str())); });
  CHECK_TREE_EQ(t.S, t.D);
}

// §5.3 row 10: a file renamed from inside the tree to outside left a stale copy.
TEST(rename_out_of_tree) {
  write_file(t.path("keep"), "k");
  write_file(t.path("leaving"), pattern(5000, 29));
  make_dirs(t.path("dir/sub"));
  write_file(t.path("dir/sub/y"), "y");
  int fd = open_or_die(t.path("leaving"), O_RDWR);
  during(t, "cut", [&] {
    CHECK_SYS(rename(t.path("leaving").c_str(), (t.O + "/left").c_str()));
    CHECK_SYS(rename(t.path("dir").c_str(), (t.O + "/dir").c_str()));
    CHECK_EQ(pwrite(fd, "gone", 4, 0), (ssize_t)4);  // must not reach the backup
  });
  close(fd);
  CHECK(!exists(t.dpath("leaving")) && !exists(t.dpath("dir")));
  CHECK_TREE_EQ(t.S, t.D);
}

// §5.3 row 11: rename a/s1/s2/x -> b/x with b already being copied and a/s1/s2 not yet:
// b/x was missing and the backup reported success. The copier is paused on its first
// file; the other file is moved from its (not yet copied) deep directory into the paused
// file's directory, whichever of the two the copier picked first.
TEST(rename_from_unlisted_dir) {
  make_dirs(t.path("a/s1/s2"));
  make_dirs(t.path("b"));
  write_file(t.path("a/s1/s2/x"), pattern(3000, 30));
  write_file(t.path("b/y"), pattern(3000, 31));
  during_chunk(t, [&](const std::string &paused) {
    if (paused == t.path("b/y")) {
      CHECK_SYS(rename(t.path("a/s1/s2/x").c_str(), t.path("b/x").c_str()));
    } else {
      CHECK_EQ(paused, t.path("a/s1/s2/x"));
      CHECK_SYS(rename(t.path("b/y").c_str(), t.path("a/s1/s2/y").c_str()));
    }
  });
  CHECK_TREE_EQ(t.S, t.D);
}

// §5.3 row 12: a directory renamed after the copy: the backup kept the old name.
TEST(rename_dir_after_copy) {
  make_dirs(t.path("db_old/inner"));
  write_file(t.path("db_old/t.ibd"), pattern(20000, 32));
  write_file(t.path("db_old/inner/z"), "z");
  int fd = open_or_die(t.path("db_old/t.ibd"), O_RDWR);
  during(t, "cut", [&] {
    CHECK_SYS(rename(t.path("db_old").c_str(), t.path("db_new").c_str()));
    CHECK_EQ(pwrite(fd, "moved", 5, 100), (ssize_t)5);  // lands in db_new/t.ibd
    write_file(t.path("db_new/created"), "c");
  });
  close(fd);
  CHECK(!exists(t.dpath("db_old")));
  CHECK_TREE_EQ(t.S, t.D);
}

// A directory renamed before the copier reached it (files in it not copied yet).
TEST(rename_dir_before_copy) {
  make_dirs(t.path("d1/d2"));
  write_file(t.path("d1/d2/f"), pattern(9000, 33));
  write_file(t.path("d1/g"), "g");
  during(t, "copy_start", [&] { CHECK_SYS(rename(t.path("d1").c_str(), t.path("e1").c_str())); });
  CHECK_TREE_EQ(t.S, t.D);
}

// §5.3 row 13: the backed-up source is .../src; a sibling .../src2 shares its prefix but is
// outside (containment respects the '/' boundary). Upstream the rename made the backup
// fail ENOENT. Nothing of src2 may reach the backup, nothing may be written next to it.
TEST(sibling_prefix_dir_is_outside) {
  std::string src2 = t.S + "2";
  make_dirs(src2);
  write_file(t.path("f"), pattern(1000, 34));
  write_file(t.path("g"), "g");
  write_file(src2 + "/pre", "pre");
  int fd = open_or_die(src2 + "/pre", O_RDWR);
  during(t, "cut", [&] {
    CHECK_SYS(rename(t.path("f").c_str(), (src2 + "/f").c_str()));
    CHECK_EQ(pwrite(fd, "PRE", 3, 0), (ssize_t)3);
    write_file(src2 + "/new", "new");
    CHECK_SYS(mkdir((src2 + "/dir").c_str(), 0755));
    CHECK_SYS(rename((src2 + "/new").c_str(), (src2 + "/dir/new").c_str()));
  });
  close(fd);
  CHECK_EQ(read_file(src2 + "/pre"), std::string("PRE"));
  CHECK(exists(src2 + "/f") && exists(src2 + "/dir/new"));
  CHECK(!exists(t.D + "2"));
  CHECK_TREE_EQ(t.S, t.D);
}

// §5.3 row 14: a symlink was copied as a regular file with its target's content (mode
// 0777 - umask). Symlinks (relative, absolute, to a dir, dangling) are recreated as
// symlinks, never followed; also one created during the backup.
TEST(symlink_recreated_as_symlink) {
  make_dirs(t.path("realdir"));
  write_file(t.path("realdir/inner"), "inner");
  write_file(t.path("target"), "target content");
  write_file(t.O + "/outside_target", "outside");
  CHECK_SYS(symlink("target", t.path("rel").c_str()));
  CHECK_SYS(symlink((t.O + "/outside_target").c_str(), t.path("abs").c_str()));
  CHECK_SYS(symlink("realdir", t.path("dirlink").c_str()));
  CHECK_SYS(symlink("nowhere", t.path("dangling").c_str()));
  during(t, "cut", [&] {
    CHECK_SYS(symlink("target", t.path("made_later").c_str()));
    CHECK_SYS(symlinkat("../target", AT_FDCWD, t.path("realdir/up").c_str()));
  });
  struct stat st;
  CHECK(lstat(t.dpath("abs").c_str(), &st) == 0 && S_ISLNK(st.st_mode));
  CHECK(lstat(t.dpath("dirlink").c_str(), &st) == 0 && S_ISLNK(st.st_mode));
  CHECK(lstat(t.dpath("made_later").c_str(), &st) == 0 && S_ISLNK(st.st_mode));
  CHECK_TREE_EQ(t.S, t.D);
}

// Issue 2 §4 "rename over an existing file" (MariaDB: ib_logfile101 -> ib_logfile0 while
// both are open): writes through the fd of the replaced file must not reach the backup;
// writes through the renamed file's fd land under its new name.
TEST(rename_over_existing_open_file_after_copy) {
  write_file(t.path("ib_logfile0"), pattern(8000, 35));
  write_file(t.path("ib_logfile101"), pattern(8000, 36));
  int old0 = open_or_die(t.path("ib_logfile0"), O_RDWR);
  int new101 = open_or_die(t.path("ib_logfile101"), O_RDWR);
  during(t, "cut", [&] {
    CHECK_SYS(rename(t.path("ib_logfile101").c_str(), t.path("ib_logfile0").c_str()));
    CHECK_EQ(pwrite(old0, "REPLACED", 8, 0), (ssize_t)8);
    CHECK_EQ(pwrite(new101, "LIVE", 4, 16), (ssize_t)4);
  });
  close(old0);
  close(new101);
  CHECK(!exists(t.dpath("ib_logfile101")));
  CHECK_TREE_EQ(t.S, t.D);
}

// Issue 2 §3: a write through an fd whose file was unlinked goes to that file, never to
// whatever now has the name.
TEST(write_through_fd_after_unlink_and_recreate) {
  write_file(t.path("a"), pattern(500, 37));
  int fd = open_or_die(t.path("a"), O_RDWR);
  during(t, "cut", [&] {
    CHECK_SYS(unlink(t.path("a").c_str()));
    write_file(t.path("a"), "new file");
    CHECK_EQ(pwrite(fd, "OLD", 3, 0), (ssize_t)3);
    CHECK_EQ(write(fd, "OLD2", 4), (ssize_t)4);
  });
  close(fd);
  CHECK_EQ(read_file(t.dpath("a")), std::string("new file"));
  CHECK_TREE_EQ(t.S, t.D);
}

// Issue 2 §4 "hard links": link after the copy; writes through either name.
TEST(hard_link_after_copy) {
  write_file(t.path("a"), pattern(4000, 38));
  int fd = open_or_die(t.path("a"), O_RDWR);
  during(t, "cut", [&] {
    CHECK_SYS(link(t.path("a").c_str(), t.path("b").c_str()));
    CHECK_EQ(pwrite(fd, "shared", 6, 10), (ssize_t)6);
    CHECK_SYS(linkat(AT_FDCWD, t.path("b").c_str(), AT_FDCWD, t.path("c").c_str(), 0));
  });
  close(fd);
  CHECK_EQ(read_file(t.dpath("b")), read_file(t.path("a")));
  CHECK_TREE_EQ(t.S, t.D);
}

// Issue 2 §2: renameat2 flags: RENAME_NOREPLACE and RENAME_EXCHANGE after the copy.
TEST(renameat2_exchange_and_noreplace_after_copy) {
  write_file(t.path("x"), pattern(3000, 39));
  write_file(t.path("y"), pattern(4000, 40));
  write_file(t.path("z"), "z");
  during(t, "cut", [&] {
    CHECK_SYS(renameat2(AT_FDCWD, t.path("x").c_str(), AT_FDCWD, t.path("y").c_str(), RENAME_EXCHANGE));
    errno = 0;
    CHECK_EQ(renameat2(AT_FDCWD, t.path("z").c_str(), AT_FDCWD, t.path("x").c_str(), RENAME_NOREPLACE), -1);
    CHECK_EQ(errno, EEXIST);
    CHECK_SYS(renameat2(AT_FDCWD, t.path("z").c_str(), AT_FDCWD, t.path("w").c_str(), RENAME_NOREPLACE));
  });
  CHECK_EQ(read_file(t.dpath("x")), pattern(4000, 40));
  CHECK_TREE_EQ(t.S, t.D);
}

// Issue 2 §3: relative paths resolve against the cwd and against the dirfd of *at calls.
TEST(relative_paths_and_dirfds_after_copy) {
  make_dirs(t.path("sub"));
  write_file(t.path("sub/f"), "f");
  during(t, "cut", [&] {
    REQUIRE_SYS(chdir(t.path("sub").c_str()));
    write_file("rel", "relative");
    CHECK_SYS(rename("rel", "rel2"));
    CHECK_SYS(mkdir("reldir", 0755));
    CHECK_SYS(symlink("rel2", "rellink"));
    int dfd = open_or_die(t.S, O_RDONLY | O_DIRECTORY);
    CHECK_SYS(renameat(dfd, "sub/f", dfd, "f_moved"));
    CHECK_SYS(mkdirat(dfd, "atdir", 0755));
    CHECK_SYS(unlinkat(dfd, "sub/reldir", AT_REMOVEDIR));
    CHECK_SYS(linkat(dfd, "f_moved", dfd, "f_link", 0));
    CHECK_SYS(unlinkat(dfd, "f_link", 0));
    close(dfd);
    REQUIRE_SYS(chdir("/"));
  });
  CHECK_TREE_EQ(t.S, t.D);
}

// remove() of a file and of a directory after the copy (glibc's remove calls the syscalls
// directly, so it must be wrapped itself).
TEST(remove_file_and_dir_after_copy) {
  write_file(t.path("f"), "f");
  make_dirs(t.path("d"));
  write_file(t.path("keep"), "k");
  during(t, "cut", [&] {
    CHECK_SYS(remove(t.path("f").c_str()));
    CHECK_SYS(remove(t.path("d").c_str()));
  });
  CHECK_TREE_EQ(t.S, t.D);
}

// A dir removed and a file created with its name, and the reverse, after the copy.
TEST(replace_dir_by_file_and_file_by_dir_after_copy) {
  make_dirs(t.path("was_dir"));
  write_file(t.path("was_file"), pattern(300, 41));
  during(t, "cut", [&] {
    CHECK_SYS(rmdir(t.path("was_dir").c_str()));
    write_file(t.path("was_dir"), "now a file");
    CHECK_SYS(unlink(t.path("was_file").c_str()));
    CHECK_SYS(mkdir(t.path("was_file").c_str(), 0755));
    write_file(t.path("was_file/inner"), "inner");
  });
  CHECK_TREE_EQ(t.S, t.D);
}

int main(int argc, char **argv) { return hbt::main(argc, argv); }
