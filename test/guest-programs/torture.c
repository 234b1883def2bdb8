/* Guest user-space torture test: what a test suite does to a guest's processes,
 * with every result checked. Prints one line per part and a summary:
 *   torture: <part> ok|FAIL <details>
 *   torture: summary <passed> passed, <failed> failed
 * Exit status 0 only if every part passed. Built static (gcc -static -O2 -pthread). */
#define _GNU_SOURCE
#include <asm/prctl.h>
#include <errno.h>
#include <stdarg.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

long probe_syscall(long nr, long a1, long a2, long a3, uint64_t tag, uint64_t *out);

static int failures;
static int passes;

static void report(const char *part, int ok, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static void report(const char *part, int ok, const char *fmt, ...) {
  char details[256] = "";
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(details, sizeof details, fmt, ap);
  va_end(ap);
  printf("torture: %s %s %s\n", part, ok ? "ok" : "FAIL", details);
  fflush(stdout);
  if (ok) passes++; else failures++;
}

/* FNV-1a over a deterministic byte stream: both ends of a pipe compute it. */
static uint64_t fnv(uint64_t h, const unsigned char *p, size_t n) {
  for (size_t i = 0; i < n; i++) h = (h ^ p[i]) * 0x100000001b3ull;
  return h;
}
static void pattern(unsigned char *buf, size_t n, uint64_t offset) {
  for (size_t i = 0; i < n; i++) buf[i] = (unsigned char)((offset + i) * 2654435761u >> 13);
}

static int write_all(int fd, const void *buf, size_t n) {
  const char *p = buf;
  while (n > 0) {
    ssize_t w = write(fd, p, n);
    if (w < 0) { if (errno == EINTR) continue; return -1; }
    p += w; n -= (size_t)w;
  }
  return 0;
}

/* ---- registers and FS base across blocking syscalls --------------------------------- */
static const uint64_t kXor[] = {1, 2, 0xc, 0xd, 0xe, 0xf, 9, 0xa};
static const char *kRegNames[] = {"rbx", "rbp", "r12", "r13", "r14", "r15", "r9", "r10"};
static __thread uint64_t tls_value;

/* Checks the registers probe_syscall() saw after the syscall; returns the number wrong. */
static int check_probe(const char *who, uint64_t tag, const uint64_t *out, uint64_t fs, char *why, size_t whylen) {
  int bad = 0;
  for (int i = 0; i < 8; i++)
    if (out[i] != (tag ^ kXor[i])) { if (!bad) snprintf(why, whylen, "%s: %s=%#lx want %#lx", who, kRegNames[i], (unsigned long)out[i], (unsigned long)(tag ^ kXor[i])); bad++; }
  const char *args[] = {"r8", "rdx", "rsi", "rdi"};
  for (int i = 0; i < 4; i++)
    if (out[8 + i] != out[13 + i]) { if (!bad) snprintf(why, whylen, "%s: %s=%#lx want %#lx", who, args[i], (unsigned long)out[8 + i], (unsigned long)out[13 + i]); bad++; }
  if (out[12] != fs) { if (!bad) snprintf(why, whylen, "%s: fs:0=%#lx want %#lx", who, (unsigned long)out[12], (unsigned long)fs); bad++; }
  for (int i = 0; i < 16; i++) {
    uint64_t want = tag ^ (0x100 + i);
    if (out[20 + 2 * i] != want || out[21 + 2 * i] != want) {
      if (!bad) snprintf(why, whylen, "%s: xmm%d=%#lx:%#lx want %#lx", who, i, (unsigned long)out[21 + 2 * i], (unsigned long)out[20 + 2 * i], (unsigned long)want);
      bad++;
    }
  }
  if (tls_value != tag) { if (!bad) snprintf(why, whylen, "%s: tls=%#lx want %#lx", who, (unsigned long)tls_value, (unsigned long)tag); bad++; }
  return bad;
}

/* Two processes ping-pong `chunk` bytes through two pipes, every syscall made with all
 * preserved registers loaded with a per-process tag and checked afterwards. */
static void part_registers(int iterations, int chunk) {
  int ab[2], ba[2], result[2];
  if (pipe(ab) || pipe(ba) || pipe(result)) { report("registers", 0, "pipe: %s", strerror(errno)); return; }
  char *buf = calloc(1, (size_t)chunk);
  pid_t pid = fork();
  if (pid < 0) { report("registers", 0, "fork: %s", strerror(errno)); return; }
  int child = pid == 0;
  uint64_t base = child ? 0xb0b0000000000000ull : 0xa0a0000000000000ull;
  unsigned long fs = 0;
  syscall(SYS_arch_prctl, ARCH_GET_FS, &fs);
  uint64_t out[56];
  char why[200] = "";
  int bad = 0;
  for (int i = 0; i < iterations && !bad; i++) {
    uint64_t tag = base | ((uint64_t)i << 8);
    tls_value = tag;
    long r;
    if (child) {
      size_t got = 0;
      while (got < (size_t)chunk && !bad) {
        r = probe_syscall(SYS_read, ab[0], (long)(buf + got), chunk - (long)got, tag, out);
        bad += check_probe("reader", tag, out, fs, why, sizeof why);
        if (r <= 0) { snprintf(why, sizeof why, "read returned %ld", r); bad++; break; }
        got += (size_t)r;
      }
      r = probe_syscall(SYS_write, ba[1], (long)buf, 1, tag, out);
      bad += check_probe("reader", tag, out, fs, why, sizeof why);
    } else {
      r = probe_syscall(SYS_write, ab[1], (long)buf, chunk, tag, out);
      bad += check_probe("writer", tag, out, fs, why, sizeof why);
      r = probe_syscall(SYS_read, ba[0], (long)buf, 1, tag, out);
      bad += check_probe("writer", tag, out, fs, why, sizeof why);
      if (r != 1) { snprintf(why, sizeof why, "ack read returned %ld", r); bad++; }
    }
  }
  if (child) {
    write_all(result[1], why, sizeof why);
    _exit(bad ? 1 : 0);
  }
  close(ab[1]);
  int status = 0;
  waitpid(pid, &status, 0);
  char childWhy[200] = "";
  if (read(result[0], childWhy, sizeof childWhy) < 0) childWhy[0] = 0;
  int ok = !bad && WIFEXITED(status) && WEXITSTATUS(status) == 0;
  report("registers", ok, "%d round trips of %d bytes%s%s%s%s", iterations, chunk, why[0] ? "; " : "", why,
         childWhy[0] ? "; " : "", childWhy);
  close(ab[0]); close(ba[0]); close(ba[1]); close(result[0]); close(result[1]);
  free(buf);
}

/* ---- a pipeline moving megabytes between processes ---------------------------------- */
static void part_pipeline(size_t total) {
  int p[2];
  if (pipe(p)) { report("pipeline", 0, "pipe: %s", strerror(errno)); return; }
  pid_t pid = fork();
  if (pid == 0) {
    close(p[0]);
    unsigned char buf[8192];
    for (size_t off = 0; off < total; off += sizeof buf) {
      size_t n = total - off < sizeof buf ? total - off : sizeof buf;
      pattern(buf, n, off);
      if (write_all(p[1], buf, n)) _exit(2);
    }
    _exit(0);
  }
  close(p[1]);
  unsigned char buf[3000];  /* deliberately not the writer's size */
  uint64_t h = 0xcbf29ce484222325ull, want = 0xcbf29ce484222325ull;
  size_t got = 0;
  for (;;) {
    ssize_t r = read(p[0], buf, sizeof buf);
    if (r < 0 && errno == EINTR) continue;
    if (r <= 0) break;
    h = fnv(h, buf, (size_t)r);
    got += (size_t)r;
  }
  close(p[0]);
  for (size_t off = 0; off < total; off += sizeof buf) {
    size_t n = total - off < sizeof buf ? total - off : sizeof buf;
    pattern(buf, n, off);
    want = fnv(want, buf, n);
  }
  int status = 0;
  waitpid(pid, &status, 0);
  report("pipeline", got == total && h == want && WIFEXITED(status) && WEXITSTATUS(status) == 0,
         "%zu of %zu bytes, checksum %s, writer status %#x", got, total, h == want ? "equal" : "DIFFERS", status);
}

/* ---- fork/exec storm -------------------------------------------------------------- */
static void part_fork_exec(int count) {
  int bad = 0;
  for (int i = 0; i < count; i++) {
    pid_t pid = fork();
    if (pid == 0) {
      char code[16];
      snprintf(code, sizeof code, "exit %d", i % 100);
      execl("/bin/sh", "sh", "-c", code, (char *)0);
      _exit(127);
    }
    int status = 0;
    if (pid < 0 || waitpid(pid, &status, 0) != pid || !WIFEXITED(status) || WEXITSTATUS(status) != i % 100) bad++;
  }
  report("fork-exec", !bad, "%d children, %d wrong exit codes", count, bad);
}

/* ---- threads with TLS ------------------------------------------------------------- */
struct thread_arg { int index; int bad; };
static void *thread_main(void *p) {
  struct thread_arg *arg = p;
  uint64_t mine = 0x7000000000000000ull | (uint64_t)arg->index << 32;
  for (int i = 0; i < 20000; i++) {
    tls_value = mine | (uint64_t)i;
    if (i % 64 == 0) sched_yield();
    if (i % 1000 == 0) { struct timespec ts = {0, 100000}; nanosleep(&ts, 0); }
    if (tls_value != (mine | (uint64_t)i)) arg->bad++;
  }
  unsigned long fs = 0;
  syscall(SYS_arch_prctl, ARCH_GET_FS, &fs);
  if (fs != (unsigned long)pthread_self()) arg->bad++;  /* glibc: the TCB is the thread's FS base */
  return 0;
}
static void part_threads(int count) {
  pthread_t threads[16];
  struct thread_arg args[16];
  int bad = 0;
  for (int i = 0; i < count; i++) {
    args[i] = (struct thread_arg){i, 0};
    if (pthread_create(&threads[i], 0, thread_main, &args[i])) { bad++; count = i; break; }
  }
  for (int i = 0; i < count; i++) { pthread_join(threads[i], 0); bad += args[i].bad; }
  report("threads-tls", !bad, "%d threads, %d wrong TLS or FS base values", count, bad);
}

/* ---- signals delivered during blocking syscalls ------------------------------------- */
static volatile sig_atomic_t signals_seen;
static void on_signal(int sig) { (void)sig; signals_seen++; }
/* The child signals the parent while it blocks in read(), one signal at a time (each is
 * acknowledged before the next, so none can merge with a pending one). */
static void part_signals(int count) {
  struct sigaction sa;
  memset(&sa, 0, sizeof sa);
  sa.sa_handler = on_signal;  /* no SA_RESTART: the read must return EINTR */
  sigaction(SIGUSR1, &sa, 0);
  int p[2], ack[2];
  if (pipe(p) || pipe(ack)) { report("signals", 0, "pipe"); return; }
  signals_seen = 0;
  pid_t parent = getpid();
  pid_t pid = fork();
  if (pid == 0) {
    char statPath[64];
    snprintf(statPath, sizeof statPath, "/proc/%d/stat", (int)parent);
    for (int i = 0; i < count; i++) {
      /* Signal only while the parent sleeps (in its read): a signal that lands before the
       * read would leave it blocked with nobody to wake it. */
      for (;;) {
        char stat[512] = "";
        FILE *f = fopen(statPath, "r");
        if (f) { if (!fgets(stat, sizeof stat, f)) stat[0] = 0; fclose(f); }
        char *close_paren = strrchr(stat, ')');
        if (close_paren && close_paren[1] == ' ' && close_paren[2] == 'S') break;
        struct timespec ts = {0, 200000};
        nanosleep(&ts, 0);
      }
      kill(parent, SIGUSR1);
      char c;
      if (read(ack[0], &c, 1) != 1) _exit(2);
    }
    write_all(p[1], "x", 1);
    _exit(0);
  }
  int eintr = 0, bad = 0, handled = 0;
  uint64_t out[56];
  char why[200] = "";
  unsigned long fs = 0;
  syscall(SYS_arch_prctl, ARCH_GET_FS, &fs);
  for (int i = 0;; i++) {
    uint64_t tag = 0xc0c0000000000000ull | ((uint64_t)i << 8);
    tls_value = tag;
    char c;
    long r = probe_syscall(SYS_read, p[0], (long)&c, 1, tag, out);
    bad += check_probe("signalled", tag, out, fs, why, sizeof why);
    if (r == -EINTR) eintr++;
    if (signals_seen > handled) {
      handled = signals_seen;
      write_all(ack[1], "a", 1);
    }
    if (r == -EINTR) continue;
    if (r == 1) break;
    snprintf(why, sizeof why, "read returned %ld", r);
    bad++;
    break;
  }
  int status = 0;
  waitpid(pid, &status, 0);
  close(p[0]); close(p[1]); close(ack[0]); close(ack[1]);
  report("signals", !bad && handled == count && WIFEXITED(status) && WEXITSTATUS(status) == 0,
         "%d signals sent, %d handled, %d blocking reads interrupted%s%s", count, handled, eintr, why[0] ? "; " : "", why);
}

/* ---- SIGPIPE ends a writer whose reader has gone ------------------------------------ */
static void part_sigpipe(void) {
  int p[2];
  if (pipe(p)) { report("sigpipe", 0, "pipe"); return; }
  pid_t pid = fork();
  if (pid == 0) {
    signal(SIGPIPE, SIG_DFL);
    close(p[0]);
    char buf[4096];
    memset(buf, 'y', sizeof buf);
    for (;;) if (write(p[1], buf, sizeof buf) < 0) _exit(3);
  }
  close(p[1]);
  char buf[1000];
  size_t got = 0;
  while (got < 150000) {
    ssize_t r = read(p[0], buf, sizeof buf);
    if (r <= 0) break;
    got += (size_t)r;
  }
  close(p[0]);
  int status = 0;
  waitpid(pid, &status, 0);
  report("sigpipe", WIFSIGNALED(status) && WTERMSIG(status) == SIGPIPE, "read %zu bytes; writer status %#x", got, status);
}

/* ---- arch_prctl: a process's own FS base survives blocking and switches -------------- */
static uint64_t alt_tls[64];
static void part_arch_prctl(int iterations) {
  pid_t pid = fork();
  if (pid == 0) {
    /* Point FS at our own block (no libc calls while it is set), then block in syscalls. */
    unsigned long saved = 0;
    syscall(SYS_arch_prctl, ARCH_GET_FS, &saved);
    alt_tls[0] = (uint64_t)(uintptr_t)alt_tls;
    alt_tls[1] = 0x5151515151515151ull;
    long r = syscall(SYS_arch_prctl, ARCH_SET_FS, (unsigned long)alt_tls);
    int bad = r != 0;
    for (int i = 0; i < iterations && !bad; i++) {
      uint64_t v;
      struct timespec ts = {0, 100000};
      long nr = SYS_nanosleep;
      __asm__ volatile("syscall" : "+a"(nr) : "D"(&ts), "S"(0) : "rcx", "r11", "memory");
      __asm__ volatile("mov %%fs:8, %0" : "=r"(v));
      if (v != 0x5151515151515151ull) bad++;
      nr = SYS_sched_yield;
      __asm__ volatile("syscall" : "+a"(nr) : : "rcx", "r11", "memory");
      __asm__ volatile("mov %%fs:8, %0" : "=r"(v));
      if (v != 0x5151515151515151ull) bad++;
    }
    syscall(SYS_arch_prctl, ARCH_SET_FS, saved);
    _exit(bad ? 1 : 0);
  }
  /* Meanwhile this process keeps the CPU busy with its own, different FS base. */
  unsigned long fs = 0;
  syscall(SYS_arch_prctl, ARCH_GET_FS, &fs);
  int bad = 0, status = 0;
  while (waitpid(pid, &status, WNOHANG) == 0) {
    tls_value = 0x6262626262626262ull;
    sched_yield();
    unsigned long now = 0;
    syscall(SYS_arch_prctl, ARCH_GET_FS, &now);
    if (now != fs || tls_value != 0x6262626262626262ull) bad++;
  }
  report("arch-prctl", !bad && WIFEXITED(status) && WEXITSTATUS(status) == 0, "child status %#x, parent FS changes %d",
         status, bad);
}

/* ---- sched_yield ping-pong between processes on a shared counter --------------------- */
static void part_yield(int rounds) {
  int p[2], q[2];
  if (pipe(p) || pipe(q)) { report("yield", 0, "pipe"); return; }
  pid_t pid = fork();
  uint64_t out[56];
  char why[200] = "";
  int bad = 0;
  unsigned long fs = 0;
  syscall(SYS_arch_prctl, ARCH_GET_FS, &fs);
  uint64_t base = pid == 0 ? 0xd1d1000000000000ull : 0xe1e1000000000000ull;
  for (int i = 0; i < rounds && !bad; i++) {
    uint64_t tag = base | ((uint64_t)i << 8);
    tls_value = tag;
    probe_syscall(SYS_sched_yield, 0, 0, 0, tag, out);
    bad += check_probe(pid == 0 ? "yield-child" : "yield-parent", tag, out, fs, why, sizeof why);
  }
  if (pid == 0) { write_all(q[1], why, sizeof why); _exit(bad ? 1 : 0); }
  int status = 0;
  waitpid(pid, &status, 0);
  char childWhy[200] = "";
  if (read(q[0], childWhy, sizeof childWhy) < 0) childWhy[0] = 0;
  report("yield", !bad && WIFEXITED(status) && WEXITSTATUS(status) == 0, "%d rounds each%s%s%s%s", rounds,
         why[0] ? "; " : "", why, childWhy[0] ? "; " : "", childWhy);
  close(p[0]); close(p[1]); close(q[0]); close(q[1]);
}

/* ---- vector registers across task switches -------------------------------------------
 * glibc picks AVX/AVX-512 string functions from CPUID and XGETBV, so whatever those two
 * say is usable must survive one process blocking while another uses the same registers.
 * On a PVM host both instructions run natively in guest user mode: they report the
 * host's AVX-512 even when the guest kernel context-switches only x87/SSE state. */
static uint64_t xcr0_if_enabled(void) {
  uint32_t a, b, c, d;
  __asm__ volatile("cpuid" : "=a"(a), "=b"(b), "=c"(c), "=d"(d) : "a"(1), "c"(0));
  if (!(c & (1u << 27))) return 0;  /* OSXSAVE: the OS enabled XGETBV */
  __asm__ volatile("xgetbv" : "=a"(a), "=d"(d) : "c"(0));
  return ((uint64_t)d << 32) | a;
}

#define LOAD_YMM(n) "vmovdqu " #n "*32(%[in]), %%ymm" #n "\n"
#define STORE_YMM(n) "vmovdqu %%ymm" #n ", " #n "*32(%[out])\n"
#define LOAD_ZMM(n, i) "vmovdqu64 " #i "*64+512(%[in]), %%zmm" #n "\n"
#define STORE_ZMM(n, i) "vmovdqu64 %%zmm" #n ", " #i "*64+512(%[out])\n"

/* Load ymm0-15 (and zmm16-31) from in, block in read(fd, 1 byte), store them to out. */
#define VECTOR_READ_OPERANDS                                                                \
  : "=a"(ret)                                                                               \
  : "a"((long)SYS_read), "D"((long)fd), "S"(&byte), "d"(1L), [in] "r"(in), [out] "r"(out) \
  : "rcx", "r11", "memory", "xmm0", "xmm1", "xmm2", "xmm3", "xmm4", "xmm5", "xmm6", "xmm7", "xmm8", "xmm9", "xmm10", \
    "xmm11", "xmm12", "xmm13", "xmm14", "xmm15"
#define LOAD_YMM_ALL LOAD_YMM(0) LOAD_YMM(1) LOAD_YMM(2) LOAD_YMM(3) LOAD_YMM(4) LOAD_YMM(5) LOAD_YMM(6) LOAD_YMM(7) \
  LOAD_YMM(8) LOAD_YMM(9) LOAD_YMM(10) LOAD_YMM(11) LOAD_YMM(12) LOAD_YMM(13) LOAD_YMM(14) LOAD_YMM(15)
#define STORE_YMM_ALL STORE_YMM(0) STORE_YMM(1) STORE_YMM(2) STORE_YMM(3) STORE_YMM(4) STORE_YMM(5) STORE_YMM(6) \
  STORE_YMM(7) STORE_YMM(8) STORE_YMM(9) STORE_YMM(10) STORE_YMM(11) STORE_YMM(12) STORE_YMM(13) STORE_YMM(14) STORE_YMM(15)

static __attribute__((noinline)) long vector_read_ymm(int fd, const unsigned char *in, unsigned char *out) {
  long ret;
  char byte;
  __asm__ volatile(LOAD_YMM_ALL "syscall\n" STORE_YMM_ALL "vzeroupper\n" VECTOR_READ_OPERANDS);
  return ret;
}

static __attribute__((noinline, target("avx512f"))) long vector_read_zmm(int fd, const unsigned char *in,
                                                                        unsigned char *out) {
  long ret;
  char byte;
  __asm__ volatile(LOAD_YMM_ALL
                   LOAD_ZMM(16, 0) LOAD_ZMM(17, 1) LOAD_ZMM(18, 2) LOAD_ZMM(19, 3) LOAD_ZMM(20, 4) LOAD_ZMM(21, 5)
                   LOAD_ZMM(22, 6) LOAD_ZMM(23, 7) LOAD_ZMM(24, 8) LOAD_ZMM(25, 9) LOAD_ZMM(26, 10) LOAD_ZMM(27, 11)
                   LOAD_ZMM(28, 12) LOAD_ZMM(29, 13) LOAD_ZMM(30, 14) LOAD_ZMM(31, 15)
                   "syscall\n"
                   STORE_YMM_ALL
                   STORE_ZMM(16, 0) STORE_ZMM(17, 1) STORE_ZMM(18, 2) STORE_ZMM(19, 3) STORE_ZMM(20, 4) STORE_ZMM(21, 5)
                   STORE_ZMM(22, 6) STORE_ZMM(23, 7) STORE_ZMM(24, 8) STORE_ZMM(25, 9) STORE_ZMM(26, 10) STORE_ZMM(27, 11)
                   STORE_ZMM(28, 12) STORE_ZMM(29, 13) STORE_ZMM(30, 14) STORE_ZMM(31, 15)
                   "vzeroupper\n"
                   VECTOR_READ_OPERANDS, "xmm16", "xmm17", "xmm18", "xmm19", "xmm20", "xmm21", "xmm22", "xmm23", "xmm24",
                   "xmm25", "xmm26", "xmm27", "xmm28", "xmm29", "xmm30", "xmm31");
  return ret;
}

static long vector_read(int fd, int zmm, const unsigned char *in, unsigned char *out) {
  return zmm ? vector_read_zmm(fd, in, out) : vector_read_ymm(fd, in, out);
}

/* One side of the ping-pong: returns how many rounds came back different, or -1. */
static int vector_side(int rfd, int wfd, int zmm, unsigned seed, int rounds, int writes_first, char *why, size_t whylen) {
  unsigned char in[512 + 1024], out[512 + 1024];
  size_t size = zmm ? sizeof in : 512;
  int bad = 0;
  for (int r = 0; r < rounds; r++) {
    for (size_t i = 0; i < size; i++) in[i] = (unsigned char)(seed * 131 + (unsigned)r * 7 + i * 13);
    char token = 'v';
    if (writes_first && write(wfd, &token, 1) != 1) return -1;
    if (vector_read(rfd, zmm, in, out) != 1) return -1;
    if (memcmp(in, out, size) != 0) {
      size_t first = 0;
      while (in[first] == out[first]) first++;
      if (!bad) snprintf(why, whylen, "round %d: byte %zu (%s%zu) is %#x, want %#x", r, first,
                         first < 512 ? "ymm" : "zmm", first < 512 ? first / 32 : 16 + (first - 512) / 64,
                         out[first], in[first]);
      bad++;
    }
    if (!writes_first && write(wfd, &token, 1) != 1) return -1;
  }
  return bad;
}

static void part_vector(int rounds) {
  uint64_t xcr0 = xcr0_if_enabled();
  int ymm = (xcr0 & 0x6) == 0x6, zmm = ymm && (xcr0 & 0xe0) == 0xe0;
  if (!ymm) {
    report("vector", 1, "AVX state not enabled (xcr0 %#llx): nothing beyond xmm to check", (unsigned long long)xcr0);
    return;
  }
  int p[2], q[2], w[2];
  if (pipe(p) || pipe(q) || pipe(w)) { report("vector", 0, "pipe"); return; }
  pid_t pid = fork();
  char why[200] = "";
  if (pid == 0) {
    int bad = vector_side(p[0], q[1], zmm, 2, rounds, 0, why, sizeof why);
    write_all(w[1], why, sizeof why);
    _exit(bad ? 1 : 0);
  }
  int bad = vector_side(q[0], p[1], zmm, 1, rounds, 1, why, sizeof why);
  int status = 0;
  waitpid(pid, &status, 0);
  char childWhy[200] = "";
  if (read(w[0], childWhy, sizeof childWhy) < 0) childWhy[0] = 0;
  report("vector", bad == 0 && WIFEXITED(status) && WEXITSTATUS(status) == 0, "xcr0 %#llx, %s, %d rounds each%s%s%s%s",
         (unsigned long long)xcr0, zmm ? "ymm0-15 and zmm16-31" : "ymm0-15", rounds, why[0] ? "; " : "", why,
         childWhy[0] ? "; child: " : "", childWhy);
  close(p[0]); close(p[1]); close(q[0]); close(q[1]); close(w[0]); close(w[1]);
}

int main(int argc, char **argv) {
  int scale = argc > 1 ? atoi(argv[1]) : 1;
  if (scale < 1) scale = 1;
  setvbuf(stdout, 0, _IOLBF, 0);
  signal(SIGPIPE, SIG_IGN);
  part_registers(500 * scale, 1);
  part_registers(50 * scale, 65536);
  part_pipeline((size_t)4 << 20);
  part_fork_exec(20 * scale);
  part_threads(4);
  part_signals(50 * scale);
  part_sigpipe();
  part_arch_prctl(200 * scale);
  part_yield(2000 * scale);
  part_vector(500 * scale);
  printf("torture: summary %d passed, %d failed\n", passes, failures);
  return failures ? 1 : 0;
}
