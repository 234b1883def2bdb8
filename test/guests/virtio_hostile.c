/* A hostile virtio driver: drives the virtio-rng function at 00:03.0 through its modern
 * virtio-pci registers (no MSI-X, polling the used ring) with malformed rings: a descriptor
 * loop, a buffer outside RAM, a length near 4 GiB, an available index that jumps, a used
 * index the driver scribbles over, a queue size that is not a power of two. After each it
 * checks what the device reports (DEVICE_NEEDS_RESET and a configuration interrupt in the
 * ISR, or plain service), resets the device and checks that a good request works again.
 * Every line the test reads starts with "hyve-guest: ". */
#include "runtime/virtio.h"

#define SLOT 3
#define QSIZE VIRTQ_MAX

static struct virtio_dev dev;
static struct virtq q;
static uint8_t buffer[256] __attribute__((aligned(64)));

static void say(const char* what) {
  serial_puts("hyve-guest: ");
  serial_puts(what);
}

/* Reset, negotiate VERSION_1, program queue 0 with `size` entries, DRIVER_OK. */
static void start(uint16_t size) {
  virtio_begin(&dev);
  virtio_queue(&dev, &q, 0, size);
  virtio_ready(&dev);
}

static void submit(uint16_t head, uint16_t step) { virtq_submit(&dev, &q, head, step); }
static uint8_t wait(uint16_t want) { return virtq_wait(&dev, &q, want); }

/* A good 64-byte request must be served; returns 1 when it was. */
static int good(void) {
  q.desc[0] = (struct virtq_desc){(uint64_t)buffer, 64, VIRTQ_DESC_F_WRITE, 0};
  uint16_t before = virtq_used_idx(&q);
  submit(0, 1);
  uint8_t status = wait((uint16_t)(before + 1));
  return status != 0xff && !(status & 0x40) && virtq_used_len(&q, before) == 64;
}

/* After a malformed ring: NEEDS_RESET with the configuration bit in the ISR, then a reset
 * and a good request again. */
static void expect_reset(const char* name, uint8_t status) {
  say(name);
  serial_puts((status != 0xff && (status & 0x40)) ? ": needs-reset" : ": NO-RESET");
  serial_puts((virtio_isr(&dev) & 2) ? " isr-config" : " no-isr-config");
  start(QSIZE);
  serial_puts(good() ? " recovered\n" : " BROKEN\n");
}

void guest_main(void* boot_params) {
  (void)boot_params;
  virtio_open_or_poweroff(&dev, SLOT, 0x10441af4u, "virtio-rng");

  start(QSIZE);
  say(good() ? "first request ok\n" : "first request FAILED\n");

  start(QSIZE);
  q.desc[0] = (struct virtq_desc){(uint64_t)buffer, 16, VIRTQ_DESC_F_NEXT | VIRTQ_DESC_F_WRITE, 1};
  q.desc[1] = (struct virtq_desc){(uint64_t)buffer + 16, 16, VIRTQ_DESC_F_NEXT | VIRTQ_DESC_F_WRITE, 0};
  submit(0, 1);
  expect_reset("descriptor loop", wait(1));

  start(QSIZE);
  q.desc[0] = (struct virtq_desc){0x7ffffffff000ull, 64, VIRTQ_DESC_F_WRITE, 0};
  submit(0, 1);
  expect_reset("address outside RAM", wait(1));

  start(QSIZE);
  q.desc[0] = (struct virtq_desc){(uint64_t)buffer, 0xfffffff0u, VIRTQ_DESC_F_WRITE, 0};
  submit(0, 1);
  expect_reset("length near 4 GiB", wait(1));

  start(QSIZE);
  q.desc[0] = (struct virtq_desc){(uint64_t)buffer, 64, VIRTQ_DESC_F_WRITE, 0};
  submit(0, 1000);  /* the available index jumps past the queue size */
  expect_reset("available index jump", wait(1));

  start(3); /* not a power of two */
  expect_reset("queue size 3", virtio_status(&dev));

  /* The used index is the device's: a driver scribbling over it does not derail it. */
  start(QSIZE);
  q.used[0] = 500u << 16;
  q.desc[0] = (struct virtq_desc){(uint64_t)buffer, 64, VIRTQ_DESC_F_WRITE, 0};
  submit(0, 1);
  uint8_t status = wait(1);
  say("used index jump: ");
  serial_puts(status != 0xff && !(status & 0x40) && virtq_used_idx(&q) == 1 ? "device kept its own index" : "WRONG");
  serial_puts(good() ? " recovered\n" : " BROKEN\n");

  say("virtio hostile done\n");
  guest_poweroff();
}
