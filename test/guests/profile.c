/* Profiler targets, picked by the kernel command line.
 * "spin": spins in profile_spin (called by profile_middle, called by profile_outer, all
 * with frame pointers) until the host types a byte, then powers off.
 * "hostile": waits for a byte in each of several phases with RBP pointing somewhere a
 * frame walker must not follow: unmapped, outside RAM, non-canonical, a frame that points
 * to itself, a two-frame loop, a chain far deeper than any walk, and a page table whose
 * entry points outside RAM. Prints "hyve-guest: phase N" before each wait.
 * "count": a fixed loop in kernel mode, then poweroff (the profiler's overhead). */
#include "runtime/guest.h"

#define WITH_FRAMES __attribute__((noinline, optimize("no-omit-frame-pointer", "no-optimize-sibling-calls")))

/* Called now and then, so that profile_spin is not a leaf: GCC omits the frame of leaf
 * functions even where frame pointers are asked for. */
__attribute__((noinline)) void profile_pause(void) { cpu_relax(); }

WITH_FRAMES void profile_spin(void) {
  for (unsigned n = 1; !(inb(0x3fd) & 1); n++) {
    if (n % 4096 == 0) profile_pause();
  }
  __asm__ volatile("" ::: "memory");
}

WITH_FRAMES void profile_middle(void) {
  profile_spin();
  __asm__ volatile("" ::: "memory");
}

WITH_FRAMES void profile_outer(void) {
  profile_middle();
  __asm__ volatile("" ::: "memory");
}

/* hostile_wait(rbp): waits for a console byte with RBP = rbp. */
void hostile_wait(uint64_t rbp);
__asm__(
    ".text\n"
    ".globl hostile_wait\n"
    ".type hostile_wait, @function\n"
    "hostile_wait:\n"
    "  push %rbp\n"
    "  mov %rdi, %rbp\n"
    "1: mov $0x3fd, %dx\n"
    "  in %dx, %al\n"
    "  test $1, %al\n"
    "  jnz 2f\n"
    "  pause\n"
    "  jmp 1b\n"
    "2: pop %rbp\n"
    "  ret\n"
    ".size hostile_wait, . - hostile_wait\n");

static int has_word(const char* cmdline, const char* w) {
  for (const char* s = cmdline; *s; s++) {
    const char* a = s;
    const char* b = w;
    while (*b && *a == *b) a++, b++;
    if (!*b && (*a == 0 || *a == ' ') && (s == cmdline || s[-1] == ' ')) return 1;
  }
  return 0;
}

static uint64_t self_loop[2] __attribute__((aligned(16)));
static uint64_t pair_a[2] __attribute__((aligned(16)));
static uint64_t pair_b[2] __attribute__((aligned(16)));
static uint64_t chain[4096][2] __attribute__((aligned(16)));
static uint64_t pml4_copy[512] __attribute__((aligned(4096)));

static unsigned phase_number;
static void phase(uint64_t rbp) {
  serial_puts("hyve-guest: phase ");
  serial_put_dec(++phase_number);
  serial_puts("\n");
  hostile_wait(rbp);
  (void)serial_getc();
}

static void hostile(void) {
  const uint64_t ret = (uint64_t)&hostile_wait + 4;
  phase(0x0000700000000000ull);   /* canonical, not mapped by the identity tables */
  phase(0xc0000000ull);           /* mapped (identity, 4 GiB), but not RAM */
  phase(0x8000000000000000ull);   /* non-canonical */
  phase(0xfffffffffffffff8ull);   /* canonical, the frame's second word wraps */
  self_loop[0] = (uint64_t)self_loop;
  self_loop[1] = ret;
  phase((uint64_t)self_loop);
  pair_a[0] = (uint64_t)pair_b, pair_a[1] = ret;
  pair_b[0] = (uint64_t)pair_a, pair_b[1] = ret;
  phase((uint64_t)pair_a);
  for (unsigned i = 0; i < 4096; i++) {
    chain[i][0] = i + 1 < 4096 ? (uint64_t)chain[i + 1] : 0;
    chain[i][1] = ret;
  }
  phase((uint64_t)chain);
  /* A page table entry pointing outside RAM: PML4 slot 200 -> a "PDPT" at 1 TiB. */
  uint64_t cr3;
  __asm__ volatile("mov %%cr3, %0" : "=r"(cr3));
  const uint64_t* pml4 = (const uint64_t*)(cr3 & ~0xfffull);
  for (unsigned i = 0; i < 512; i++) pml4_copy[i] = pml4[i];
  pml4_copy[200] = 0x10000000000ull | 3;
  __asm__ volatile("mov %0, %%cr3" ::"r"((uint64_t)pml4_copy) : "memory");
  phase(200ull << 39);
  __asm__ volatile("mov %0, %%cr3" ::"r"(cr3) : "memory");
}

void guest_main(void* boot_params) {
  const char* cmdline = (const char*)(uint64_t)*(uint32_t*)((char*)boot_params + 0x228);
  if (has_word(cmdline, "count")) {  /* a fixed amount of kernel-mode work, for overhead figures */
    for (volatile uint64_t i = 0; i < 300000; i++) {
    }
    serial_puts("hyve-guest: count done\n");
  } else if (has_word(cmdline, "hostile")) {
    hostile();
    serial_puts("hyve-guest: hostile done\n");
  } else {
    serial_puts("hyve-guest: spinning\n");
    profile_outer();
    (void)serial_getc();
    serial_puts("hyve-guest: spin done\n");
  }
  guest_poweroff();
}
