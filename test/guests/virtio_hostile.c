/* A hostile virtio driver: drives the virtio-rng function at 00:03.0 through its modern
 * virtio-pci registers (no MSI-X, polling the used ring) with malformed rings: a descriptor
 * loop, a buffer outside RAM, a length near 4 GiB, an available index that jumps, a used
 * index the driver scribbles over, a queue size that is not a power of two. After each it
 * checks what the device reports (DEVICE_NEEDS_RESET and a configuration interrupt in the
 * ISR, or plain service), resets the device and checks that a good request works again.
 * Every line the test reads starts with "hyve-guest: ". */
#include "runtime/guest.h"

#define SLOT 3
#define QSIZE 8
#define NEXT 1
#define WRITE 2

struct desc {
  uint64_t addr;
  uint32_t len;
  uint16_t flags;
  uint16_t next;
};

static struct desc ring_desc[QSIZE] __attribute__((aligned(4096)));
static volatile uint16_t ring_avail[3 + QSIZE] __attribute__((aligned(4096)));
static volatile uint32_t ring_used[2 + 2 * QSIZE] __attribute__((aligned(4096)));
static uint8_t buffer[256] __attribute__((aligned(64)));

static uint64_t bar;  /* BAR 4: common config at +0, ISR at +0x1000, notify at +0x3000 */

static uint32_t pci_read(unsigned off) {
  outl(0xcf8, 0x80000000u | (SLOT << 11) | (off & 0xfc));
  return inl(0xcfc);
}
static void pci_write(unsigned off, uint32_t v) {
  outl(0xcf8, 0x80000000u | (SLOT << 11) | (off & 0xfc));
  outl(0xcfc, v);
}

static uint8_t r8(unsigned off) { return *(volatile uint8_t*)(bar + off); }
static void w8(unsigned off, uint8_t v) { *(volatile uint8_t*)(bar + off) = v; }
static void w16(unsigned off, uint16_t v) { *(volatile uint16_t*)(bar + off) = v; }
static void w32(unsigned off, uint32_t v) { *(volatile uint32_t*)(bar + off) = v; }
static void w64(unsigned off, uint64_t v) {
  w32(off, (uint32_t)v);
  w32(off + 4, (uint32_t)(v >> 32));
}

static uint16_t avail_idx;

static void say(const char* what) {
  serial_puts("hyve-guest: ");
  serial_puts(what);
}

/* Reset, negotiate VERSION_1, program queue 0 with `size` entries, DRIVER_OK. */
static void start(uint16_t size) {
  w8(0x14, 0);
  while (r8(0x14) != 0) cpu_relax();
  for (unsigned i = 0; i < QSIZE; i++) ring_desc[i] = (struct desc){0, 0, 0, 0};
  for (unsigned i = 0; i < 3 + QSIZE; i++) ring_avail[i] = 0;
  for (unsigned i = 0; i < 2 + 2 * QSIZE; i++) ring_used[i] = 0;
  avail_idx = 0;
  w8(0x14, 1 | 2);
  w32(0x08, 1);
  w32(0x0c, 1);  /* VERSION_1 (bit 32) */
  w8(0x14, 1 | 2 | 8);
  w16(0x16, 0);
  w16(0x18, size);
  w64(0x20, (uint64_t)ring_desc);
  w64(0x28, (uint64_t)ring_avail);
  w64(0x30, (uint64_t)ring_used);
  w16(0x1c, 1);
  w8(0x14, 1 | 2 | 4 | 8);
}

static void submit(uint16_t head, uint16_t step) {
  ring_avail[2 + avail_idx % QSIZE] = head;
  avail_idx = (uint16_t)(avail_idx + step);
  __asm__ volatile("mfence" ::: "memory");
  ring_avail[1] = avail_idx;
  __asm__ volatile("mfence" ::: "memory");
  w16(0x3000, 0);  /* queue 0's doorbell */
}

/* used->idx: the used ring is u16 flags, u16 idx, then { u32 id, u32 len } entries. */
static uint16_t used_idx(void) { return (uint16_t)(ring_used[0] >> 16); }

/* Waits (bounded) until the device used `want` entries or set NEEDS_RESET; returns the
 * status, 0xff on a timeout. The status is an MMIO exit, so it is read now and then. */
static uint8_t wait(uint16_t want) {
  for (uint64_t spins = 0; spins < 400000000ull; spins++) {
    if (used_idx() == want) return r8(0x14);
    if (spins % 4096 == 0 && (r8(0x14) & 0x40)) return r8(0x14);
    cpu_relax();
  }
  return 0xff;
}

/* A good 64-byte request must be served; returns 1 when it was. */
static int good(void) {
  ring_desc[0] = (struct desc){(uint64_t)buffer, 64, WRITE, 0};
  uint16_t before = used_idx();
  submit(0, 1);
  uint8_t status = wait((uint16_t)(before + 1));
  return status != 0xff && !(status & 0x40) && ring_used[2 + 2 * (before % QSIZE)] == 64;
}

/* After a malformed ring: NEEDS_RESET with the configuration bit in the ISR, then a reset
 * and a good request again. */
static void expect_reset(const char* name, uint8_t status) {
  say(name);
  serial_puts((status != 0xff && (status & 0x40)) ? ": needs-reset" : ": NO-RESET");
  serial_puts((r8(0x1000) & 2) ? " isr-config" : " no-isr-config");
  start(QSIZE);
  serial_puts(good() ? " recovered\n" : " BROKEN\n");
}

void guest_main(void* boot_params) {
  (void)boot_params;
  uint32_t id = pci_read(0);
  if (id != 0x10441af4u) {
    say("no virtio-rng at 00:03.0, id ");
    serial_put_hex(id);
    serial_putc('\n');
    guest_poweroff();
  }
  bar = ((uint64_t)pci_read(0x24) << 32) | (pci_read(0x20) & ~0xfu);
  pci_write(0x04, pci_read(0x04) | 0x6);  /* memory decode, bus master */

  start(QSIZE);
  say(good() ? "first request ok\n" : "first request FAILED\n");

  start(QSIZE);
  ring_desc[0] = (struct desc){(uint64_t)buffer, 16, NEXT | WRITE, 1};
  ring_desc[1] = (struct desc){(uint64_t)buffer + 16, 16, NEXT | WRITE, 0};
  submit(0, 1);
  expect_reset("descriptor loop", wait(1));

  start(QSIZE);
  ring_desc[0] = (struct desc){0x7ffffffff000ull, 64, WRITE, 0};
  submit(0, 1);
  expect_reset("address outside RAM", wait(1));

  start(QSIZE);
  ring_desc[0] = (struct desc){(uint64_t)buffer, 0xfffffff0u, WRITE, 0};
  submit(0, 1);
  expect_reset("length near 4 GiB", wait(1));

  start(QSIZE);
  ring_desc[0] = (struct desc){(uint64_t)buffer, 64, WRITE, 0};
  submit(0, 1000);  /* the available index jumps past the queue size */
  expect_reset("available index jump", wait(1));

  start(QSIZE);
  w8(0x14, 0);
  w8(0x14, 1 | 2);
  w32(0x08, 1);
  w32(0x0c, 1);
  w8(0x14, 1 | 2 | 8);
  w16(0x16, 0);
  w16(0x18, 3);  /* not a power of two */
  w64(0x20, (uint64_t)ring_desc);
  w64(0x28, (uint64_t)ring_avail);
  w64(0x30, (uint64_t)ring_used);
  w16(0x1c, 1);
  w8(0x14, 1 | 2 | 4 | 8);
  expect_reset("queue size 3", r8(0x14));

  /* The used index is the device's: a driver scribbling over it does not derail it. */
  start(QSIZE);
  ring_used[0] = 500u << 16;
  ring_desc[0] = (struct desc){(uint64_t)buffer, 64, WRITE, 0};
  submit(0, 1);
  uint8_t status = wait(1);
  say("used index jump: ");
  serial_puts(status != 0xff && !(status & 0x40) && used_idx() == 1 ? "device kept its own index" : "WRONG");
  serial_puts(good() ? " recovered\n" : " BROKEN\n");

  say("virtio hostile done\n");
  guest_poweroff();
}
