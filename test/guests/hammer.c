/* A guest that hammers every device at random: port I/O on the UARTs, RTC, i8042, ACPI PM
 * and PCI configuration space, and MMIO on the HPET and on every memory BAR it finds on bus
 * 0 (virtio common config, notify and device registers, AHCI ports), with random values
 * and random guest RAM behind whatever addresses those registers take (rings, command
 * lists, PRDTs). A fixed seed makes each run the same. Writes that would end the VM on
 * purpose are left out: S5 through PM1a_CNT, a reset through 0xCF9 or the i8042, and
 * anything that can make an interrupt message of the guest's choosing (the local APIC,
 * MSI/MSI-X capabilities, HPET timer routing): an INIT sent to itself would stop the guest
 * for good, which tests the guest, not the VMM. PCI configuration writes stay in the
 * header (command, status, BARs, interrupt line). After each round it prints "hyve-guest: round N", so the
 * test can watch the VMM's memory between rounds; then it powers off. */
#include "runtime/guest.h"

#define ROUNDS 8
#define OPS_PER_ROUND 6000
#define SCRATCH 0x1000000ull   /* 1 MiB of random bytes: what rings and tables point into */
#define SCRATCH_SIZE 0x100000ull
#define MAX_BARS 32

static uint64_t state = 0x9e3779b97f4a7c15ull;

static uint64_t next(void) { /* xorshift64 */
  state ^= state << 13;
  state ^= state >> 7;
  state ^= state << 17;
  return state;
}

static uint32_t pci_address(unsigned dev, unsigned fn, unsigned off) {
  return 0x80000000u | (dev << 11) | (fn << 8) | (off & 0xfc);
}
static uint32_t pci_read(unsigned dev, unsigned fn, unsigned off) {
  outl(0xcf8, pci_address(dev, fn, off));
  return inl(0xcfc);
}

struct bar {
  uint64_t base;
  uint32_t size;
};
static struct bar bars[MAX_BARS];
static unsigned bar_count;

/* Every memory BAR on bus 0, with its size (probed the way firmware does, then restored). */
static void find_bars(void) {
  for (unsigned dev = 0; dev < 32; dev++) {
    if ((pci_read(dev, 0, 0) & 0xffff) == 0xffff) continue;
    for (unsigned i = 0; i < 6 && bar_count < MAX_BARS; i++) {
      unsigned off = 0x10 + 4 * i;
      uint32_t low = pci_read(dev, 0, off);
      if (low & 1) continue; /* I/O BAR */
      int is64 = ((low >> 1) & 3) == 2;
      uint32_t high = is64 ? pci_read(dev, 0, off + 4) : 0;
      outl(0xcf8, pci_address(dev, 0, off));
      outl(0xcfc, 0xffffffffu);
      uint32_t mask = inl(0xcfc) & ~0xfu;
      outl(0xcfc, low);
      uint64_t base = ((uint64_t)high << 32) | (low & ~0xfu);
      if (mask && base) bars[bar_count++] = (struct bar){base, ~mask + 1};
      if (is64) i++;
    }
  }
}

/* A value for a register: random, or an address into the scratch area, or a small number.
 * A random one never lands below the scratch area, where the guest's code, stack, GDT and
 * page tables are: a device told to write there (a ring, a received-FIS area) would crash
 * the guest at a moment that depends on the host's timing, which tests the guest, not the
 * VMM. */
static uint32_t value(void) {
  uint64_t r = next();
  switch (r & 3) {
    case 0: return (uint32_t)(SCRATCH + ((r >> 8) % SCRATCH_SIZE));
    case 1: return (uint32_t)((r >> 8) & 0xff);
    default: {
      uint32_t v = (uint32_t)(r >> 16);
      return v < SCRATCH ? (uint32_t)(SCRATCH + v % SCRATCH_SIZE) : v;
    }
  }
}

static void port_op(void) {
  static const uint16_t ports[] = {0x3f8, 0x3f9, 0x3fa, 0x3fb, 0x3fc, 0x3fd, 0x3fe, 0x3ff, 0x2f8, 0x2f9, 0x2fb,
                                   0x2fc, 0x70, 0x71, 0x60, 0x64, 0x600, 0x601, 0x602, 0x603, 0x604, 0x605,
                                   0x608, 0x609, 0x60a, 0x60b, 0xcf9, 0xcf8, 0xcfc, 0xcfd, 0xcfe, 0xcff};
  uint64_t r = next();
  uint16_t port = ports[r % (sizeof ports / sizeof ports[0])];
  uint32_t v = value();
  if (!((r >> 8) & 1)) {
    (void)inb(port);
    return;
  }
  if (port == 0x64 && (v & 0xf0) == 0xf0) v = 0x20;   /* pulse output lines: a reset */
  if (port == 0x604 || port == 0x605) v &= ~0x20u;    /* SLP_EN (bit 13 of PM1a_CNT) */
  if (port == 0xcf9) v &= ~0x04u;                     /* RST */
  if (port == 0xcf8) {
    /* A header register of a random function: BARs may move, decoding may switch off. */
    outl(0xcf8, pci_address((unsigned)(r >> 16) % 32, 0, (unsigned)(r >> 24) & 0x3c));
    return;
  }
  outb(port, (uint8_t)v);
}

static void mmio_op(void) {
  uint64_t r = next();
  if (bar_count == 0 || (r & 7) == 0) {
    /* HPET: reads anywhere; writes to the configuration and the counter only. */
    if ((r >> 48) & 1) {
      (void)mmio_read32(0xfed00000 + ((r >> 16) % 0x400 & ~3ull));
    } else {
      mmio_write32((r >> 20) & 1 ? 0xfed00010 : 0xfed000f0, value());
    }
    return;
  }
  const struct bar* b = &bars[(r >> 3) % bar_count];
  uint64_t at = b->base + (((r >> 16) % b->size) & ~3ull);
  if ((r >> 48) & 1) {
    (void)mmio_read32(at);
  } else {
    mmio_write32(at, value());
  }
}

/* The UART as the runtime's serial_putc() expects it: 8N1, no divisor latch, no loopback. */
static void uart_sane(void) {
  outb(0x3fb, 0x03);
  outb(0x3fc, 0x03);
  outb(0x3f9, 0x00);
}

void guest_main(void* boot_params) {
  (void)boot_params;
  for (uint64_t a = 0; a < SCRATCH_SIZE; a += 8) *(volatile uint64_t*)(SCRATCH + a) = next();
  find_bars();
  serial_puts("hyve-guest: bars ");
  serial_put_dec(bar_count);
  serial_putc('\n');
  for (unsigned round = 1; round <= ROUNDS; round++) {
    for (unsigned i = 0; i < OPS_PER_ROUND; i++) {
      if (next() & 1) port_op();
      else mmio_op();
      if ((i & 255) == 0) *(volatile uint64_t*)(SCRATCH + (next() % SCRATCH_SIZE & ~7ull)) = next();
    }
    uart_sane();
    serial_puts("\nhyve-guest: round ");
    serial_put_dec(round);
    serial_putc('\n');
  }
  uart_sane();
  serial_puts("hyve-guest: hammer done\n");
  guest_poweroff();
}
