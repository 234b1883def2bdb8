/* A hostile virtio-vsock driver: drives the virtio-vsock function at 00:04.0 (guest CID
 * 3) by polling its rings, and connects to host ports 5000 and 5001 (the test listens on
 * <socket>_5000 and <socket>_5001). After one good connection it sends, each on a
 * connection of its own, a length past the descriptor chain, an unknown op, a datagram,
 * data far past the credit the host gave (the host reads none of it) and data for a
 * connection that does not exist: each must be answered with a reset. A packet shorter
 * than a header and one from a foreign CID must be dropped. Then a new connection must
 * still carry data. Every line the test reads starts with "hyve-guest: ". */
#include "runtime/virtio.h"

#define SLOT 4
#define GUEST_CID 3
#define HOST_CID 2
#define TYPE_STREAM 1
#define TYPE_DGRAM 2

enum { OP_REQUEST = 1, OP_RESPONSE, OP_RST, OP_SHUTDOWN, OP_RW, OP_CREDIT_UPDATE, OP_CREDIT_REQUEST };

struct hdr {
  uint64_t src_cid, dst_cid;
  uint32_t src_port, dst_port, len;
  uint16_t type, op;
  uint32_t flags, buf_alloc, fwd_cnt;
} __attribute__((packed));

#define RX_BUF 128
#define MAX_DATA (64 * 1024) /* the most one packet may carry */

static struct virtio_dev dev;
static struct virtq rxq, txq, evq;
static uint8_t rx_bufs[VIRTQ_MAX][RX_BUF] __attribute__((aligned(64)));
static uint8_t event_buf[8];
static struct hdr tx_hdr;
static uint8_t payload[MAX_DATA] __attribute__((aligned(4096)));

static void say(const char* what) {
  serial_puts("hyve-guest: ");
  serial_puts(what);
}

static void post_rx(uint16_t i) {
  rxq.desc[i] = (struct virtq_desc){(uint64_t)rx_bufs[i], RX_BUF, VIRTQ_DESC_F_WRITE, 0};
  virtq_submit(&dev, &rxq, i, 1);
}

/* A header (`len` may lie) and `data_len` bytes of payload from a second descriptor, or a
 * chain of just `header_len` bytes; waits until the device has used it. */
static void send_chain(const struct hdr* h, uint32_t header_len, uint32_t data_len) {
  tx_hdr = *h;
  txq.desc[0] = (struct virtq_desc){(uint64_t)&tx_hdr, header_len, (uint16_t)(data_len ? VIRTQ_DESC_F_NEXT : 0), 1};
  txq.desc[1] = (struct virtq_desc){(uint64_t)payload, data_len, 0, 0};
  uint16_t want = (uint16_t)(virtq_used_idx(&txq) + 1);
  virtq_submit(&dev, &txq, 0, 1);
  virtq_wait(&dev, &txq, want);
}

static struct hdr packet(uint32_t guest_port, uint32_t host_port, uint16_t op, uint32_t len) {
  return (struct hdr){GUEST_CID, HOST_CID, guest_port, host_port, len, TYPE_STREAM, op, 0, 256 * 1024, 0};
}

static void send(uint32_t guest_port, uint32_t host_port, uint16_t op, uint32_t len) {
  struct hdr h = packet(guest_port, host_port, op, len);
  send_chain(&h, sizeof h, len);
}

/* The next packet the device put in the rx ring (its buffer posted again), or 0 after a
 * bounded wait. */
static int receive(struct hdr* out) {
  for (uint64_t spins = 0; spins < 400000000ull; spins++) {
    if (virtq_used_idx(&rxq) != rxq.used_seen) {
      uint32_t id = virtq_used_id(&rxq, rxq.used_seen) % VIRTQ_MAX;
      *out = *(volatile struct hdr*)rx_bufs[id];
      rxq.used_seen++;
      post_rx((uint16_t)id);
      return 1;
    }
    cpu_relax();
  }
  return 0;
}

/* Whether a packet with `op` for guest port `port` comes; others (credit updates, resets
 * of earlier connections) are passed over. */
static int expect(uint32_t port, uint16_t op) {
  struct hdr h;
  for (int n = 0; n < 256; n++) {
    if (!receive(&h)) {
      say("nothing came for port ");
      serial_put_dec(port);
      serial_putc('\n');
      return 0;
    }
    if (h.dst_port == port && h.op == op) return 1;
    if (h.dst_port == port && h.op == OP_RST) {
      say("reset instead, port ");
      serial_put_dec(port);
      serial_putc('\n');
      return 0;
    }
  }
  return 0;
}

static int connect_host(uint32_t guest_port, uint32_t host_port) {
  send(guest_port, host_port, OP_REQUEST, 0);
  return expect(guest_port, OP_RESPONSE);
}

static void send_text(uint32_t guest_port, uint32_t host_port, const char* text) {
  uint32_t n = 0;
  for (; text[n]; n++) payload[n] = (uint8_t)text[n];
  send(guest_port, host_port, OP_RW, n);
}

/* Reports whether the connection from `port` was reset, as "name: rst". */
static void expect_rst(const char* name, uint32_t port) {
  say(name);
  serial_puts(expect(port, OP_RST) ? ": rst\n" : ": NO-RST\n");
}

void guest_main(void* boot_params) {
  (void)boot_params;
  virtio_open_or_poweroff(&dev, SLOT, 0x10531af4u, "virtio-vsock");
  virtio_begin(&dev);
  virtio_queue(&dev, &rxq, 0, VIRTQ_MAX);
  virtio_queue(&dev, &txq, 1, VIRTQ_MAX);
  virtio_queue(&dev, &evq, 2, VIRTQ_MAX);
  virtio_ready(&dev);
  for (uint16_t i = 0; i < VIRTQ_MAX; i++) post_rx(i);
  evq.desc[0] = (struct virtq_desc){(uint64_t)event_buf, sizeof event_buf, VIRTQ_DESC_F_WRITE, 0};
  virtq_submit(&dev, &evq, 0, 1);

  if (!connect_host(1000, 5000)) {
    say("connect FAILED\n");
    guest_poweroff();
  }
  send_text(1000, 5000, "hello from the guest\n");
  say("connected\n");

  struct hdr h;
  connect_host(1001, 5000);
  h = packet(1001, 5000, OP_RW, 0xfffffff0u);
  send_chain(&h, sizeof h, 3);
  expect_rst("length past the chain", 1001);

  connect_host(1002, 5000);
  send(1002, 5000, 99, 0);
  expect_rst("unknown op", 1002);

  connect_host(1003, 5000);
  h = packet(1003, 5000, OP_RW, 3);
  h.type = TYPE_DGRAM;
  send_chain(&h, sizeof h, 3);
  expect_rst("datagram", 1003);

  /* 1 MiB where the host granted 256 KiB and reads nothing. */
  connect_host(1004, 5000);
  for (int i = 0; i < 16; i++) send(1004, 5000, OP_RW, MAX_DATA);
  expect_rst("data past the credit", 1004);

  send(1005, 5000, OP_RW, 0);
  expect_rst("data for no connection", 1005);

  /* Dropped without an answer: the next connection shows the device is still there. */
  h = packet(1006, 5000, OP_REQUEST, 0);
  send_chain(&h, 8, 0);
  h.src_cid = 99;
  send_chain(&h, sizeof h, 0);

  if (connect_host(1007, 5001)) {
    send_text(1007, 5001, "still here\n");
    say("connected again");
  } else {
    say("connect again FAILED");
  }
  serial_puts((virtio_status(&dev) & VIRTIO_STATUS_NEEDS_RESET) ? ", needs-reset\n" : ", device ok\n");
  say("vsock hostile done\n");
  guest_poweroff();
}
