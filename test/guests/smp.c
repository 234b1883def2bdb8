/* SMP: wake every AP with INIT-SIPI-SIPI through the local APIC; each reports in. */
#include "runtime/guest.h"

#define LAPIC 0xfee00000ull
#define LAPIC_SVR 0xf0
#define LAPIC_ICR_LOW 0x300
#define LAPIC_ICR_HIGH 0x310

extern uint32_t ap_cr3;
extern uint64_t ap_stack_next;
extern char ap_trampoline[];
extern char __trampoline_load[], __trampoline_start[], __trampoline_end[];

static volatile uint32_t lock;
static volatile uint32_t online = 1;
static char ap_stacks[8 * 4096] __attribute__((aligned(4096)));

static void spin_lock(void) { while (__atomic_exchange_n(&lock, 1, __ATOMIC_ACQUIRE)) cpu_relax(); }
static void spin_unlock(void) { __atomic_store_n(&lock, 0, __ATOMIC_RELEASE); }

static uint32_t apic_id(void) { return mmio_read32(LAPIC + 0x20) >> 24; }

void ap_main(void) {
  spin_lock();
  serial_puts("hyve-guest: cpu ");
  serial_put_dec(apic_id());
  serial_puts(" online\n");
  spin_unlock();
  __atomic_add_fetch(&online, 1, __ATOMIC_SEQ_CST);
}

static void send_ipi(uint32_t dest, uint32_t icr) {
  mmio_write32(LAPIC + LAPIC_ICR_HIGH, dest << 24);
  mmio_write32(LAPIC + LAPIC_ICR_LOW, icr);
  while (mmio_read32(LAPIC + LAPIC_ICR_LOW) & (1u << 12)) cpu_relax();  /* delivery status */
}

void guest_main(void* boot_params) {
  /* The CPU count is the word after the marker on the command line ("cpus=N"). */
  const char* cmdline = (const char*)(uint64_t)*(uint32_t*)((char*)boot_params + 0x228);
  unsigned cpus = 1;
  for (const char* p = cmdline; *p; p++) {
    if (p[0] == 'c' && p[1] == 'p' && p[2] == 'u' && p[3] == 's' && p[4] == '=') cpus = (unsigned)(p[5] - '0');
  }
  /* Copy the real-mode trampoline to where SIPI can point (it is linked at 0x10000). */
  for (char *src = __trampoline_load, *dst = __trampoline_start; dst < __trampoline_end;) *dst++ = *src++;
  uint64_t cr3;
  __asm__ volatile("mov %%cr3, %0" : "=r"(cr3));
  ap_cr3 = (uint32_t)cr3;
  ap_stack_next = (uint64_t)ap_stacks;
  mmio_write32(LAPIC + LAPIC_SVR, 0x1ff);  /* software-enable the local APIC */
  spin_lock();
  serial_puts("hyve-guest: cpu ");
  serial_put_dec(apic_id());
  serial_puts(" online (bsp)\n");
  spin_unlock();
  uint32_t vector = (uint32_t)((uint64_t)ap_trampoline >> 12);
  for (unsigned cpu = 1; cpu < cpus; cpu++) {
    send_ipi(cpu, 0x00004500);            /* INIT, assert */
    send_ipi(cpu, 0x00004600 | vector);   /* STARTUP */
    send_ipi(cpu, 0x00004600 | vector);   /* STARTUP again, as the MP spec says */
  }
  while (online < cpus) cpu_relax();
  serial_puts("hyve-guest: all ");
  serial_put_dec(cpus);
  serial_puts(" cpus online\n");
}
