/*
 * benchio: the I/O loops of `npm run bench` (bench/), run inside a guest and on the host
 * alike (also inside a network namespace), so both ends' figures come from the same code.
 * Timed with CLOCK_MONOTONIC around the I/O only: process start (a second on an emulated
 * guest kernel) is not part of a device's throughput.
 *
 *   benchio read PATH MIB [direct]       sequential 1 MiB reads
 *   benchio write PATH MIB [direct]      sequential 1 MiB writes, then fdatasync
 *   benchio randread PATH COUNT [direct] 4 KiB reads at random 4 KiB-aligned offsets
 *   benchio emit BYTES                   prints "EMIT-START", then BYTES of text lines
 *   benchio sink ADDR PORT [once]        TCP server: reads each connection to its end,
 *                                        answers "done"; timed from first byte to end
 *   benchio send HOST PORT BYTES         sends BYTES, waits for the answer; timed from connect
 *   benchio hello ADDR PORT              TCP server: answers each connection with "hi"
 *   benchio connect HOST PORT COUNT      connect → first byte, COUNT times; the median
 *
 * Prints one line: "benchio OP bytes=N ns=T".
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

enum { BLOCK = 1 << 20, PAGE = 4096 };

static uint64_t now_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static void die(const char *what) {
  perror(what);
  exit(1);
}

static int open_target(const char *path, int flags, int direct) {
  int fd = open(path, flags | (direct ? O_DIRECT : 0), 0644);
  if (fd < 0) die(path);
  return fd;
}

/* Writes all of buf (a tty or a pipe may take less at a time). */
static void write_all(int fd, const char *buf, size_t len) {
  while (len > 0) {
    ssize_t n = write(fd, buf, len);
    if (n <= 0) die("write");
    buf += n;
    len -= (size_t)n;
  }
}

static void report(const char *op, uint64_t bytes, uint64_t ns) {
  printf("benchio %s bytes=%llu ns=%llu\n", op, (unsigned long long)bytes, (unsigned long long)ns);
  fflush(stdout);
}

static struct sockaddr_in address(const char *host, const char *port) {
  struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)atoi(port))};
  if (inet_pton(AF_INET, host, &sa.sin_addr) != 1) die(host);
  return sa;
}

static int listen_on(const char *addr, const char *port) {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  int one = 1;
  if (fd < 0 || setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one) != 0) die("socket");
  struct sockaddr_in sa = address(addr, port);
  if (bind(fd, (struct sockaddr *)&sa, sizeof sa) != 0 || listen(fd, 16) != 0) die("bind");
  return fd;
}

static int connect_to(const char *host, const char *port) {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  struct sockaddr_in sa = address(host, port);
  if (fd < 0 || connect(fd, (struct sockaddr *)&sa, sizeof sa) != 0) die("connect");
  return fd;
}

static int compare_u64(const void *a, const void *b) {
  uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
  return x < y ? -1 : x > y;
}

/* The TCP operations; buf is BLOCK bytes. */
static int net_op(const char *op, int argc, char **argv, char *buf) {
  if (strcmp(op, "sink") == 0 || strcmp(op, "hello") == 0) {
    if (argc < 4) return 2;
    int server = listen_on(argv[2], argv[3]);
    int once = argc > 4 && strcmp(argv[4], "once") == 0;
    do {
      int fd = accept(server, NULL, NULL);
      if (fd < 0) die("accept");
      if (op[0] == 'h') {
        write_all(fd, "hi\n", 3);
      } else {
        uint64_t bytes = 0, start = 0;
        ssize_t n;
        while ((n = read(fd, buf, BLOCK)) > 0) {
          if (bytes == 0) start = now_ns();
          bytes += (uint64_t)n;
        }
        uint64_t ns = now_ns() - start;
        write_all(fd, "done\n", 5);
        if (once) report(op, bytes, ns);
      }
      close(fd);
    } while (!once);
    return 0;
  }
  if (strcmp(op, "send") == 0 && argc > 4) {
    uint64_t total = strtoull(argv[4], NULL, 10), start = now_ns();
    int fd = connect_to(argv[2], argv[3]);
    for (uint64_t sent = 0; sent < total; sent += BLOCK) write_all(fd, buf, total - sent < BLOCK ? (size_t)(total - sent) : BLOCK);
    shutdown(fd, SHUT_WR);
    if (read(fd, buf, 16) <= 0) die("no answer");
    report(op, total, now_ns() - start);
    return 0;
  }
  if (strcmp(op, "connect") == 0 && argc > 4) {
    uint64_t count = strtoull(argv[4], NULL, 10);
    if (count == 0 || count > 100000) return 2;
    uint64_t *ns = calloc(count, sizeof *ns);
    if (ns == NULL) die("calloc");
    for (uint64_t i = 0; i < count; i++) {
      uint64_t start = now_ns();
      int fd = connect_to(argv[2], argv[3]);
      if (read(fd, buf, 16) <= 0) die("no answer");
      ns[i] = now_ns() - start;
      close(fd);
    }
    qsort(ns, count, sizeof *ns, compare_u64);
    report(op, count, ns[count / 2]);
    return 0;
  }
  return -1;
}

int main(int argc, char **argv) {
  if (argc < 3) {
    fprintf(stderr, "usage: see test/guest-programs/benchio.c\n");
    return 2;
  }
  const char *op = argv[1];
  if (strcmp(op, "emit") == 0) {
    uint64_t bytes = strtoull(argv[2], NULL, 10);
    char line[64];
    memset(line, 'x', sizeof line - 1);
    line[sizeof line - 1] = '\n';
    write_all(1, "EMIT-START\n", 11);
    uint64_t start = now_ns();
    for (uint64_t sent = 0; sent < bytes; sent += sizeof line) {
      size_t n = bytes - sent < sizeof line ? (size_t)(bytes - sent) : sizeof line;
      write_all(1, line, n);
    }
    fprintf(stderr, "\nbenchio emit bytes=%llu ns=%llu\n", (unsigned long long)bytes, (unsigned long long)(now_ns() - start));
    return 0;
  }
  char *buf;
  if (posix_memalign((void **)&buf, PAGE, BLOCK) != 0) die("posix_memalign");
  memset(buf, 0x5a, BLOCK);
  int result = net_op(op, argc, argv, buf);
  if (result >= 0) return result;
  if (argc < 4) return 2;
  const char *path = argv[2];
  uint64_t count = strtoull(argv[3], NULL, 10);
  int direct = argc > 4 && strcmp(argv[4], "direct") == 0;
  uint64_t bytes = 0;
  uint64_t start;
  if (strcmp(op, "read") == 0 || strcmp(op, "write") == 0) {
    int writing = op[0] == 'w';
    int fd = open_target(path, writing ? O_WRONLY | O_CREAT : O_RDONLY, direct);
    start = now_ns();
    for (uint64_t i = 0; i < count; i++) {
      ssize_t n = writing ? write(fd, buf, BLOCK) : read(fd, buf, BLOCK);
      if (n < 0) die(op);
      bytes += (uint64_t)n;
      if (n < BLOCK) break;
    }
    if (writing && fdatasync(fd) != 0) die("fdatasync");
    close(fd);
  } else if (strcmp(op, "randread") == 0) {
    int fd = open_target(path, O_RDONLY, direct);
    off_t size = lseek(fd, 0, SEEK_END);
    if (size < PAGE) die("size");
    uint64_t pages = (uint64_t)size / PAGE;
    uint64_t state = 0x9e3779b97f4a7c15u; /* fixed seed: the same offsets in every run */
    start = now_ns();
    for (uint64_t i = 0; i < count; i++) {
      state ^= state << 13, state ^= state >> 7, state ^= state << 17;
      if (pread(fd, buf, PAGE, (off_t)((state % pages) * PAGE)) != PAGE) die("pread");
      bytes += PAGE;
    }
    close(fd);
  } else {
    fprintf(stderr, "benchio: unknown operation %s\n", op);
    return 2;
  }
  report(op, bytes, now_ns() - start);
  return 0;
}
