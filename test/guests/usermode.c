/* User mode: drop to CPL3 with iretq, come back through syscall (sysretq returns),
 * int 0x80 and a #UD. On PVM hosts these transitions go through hyve's fixup layer. */
#include "runtime/guest.h"

struct __attribute__((packed)) table_ptr { uint16_t limit; uint64_t base; };
struct __attribute__((packed)) idt_gate {
  uint16_t offset_low, selector;
  uint8_t ist, type_attr;
  uint16_t offset_mid;
  uint32_t offset_high, zero;
};
struct __attribute__((packed)) tss64 {
  uint32_t reserved0;
  uint64_t rsp0, rsp1, rsp2, reserved1, ist[7], reserved2;
  uint16_t reserved3, iomap_base;
};

#define KCODE 0x08
#define KDATA 0x10
#define UCODE32 0x18
#define UDATA 0x20
#define UCODE 0x28
#define TSS_SEL 0x30

static uint64_t gdt[8] __attribute__((aligned(16)));
static struct idt_gate idt[256] __attribute__((aligned(16)));
static struct tss64 tss __attribute__((aligned(16)));
static uint64_t pml4[512] __attribute__((aligned(4096)));
static uint64_t pdpt[512] __attribute__((aligned(4096)));
static uint64_t pd[512] __attribute__((aligned(4096)));
static char kernel_stack[8192] __attribute__((aligned(16)));
static char user_stack[8192] __attribute__((aligned(16)));

struct frame { uint64_t vector, error, rip, cs, rflags, rsp, ss; };

extern uint64_t probe[4];
void trap_common(struct frame* f) {
  serial_puts("hyve-guest: trap ");
  serial_put_dec(f->vector);
  serial_puts(" error ");
  serial_put_hex(f->error);
  serial_puts(" from cpl ");
  serial_put_dec(f->cs & 3);
  serial_puts(" rip ");
  serial_put_hex(f->rip);
  serial_putc('\n');
  if (f->vector == 0x80) return;  /* int 0x80: back to user mode */
  if (probe[0]) {
    serial_puts("hyve-guest: after syscall cs ");
    serial_put_hex(probe[0]);
    serial_puts(" rcx ");
    serial_put_hex(probe[1]);
    serial_puts(" r11 ");
    serial_put_hex(probe[2]);
    serial_puts(" rflags ");
    serial_put_hex(probe[3]);
    serial_putc('\n');
  }
  if (f->vector == 6 && (f->cs & 3) == 3) {
    serial_puts("hyve-guest: usermode done\n");
    guest_poweroff();
  }
  serial_puts("hyve-guest: unexpected trap at ");
  serial_put_hex(f->rip);
  serial_putc('\n');
  guest_poweroff();
}

void syscall_entry_c(uint64_t number) {
  uint16_t cs;
  __asm__ volatile("mov %%cs, %0" : "=r"(cs));
  serial_puts("hyve-guest: syscall ");
  serial_put_dec(number);
  serial_puts(" at cpl ");
  serial_put_dec(cs & 3);
  serial_putc('\n');
}

/* Trap stubs: push a fake error code where the CPU does not, then the vector. */
#define STUB(n, push_error) \
  __asm__(".text\n.globl trap_" #n "\ntrap_" #n ":\n" push_error "  pushq $" #n "\n  jmp trap_entry\n");
#define NO_ERROR "  pushq $0\n"
#define CPU_ERROR ""
STUB(3, NO_ERROR) STUB(6, NO_ERROR) STUB(8, CPU_ERROR) STUB(13, CPU_ERROR) STUB(14, CPU_ERROR) STUB(128, NO_ERROR)
extern char trap_3[], trap_6[], trap_8[], trap_13[], trap_14[], trap_128[];

__asm__(".text\ntrap_entry:\n"
        "  push %rax; push %rcx; push %rdx; push %rsi; push %rdi; push %r8; push %r9; push %r10; push %r11\n"
        "  lea 72(%rsp), %rdi\n"
        "  call trap_common\n"
        "  pop %r11; pop %r10; pop %r9; pop %r8; pop %rdi; pop %rsi; pop %rdx; pop %rcx; pop %rax\n"
        "  add $16, %rsp\n"
        "  iretq\n");

/* syscall: the kernel stack is ours to pick (no swapgs games: one CPU, no user GS). */
uint64_t probe[4];
__asm__(".text\n.globl probe_entry\nprobe_entry:\n"
        "  mov %cs, %r12\n  mov %r12, probe(%rip)\n  mov %rcx, probe+8(%rip)\n  mov %r11, probe+16(%rip)\n"
        "  pushfq\n  pop %r12\n  mov %r12, probe+24(%rip)\n  ud2\n");
extern char probe_entry[];
__asm__(".text\n.globl syscall_entry\nsyscall_entry:\n"
        "  mov %rsp, %r12\n"
        "  lea kernel_stack+8192(%rip), %rsp\n"
        "  push %rcx; push %r11\n"
        "  mov %rax, %rdi\n"
        "  call syscall_entry_c\n"
        "  pop %r11; pop %rcx\n"
        "  mov %r12, %rsp\n"
        "  sysretq\n");
extern char syscall_entry[];

__asm__(".text\n.globl user_int80\nuser_int80:\n  int $0x80\n  ud2\n"
        ".globl user_syscall\nuser_syscall:\n  mov $42, %eax\n  syscall\n  ud2\n"
        ".globl user_cli\nuser_cli:\n  cli\n  ud2\n"
        ".globl user_int3\nuser_int3:\n  int3\n  ud2\n");
extern char user_int80[], user_syscall[], user_cli[], user_int3[];

static void set_gate(int vector, void* handler, int dpl) {
  uint64_t a = (uint64_t)handler;
  idt[vector] = (struct idt_gate){(uint16_t)a, KCODE, 0, (uint8_t)(0x8e | (dpl << 5)), (uint16_t)(a >> 16),
                                  (uint32_t)(a >> 32), 0};
}

static void wrmsr(uint32_t msr, uint64_t v) {
  __asm__ volatile("wrmsr" ::"c"(msr), "a"((uint32_t)v), "d"((uint32_t)(v >> 32)));
}
static uint64_t rdmsr(uint32_t msr) {
  uint32_t lo, hi;
  __asm__ volatile("rdmsr" : "=a"(lo), "=d"(hi) : "c"(msr));
  return ((uint64_t)hi << 32) | lo;
}

void guest_main(void* boot_params) {
  const char* cmdline = (const char*)(uint64_t)*(uint32_t*)((char*)boot_params + 0x228);
  char* user_code = user_syscall;
  if (cmdline[0] == 'i' && cmdline[3] == '8') user_code = user_int80;
  if (cmdline[0] == 'c') user_code = user_cli;
  if (cmdline[0] == 'i' && cmdline[3] == '3') user_code = user_int3;
  /* Page tables identical to the loader's but user-accessible: 1 GiB of 2 MiB pages. */
  for (int i = 0; i < 512; i++) pd[i] = ((uint64_t)i << 21) | 0x87;  /* P RW US PS */
  pdpt[0] = (uint64_t)pd | 0x7;
  pml4[0] = (uint64_t)pdpt | 0x7;
  __asm__ volatile("mov %0, %%cr3" ::"r"(pml4) : "memory");

  gdt[1] = 0x00af9a000000ffffull;  /* kernel code 64 */
  gdt[2] = 0x00cf92000000ffffull;  /* kernel data */
  gdt[3] = 0x00cffa000000ffffull;  /* user code 32 (STAR base) */
  gdt[4] = 0x00cff2000000ffffull;  /* user data */
  gdt[5] = 0x00affa000000ffffull;  /* user code 64 */
  uint64_t t = (uint64_t)&tss;
  gdt[6] = (sizeof(tss) - 1) | ((t & 0xffffff) << 16) | (0x89ull << 40) | (((t >> 24) & 0xff) << 56);
  gdt[7] = t >> 32;
  tss.rsp0 = (uint64_t)(kernel_stack + sizeof(kernel_stack));
  tss.iomap_base = sizeof(tss);
  struct table_ptr gp = {sizeof(gdt) - 1, (uint64_t)gdt};
  __asm__ volatile("lgdt %0\n"
                   "pushq $0x08\n lea 1f(%%rip), %%rax\n pushq %%rax\n lretq\n1:\n"
                   "mov $0x10, %%ax\n mov %%ax, %%ds\n mov %%ax, %%es\n mov %%ax, %%ss\n"
                   "mov $0x30, %%ax\n ltr %%ax\n" ::"m"(gp) : "rax", "memory");

  set_gate(3, trap_3, 3);
  set_gate(6, trap_6, 0);
  set_gate(8, trap_8, 0);
  set_gate(13, trap_13, 0);
  set_gate(14, trap_14, 0);
  set_gate(0x80, trap_128, 3);
  struct table_ptr ip = {sizeof(idt) - 1, (uint64_t)idt};
  __asm__ volatile("lidt %0" ::"m"(ip));

  wrmsr(0xc0000080, rdmsr(0xc0000080) | 1);                               /* EFER.SCE */
  wrmsr(0xc0000081, ((uint64_t)(UCODE32 | 3) << 48) | ((uint64_t)KCODE << 32));  /* STAR */
  wrmsr(0xc0000082, cmdline[0] == 'p' ? (uint64_t)probe_entry : (uint64_t)syscall_entry); /* LSTAR */
  wrmsr(0xc0000084, 0x200);                                                /* FMASK: IF */

  serial_puts("hyve-guest: entering user mode\n");
  __asm__ volatile("pushq %0\n pushq %1\n pushq $0x2\n pushq %2\n pushq %3\n iretq\n" ::"i"(UDATA | 3),
                   "r"((uint64_t)(user_stack + sizeof(user_stack))), "i"(UCODE | 3), "r"((uint64_t)user_code));
}
