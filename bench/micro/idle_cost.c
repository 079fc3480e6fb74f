/*
 * idle_cost: ns per call of the write paths the shim wraps, for one process run with or
 * without libhotbackup.so preloaded (no backup running). Prints one JSON object.
 *
 *   idle_cost <dir> <calls> <batches> [pairs]
 *
 * Cases (each: `batches` batches of `calls` calls after a warm-up batch; the figure is the
 * median batch, in ns per call):
 *   pwrite4k      4 KiB pwrite to a file in <dir>, cycling over 64 MiB (page cache after warm-up)
 *   pwrite0       0-byte pwrite to the same file (syscall entry and exit, no copy)
 *   write_devnull 4 KiB write to /dev/null (a cheap syscall through the same wrapper)
 *   open_close    open(O_RDONLY) + close of an existing regular file in <dir>
 *   open_close_w  open(O_WRONLY) + close (no O_CREAT/O_TRUNC)
 *
 * Paired in-process cases (`paired`): the same call made through the symbol the program links
 * against (the shim's wrapper when it is preloaded) and through libc's own function (found
 * with dlopen("libc.so.6", RTLD_NOLOAD)), in alternating batches within one process; the
 * figure is the median of the per-batch differences (ns per call) and its 10th/90th
 * percentiles. Without the shim both pointers are libc's, which shows the noise floor.
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static double now_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec * 1e9 + (double)ts.tv_nsec;
}

static int cmp(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return x < y ? -1 : x > y;
}

#define SPAN (64L << 20)
static char buf[4096] __attribute__((aligned(4096)));
static int fd_data, fd_null;
static char path[4096];

static void pwrite4k(long calls, long base) {
  for (long i = 0; i < calls; i++) {
    off_t off = (off_t)(((base + i) * 4096L) % SPAN);
    if (pwrite(fd_data, buf, 4096, off) != 4096) { perror("pwrite"); exit(1); }
  }
}
static void pwrite0(long calls, long base) {
  (void)base;
  for (long i = 0; i < calls; i++)
    if (pwrite(fd_data, buf, 0, 0) != 0) { perror("pwrite0"); exit(1); }
}
static void write_devnull(long calls, long base) {
  (void)base;
  for (long i = 0; i < calls; i++)
    if (write(fd_null, buf, 4096) != 4096) { perror("write"); exit(1); }
}
static void open_close(long calls, long base) {
  (void)base;
  for (long i = 0; i < calls; i++) {
    int fd = open(path, O_RDONLY);
    if (fd < 0) { perror("open"); exit(1); }
    close(fd);
  }
}
static void open_close_w(long calls, long base) {
  (void)base;
  for (long i = 0; i < calls; i++) {
    int fd = open(path, O_WRONLY);
    if (fd < 0) { perror("open"); exit(1); }
    close(fd);
  }
}

static double measure(void (*fn)(long, long), long calls, int batches) {
  double *v = calloc((size_t)batches, sizeof(double));
  fn(calls, 0); /* warm-up */
  for (int b = 0; b < batches; b++) {
    double t0 = now_ns();
    fn(calls, (long)b * calls);
    v[b] = (now_ns() - t0) / (double)calls;
  }
  qsort(v, (size_t)batches, sizeof(double), cmp);
  double m = batches % 2 ? v[batches / 2] : (v[batches / 2 - 1] + v[batches / 2]) / 2;
  free(v);
  return m;
}

typedef ssize_t (*pwrite_t)(int, const void *, size_t, off_t);
typedef int (*open_t)(const char *, int, ...);
typedef int (*close_t)(int);

static double batch_pwrite(pwrite_t fn, long calls, size_t n, long base) {
  double t0 = now_ns();
  for (long i = 0; i < calls; i++) {
    off_t off = n ? (off_t)(((base + i) * 4096L) % SPAN) : 0;
    if (fn(fd_data, buf, n, off) != (ssize_t)n) { perror("pwrite"); exit(1); }
  }
  return (now_ns() - t0) / (double)calls;
}
static double batch_open(open_t op, close_t cl, long calls) {
  double t0 = now_ns();
  for (long i = 0; i < calls; i++) {
    int fd = op(path, O_RDONLY);
    if (fd < 0) { perror("open"); exit(1); }
    cl(fd);
  }
  return (now_ns() - t0) / (double)calls;
}

/* Pairs: diff[k] = wrapper batch - direct batch, in alternating order. */
static void paired(const char *name, int kind, long calls, int pairs, int last) {
  void *libc = dlopen("libc.so.6", RTLD_NOLOAD | RTLD_LAZY);
  pwrite_t pw_direct = (pwrite_t)dlsym(libc, "pwrite");
  open_t op_direct = (open_t)dlsym(libc, "open");
  close_t cl_direct = (close_t)dlsym(libc, "close");
  pwrite_t pw_wrap = pwrite;
  open_t op_wrap = open;
  close_t cl_wrap = close;
  double *d = calloc((size_t)pairs, sizeof(double));
  double *w = calloc((size_t)pairs, sizeof(double));
  for (int k = -1; k < pairs; k++) {
    double a = 0, b = 0;
    for (int o = 0; o < 2; o++) {
      int wrapper_first = (k & 1) == 0;
      int wrap = o == 0 ? wrapper_first : !wrapper_first;
      double t;
      if (kind == 2) t = wrap ? batch_open(op_wrap, cl_wrap, calls) : batch_open(op_direct, cl_direct, calls);
      else t = batch_pwrite(wrap ? pw_wrap : pw_direct, calls, kind == 1 ? 4096 : 0, (long)(2 * (k + 1) + wrap) * calls);
      if (wrap) a = t; else b = t;
    }
    if (k >= 0) { d[k] = a - b; w[k] = a; }
  }
  qsort(d, (size_t)pairs, sizeof(double), cmp);
  qsort(w, (size_t)pairs, sizeof(double), cmp);
  printf("\"%s\":{\"added_ns\":%.3f,\"p10_ns\":%.3f,\"p90_ns\":%.3f,\"call_ns\":%.2f,\"pairs\":%d,\"calls_per_batch\":%ld}%s",
         name, d[pairs / 2], d[pairs / 10], d[pairs * 9 / 10], w[pairs / 2], pairs, calls, last ? "" : ",");
  free(d);
  free(w);
}

int main(int argc, char **argv) {
  if (argc < 4) {
    fprintf(stderr, "usage: %s DIR CALLS BATCHES\n", argv[0]);
    return 2;
  }
  long calls = atol(argv[2]);
  int batches = atoi(argv[3]);
  memset(buf, 'x', sizeof buf);
  snprintf(path, sizeof path, "%s/idle_cost.dat", argv[1]);
  fd_data = open(path, O_RDWR | O_CREAT, 0600);
  if (fd_data < 0) { perror(path); return 1; }
  for (off_t off = 0; off < SPAN; off += 4096)
    if (pwrite(fd_data, buf, 4096, off) != 4096) { perror("fill"); return 1; }
  fd_null = open("/dev/null", O_WRONLY);

  /* Whether the shim is loaded and serves this process (it exports hotbackup_is_served). */
  int (*is_served)(void) = (int (*)(void))dlsym(RTLD_DEFAULT, "hotbackup_is_served");
  int served = is_served ? is_served() : -1;

  double a = measure(pwrite4k, calls, batches);
  double b = measure(pwrite0, calls * 4, batches);
  double c = measure(write_devnull, calls * 4, batches);
  double d = measure(open_close, calls, batches);
  double e = measure(open_close_w, calls, batches);
  printf("{\"shim_loaded\":%s,\"served\":%d,\"pwrite4k_ns\":%.2f,\"pwrite0_ns\":%.2f,"
         "\"write_devnull_ns\":%.2f,\"open_close_ns\":%.2f,\"open_close_w_ns\":%.2f,\"paired\":{",
         is_served ? "true" : "false", served, a, b, c, d, e);
  int pairs = argc > 4 ? atoi(argv[4]) : 101;
  paired("pwrite0", 0, 2000, pairs, 0);
  paired("pwrite4k", 1, 500, pairs, 0);
  paired("open_close", 2, 500, pairs, 1);
  printf("}}\n");
  close(fd_data);
  unlink(path);
  return 0;
}
