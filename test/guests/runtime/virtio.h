/* A minimal modern virtio-pci driver for bespoke test guests: the function's BAR 4 as
 * hyve lays it out (common configuration at +0, ISR at +0x1000, doorbells at +0x3000),
 * split rings the guest owns, polling instead of interrupts. */
#pragma once

#include "guest.h"

#define VIRTQ_DESC_F_NEXT 1
#define VIRTQ_DESC_F_WRITE 2

#define VIRTIO_STATUS_NEEDS_RESET 0x40

struct virtq_desc {
  uint64_t addr;
  uint32_t len;
  uint16_t flags;
  uint16_t next;
};

/* One split virtqueue of at most VIRTQ_MAX entries, in guest memory. */
#define VIRTQ_MAX 8
struct virtq {
  struct virtq_desc desc[VIRTQ_MAX] __attribute__((aligned(4096)));
  volatile uint16_t avail[3 + VIRTQ_MAX] __attribute__((aligned(4096)));
  volatile uint32_t used[2 + 2 * VIRTQ_MAX] __attribute__((aligned(4096)));
  uint16_t index;     /* queue number on the device */
  uint16_t avail_idx; /* next available index the driver publishes */
  uint16_t used_seen; /* used entries the driver has consumed */
  uint16_t notify;    /* doorbell offset in BAR 4 */
};

struct virtio_dev {
  unsigned slot;
  uint64_t bar;
};

static inline uint32_t pci_config_read(unsigned slot, unsigned off) {
  outl(0xcf8, 0x80000000u | (slot << 11) | (off & 0xfc));
  return inl(0xcfc);
}
static inline void pci_config_write(unsigned slot, unsigned off, uint32_t v) {
  outl(0xcf8, 0x80000000u | (slot << 11) | (off & 0xfc));
  outl(0xcfc, v);
}

static inline uint8_t vio_r8(const struct virtio_dev* d, unsigned off) { return *(volatile uint8_t*)(d->bar + off); }
static inline uint16_t vio_r16(const struct virtio_dev* d, unsigned off) { return *(volatile uint16_t*)(d->bar + off); }
static inline void vio_w8(const struct virtio_dev* d, unsigned off, uint8_t v) { *(volatile uint8_t*)(d->bar + off) = v; }
static inline void vio_w16(const struct virtio_dev* d, unsigned off, uint16_t v) { *(volatile uint16_t*)(d->bar + off) = v; }
static inline void vio_w32(const struct virtio_dev* d, unsigned off, uint32_t v) { *(volatile uint32_t*)(d->bar + off) = v; }
static inline void vio_w64(const struct virtio_dev* d, unsigned off, uint64_t v) {
  vio_w32(d, off, (uint32_t)v);
  vio_w32(d, off + 4, (uint32_t)(v >> 32));
}

static inline uint8_t virtio_status(const struct virtio_dev* d) { return vio_r8(d, 0x14); }
static inline uint8_t virtio_isr(const struct virtio_dev* d) { return vio_r8(d, 0x1000); }

/* The function at `slot` if its PCI id is `id` (vendor in the low half), with memory
 * decoding and bus mastering on; 0 otherwise. */
static inline int virtio_open(struct virtio_dev* d, unsigned slot, uint32_t id) {
  if (pci_config_read(slot, 0) != id) return 0;
  d->slot = slot;
  d->bar = ((uint64_t)pci_config_read(slot, 0x24) << 32) | (pci_config_read(slot, 0x20) & ~0xfu);
  pci_config_write(slot, 0x04, pci_config_read(slot, 0x04) | 0x6);
  return 1;
}

/* virtio_open, or a line saying what is at `slot` instead, and power off. */
static inline void virtio_open_or_poweroff(struct virtio_dev* d, unsigned slot, uint32_t id, const char* what) {
  if (virtio_open(d, slot, id)) return;
  serial_puts("hyve-guest: no ");
  serial_puts(what);
  serial_puts(" in slot ");
  serial_put_dec(slot);
  serial_puts(", id ");
  serial_put_hex(pci_config_read(slot, 0));
  serial_putc('\n');
  guest_poweroff();
}

/* Reset, then ACKNOWLEDGE | DRIVER, VERSION_1 only, FEATURES_OK. */
static inline void virtio_begin(const struct virtio_dev* d) {
  vio_w8(d, 0x14, 0);
  while (virtio_status(d) != 0) cpu_relax();
  vio_w8(d, 0x14, 1 | 2);
  vio_w32(d, 0x08, 1);
  vio_w32(d, 0x0c, 1); /* VERSION_1 (bit 32) */
  vio_w8(d, 0x14, 1 | 2 | 8);
}

/* Clears `q` and programs it as queue `index` with `size` entries, enabled. */
static inline void virtio_queue(const struct virtio_dev* d, struct virtq* q, uint16_t index, uint16_t size) {
  for (unsigned i = 0; i < VIRTQ_MAX; i++) q->desc[i] = (struct virtq_desc){0, 0, 0, 0};
  for (unsigned i = 0; i < 3 + VIRTQ_MAX; i++) q->avail[i] = 0;
  for (unsigned i = 0; i < 2 + 2 * VIRTQ_MAX; i++) q->used[i] = 0;
  q->index = index;
  q->avail_idx = 0;
  q->used_seen = 0;
  vio_w16(d, 0x16, index);
  vio_w16(d, 0x18, size);
  vio_w64(d, 0x20, (uint64_t)q->desc);
  vio_w64(d, 0x28, (uint64_t)q->avail);
  vio_w64(d, 0x30, (uint64_t)q->used);
  q->notify = (uint16_t)(0x3000 + vio_r16(d, 0x1e) * 4);
  vio_w16(d, 0x1c, 1);
}

/* DRIVER_OK. */
static inline void virtio_ready(const struct virtio_dev* d) { vio_w8(d, 0x14, 1 | 2 | 4 | 8); }

/* Publishes `head`, moving the available index by `step` (1 unless a test lies), and rings the doorbell. */
static inline void virtq_submit(const struct virtio_dev* d, struct virtq* q, uint16_t head, uint16_t step) {
  q->avail[2 + q->avail_idx % VIRTQ_MAX] = head;
  q->avail_idx = (uint16_t)(q->avail_idx + step);
  __asm__ volatile("mfence" ::: "memory");
  q->avail[1] = q->avail_idx;
  __asm__ volatile("mfence" ::: "memory");
  vio_w16(d, q->notify, q->index);
}

/* The used ring is u16 flags, u16 idx, then { u32 id, u32 len } entries: used->idx, and
 * the id (descriptor head) and length of entry `n`. */
static inline uint16_t virtq_used_idx(const struct virtq* q) { return (uint16_t)(q->used[0] >> 16); }
static inline uint32_t virtq_used_id(const struct virtq* q, uint16_t n) { return q->used[1 + 2 * (n % VIRTQ_MAX)]; }
static inline uint32_t virtq_used_len(const struct virtq* q, uint16_t n) { return q->used[2 + 2 * (n % VIRTQ_MAX)]; }

/* Waits (bounded) until the device has used `want` entries or set NEEDS_RESET; returns
 * the status, 0xff on a timeout. The status is an MMIO exit, so it is read now and then. */
static inline uint8_t virtq_wait(const struct virtio_dev* d, const struct virtq* q, uint16_t want) {
  for (uint64_t spins = 0; spins < 400000000ull; spins++) {
    if (virtq_used_idx(q) == want) return virtio_status(d);
    if (spins % 4096 == 0 && (virtio_status(d) & VIRTIO_STATUS_NEEDS_RESET)) return virtio_status(d);
    cpu_relax();
  }
  return 0xff;
}
