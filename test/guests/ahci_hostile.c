/* AHCI: drive the HBA's port the way a hostile driver would (PRDT entries outside RAM and in
 * the PCI hole, a command table outside RAM, no PRDT or a too-short PRDT for a read, a
 * 128 KiB read into 512 bytes, a bad command FIS length, LBAs past the end, every slot at once, commands
 * issued to a stopped port) and print what the port's registers report; then show the
 * port still works. Finds the first 8086:2821 function on bus 0. */
#include "runtime/guest.h"

#define CLB 0x1000000ull
#define FB 0x1001000ull
#define TABLE 0x1002000ull
#define DATA 0x1100000ull

static uint64_t abar;

static uint32_t pci_read(unsigned dev, unsigned off) {
  outl(0xcf8, 0x80000000u | (dev << 11) | (off & 0xfc));
  return inl(0xcfc);
}
static void pci_write(unsigned dev, unsigned off, uint32_t v) {
  outl(0xcf8, 0x80000000u | (dev << 11) | (off & 0xfc));
  outl(0xcfc, v);
}
static uint32_t port(unsigned reg) { return mmio_read32(abar + 0x100 + reg); }
static void set_port(unsigned reg, uint32_t v) { mmio_write32(abar + 0x100 + reg, v); }
static void put32(uint64_t a, uint32_t v) { *(volatile uint32_t*)a = v; }
static uint32_t get32(uint64_t a) { return *(volatile uint32_t*)a; }

static void start(void) {
  set_port(0x00, (uint32_t)CLB);
  set_port(0x04, 0);
  set_port(0x08, (uint32_t)FB);
  set_port(0x0c, 0);
  set_port(0x18, 1u << 4);             /* FRE */
  set_port(0x18, 1u << 4 | 1u << 0);   /* FRE | ST */
}

/* Slot `slot`: a Register H2D FIS with `command` at `table`, and `prds` PRD entries at
 * (address, bytes) pairs. */
static void build(unsigned slot, uint64_t table, unsigned fis_dwords, uint8_t command, uint64_t lba, uint16_t count,
                  unsigned prds, const uint64_t* prd) {
  for (unsigned i = 0; i < 0x80 / 4; i++) put32(table + 4 * i, 0);
  put32(table, 0x27u | 0x80u << 8 | (uint32_t)command << 16);
  put32(table + 4, (uint32_t)(lba & 0xffffff) | 0x40u << 24);
  put32(table + 8, (uint32_t)(lba >> 24) & 0xffffff);
  put32(table + 12, count);
  for (unsigned i = 0; i < prds; i++) {
    put32(table + 0x80 + 16 * i, (uint32_t)prd[2 * i]);
    put32(table + 0x84 + 16 * i, (uint32_t)(prd[2 * i] >> 32));
    put32(table + 0x88 + 16 * i, 0);
    put32(table + 0x8c + 16 * i, (uint32_t)(prd[2 * i + 1] - 1));
  }
  uint64_t header = CLB + 32 * slot;
  put32(header, fis_dwords | prds << 16);
  put32(header + 4, 0);
  put32(header + 8, (uint32_t)table);
  put32(header + 12, (uint32_t)(table >> 32));
}

/* Issues `slots`, prints what the port reports, and resets the port's error state. */
static void run(const char* name, uint32_t slots) {
  set_port(0x38, slots);
  serial_puts("hyve-guest: ahci ");
  serial_puts(name);
  serial_puts(" is ");
  serial_put_hex(port(0x10));
  serial_puts(" serr ");
  serial_put_hex(port(0x30));
  serial_puts(" tfd ");
  serial_put_hex(port(0x20));
  serial_puts(" ci ");
  serial_put_hex(port(0x38));
  serial_puts(" prdbc ");
  serial_put_dec(get32(CLB + 4));
  serial_putc('\n');
  set_port(0x30, ~0u);
  set_port(0x10, ~0u);
  set_port(0x18, 1u << 4);  /* ST off: drops the issued commands and the error stop */
  start();
}

void guest_main(void* boot_params) {
  (void)boot_params;
  unsigned dev = 0;
  for (; dev < 32; dev++) {
    if (pci_read(dev, 0) == 0x28218086) break;
  }
  if (dev == 32) {
    serial_puts("hyve-guest: no AHCI controller\n");
    guest_poweroff();
  }
  abar = pci_read(dev, 0x24) & ~0xfull;
  pci_write(dev, 0x04, 0x6);  /* memory decoding, bus mastering */
  serial_puts("hyve-guest: ahci cap ");
  serial_put_hex(mmio_read32(abar));
  serial_puts(" sig ");
  serial_put_hex(port(0x24));
  serial_puts(" ssts ");
  serial_put_hex(port(0x28));
  serial_putc('\n');
  start();

  uint64_t good[] = {DATA, 512};
  build(0, TABLE, 5, 0xec, 0, 0, 1, good);
  run("identify", 1);

  uint64_t far[] = {1ull << 40, 512};
  build(0, TABLE, 5, 0x25, 0, 1, 1, far);
  run("prd-beyond-ram", 1);

  uint64_t hole[] = {0xfee00000ull, 512};  /* the local APIC, not RAM */
  build(0, TABLE, 5, 0x25, 0, 1, 1, hole);
  run("prd-in-pci-hole", 1);

  uint64_t straddle[] = {(64ull << 20) - 256, 512};  /* runs off the end of 64 MiB of RAM */
  build(0, TABLE, 5, 0x25, 0, 1, 1, straddle);
  run("prd-straddles-end", 1);

  build(0, TABLE, 5, 0x25, 0, 1, 1, good);
  put32(CLB + 8, 0xfffff000u);  /* the command table outside RAM */
  run("table-outside-ram", 1);

  build(0, TABLE, 5, 0x25, 0, 1, 0, good);
  run("no-prdt", 1);

  build(0, TABLE, 5, 0xc8, 0, 0, 1, good);  /* READ DMA, count 0: 256 sectors into 512 bytes */
  run("oversized-count", 1);

  build(0, TABLE, 5, 0x25, 1ull << 40, 1, 1, good);
  run("lba-past-end", 1);

  build(0, TABLE, 0, 0xec, 0, 0, 1, good);
  run("fis-length-0", 1);

  build(0, TABLE, 5, 0xec, 0, 0, 1, good);
  set_port(0x18, 1u << 4);  /* stopped: an issue is ignored */
  set_port(0x38, 1);
  serial_puts("hyve-guest: ahci stopped-port ci ");
  serial_put_hex(port(0x38));
  serial_putc('\n');
  start();

  for (unsigned slot = 0; slot < 32; slot++) build(slot, TABLE + 0x1000ull * slot, 5, 0x25, 0, 1, 1, far);
  run("all-slots", ~0u);

  build(0, TABLE, 5, 0xec, 0, 0, 1, good);
  run("recovered", 1);
  serial_puts("hyve-guest: ahci done\n");
  guest_poweroff();
}
