/*
 * The two I/O paths issue 8 asks to choose between, on the host alone: virtio-blk's
 * worker today (one thread, one preadv/pwritev per request, in ring order) and io_uring
 * (Debian's liburing) at queue depth 1 and 32, the depth a Linux guest keeps in flight.
 * Run by bench/diskio.ts; prints one line per figure:
 *   diskio PATH WORKLOAD CACHE MiB/s IOPS
 * Usage: diskio FILE MIB  (FILE is created, filled and left for the caller to remove)
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <liburing.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

enum { kMaxDepth = 32 };

struct workload {
  const char *name;
  size_t block;
  int random;
  int write;
};

static double now(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

static void die(const char *what, int err) {
  fprintf(stderr, "diskio: %s: %s\n", what, strerror(err));
  exit(1);
}

/* Offsets for `count` requests: in order, or a fixed pseudo-random permutation of blocks. */
static off_t *offsets(size_t count, size_t block, int random) {
  off_t *o = malloc(count * sizeof *o);
  if (!o) die("malloc", ENOMEM);
  for (size_t i = 0; i < count; i++) o[i] = (off_t)(i * block);
  uint64_t x = 0x9e3779b97f4a7c15u;
  for (size_t i = count - 1; random && i > 0; i--) {
    x ^= x << 13, x ^= x >> 7, x ^= x << 17;
    size_t j = x % (i + 1);
    off_t t = o[i];
    o[i] = o[j], o[j] = t;
  }
  return o;
}

/* Requests rotate over kMaxDepth buffers on every path, as a guest's requests land in
 * different pages: one hot buffer would flatter the synchronous path. */
static void sync_path(int fd, const struct workload *w, const off_t *o, size_t count, char *bufs) {
  for (size_t i = 0; i < count; i++) {
    struct iovec iov = {bufs + (i % kMaxDepth) * w->block, w->block};
    ssize_t n = w->write ? pwritev(fd, &iov, 1, o[i]) : preadv(fd, &iov, 1, o[i]);
    if (n != (ssize_t)w->block) die(w->write ? "pwritev" : "preadv", n < 0 ? errno : EIO);
  }
}

static void uring_path(struct io_uring *ring, int depth, int fd, const struct workload *w, const off_t *o, size_t count, char *bufs) {
  struct iovec iov[kMaxDepth];
  size_t submitted = 0, done = 0;
  /* Free buffers in a FIFO, so that at depth 1 they rotate as on the synchronous path. */
  int free_slots[kMaxDepth];
  unsigned head = 0, tail = 0, inflight = 0;
  for (int i = 0; i < kMaxDepth; i++) free_slots[tail++ % kMaxDepth] = i;
  while (done < count) {
    while (submitted < count && inflight < (unsigned)depth) {
      int slot = free_slots[head++ % kMaxDepth];
      iov[slot] = (struct iovec){bufs + (size_t)slot * w->block, w->block};
      struct io_uring_sqe *sqe = io_uring_get_sqe(ring);
      if (w->write) io_uring_prep_writev(sqe, fd, &iov[slot], 1, o[submitted]);
      else io_uring_prep_readv(sqe, fd, &iov[slot], 1, o[submitted]);
      io_uring_sqe_set_data64(sqe, (uint64_t)slot);
      submitted++, inflight++;
    }
    int r = io_uring_submit_and_wait(ring, 1);
    if (r < 0) die("io_uring_submit_and_wait", -r);
    struct io_uring_cqe *cqe;
    unsigned cq_head, seen = 0;
    io_uring_for_each_cqe(ring, cq_head, cqe) {
      if (cqe->res != (int)w->block) die("io_uring request", cqe->res < 0 ? -cqe->res : EIO);
      free_slots[tail++ % kMaxDepth] = (int)io_uring_cqe_get_data64(cqe);
      seen++;
    }
    io_uring_cq_advance(ring, seen);
    done += seen, inflight -= seen;
  }
}

int main(int argc, char **argv) {
  if (argc != 3) {
    fprintf(stderr, "usage: diskio FILE MIB\n");
    return 2;
  }
  char *end;
  unsigned long mib = strtoul(argv[2], &end, 10);
  if (*end || mib < 1 || mib > 65536) {
    fprintf(stderr, "diskio: MIB must be 1 to 65536, not %s\n", argv[2]);
    return 2;
  }
  size_t size = (size_t)mib << 20;
  int fd = open(argv[1], O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  if (fd < 0) die(argv[1], errno);
  char *bufs;
  if (posix_memalign((void **)&bufs, 4096, (size_t)kMaxDepth << 17)) die("posix_memalign", ENOMEM);
  memset(bufs, 0x5a, (size_t)kMaxDepth << 17);
  for (size_t at = 0; at < size; at += 1 << 17)
    if (pwrite(fd, bufs, 1 << 17, (off_t)at) != 1 << 17) die("fill", errno);
  if (fsync(fd)) die("fsync", errno);

  struct io_uring ring;
  int uring_err = -io_uring_queue_init(kMaxDepth, &ring, 0);
  if (uring_err) printf("diskio io_uring unavailable: %s\n", strerror(uring_err));

  const struct workload workloads[] = {
      {"seq-read-128k", 128 << 10, 0, 0},
      {"rand-read-4k", 4 << 10, 1, 0},
      {"seq-write-128k", 128 << 10, 0, 1},
  };
  const char *paths[] = {"preadv", "io_uring-qd1", "io_uring-qd32"};
  const struct workload warm = {"warm", 1 << 17, 0, 0};
  off_t *warm_offsets = offsets(size >> 17, warm.block, 0);
  for (size_t wi = 0; wi < sizeof workloads / sizeof *workloads; wi++) {
    const struct workload *w = &workloads[wi];
    size_t count = size / w->block;
    off_t *o = offsets(count, w->block, w->random);
    for (int cached = 1; cached >= 0; cached--) {
      if (w->write && !cached) continue; /* writes land in the page cache either way */
      for (int p = 0; p < 3; p++) {
        if (p > 0 && uring_err) continue;
        if (cached) {
          sync_path(fd, &warm, warm_offsets, size >> 17, bufs);
        } else {
          if (fdatasync(fd)) die("fdatasync", errno);
          int e = posix_fadvise(fd, 0, 0, POSIX_FADV_DONTNEED);
          if (e) die("posix_fadvise", e);
        }
        double t0 = now();
        if (p == 0) sync_path(fd, w, o, count, bufs);
        else uring_path(&ring, p == 1 ? 1 : kMaxDepth, fd, w, o, count, bufs);
        double s = now() - t0;
        printf("diskio %s %s %s %.1f %.0f\n", paths[p], w->name, cached ? "cached" : "uncached",
               (double)size / (1 << 20) / s, (double)count / s);
      }
    }
    free(o);
  }
  free(warm_offsets);
  if (!uring_err) io_uring_queue_exit(&ring);
  close(fd);
  return 0;
}
