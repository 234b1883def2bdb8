/* PCI: scan bus 0 through configuration mechanism #1 and list what answers. */
#include "runtime/guest.h"

static uint32_t pci_read(unsigned dev, unsigned fn, unsigned off) {
  outl(0xcf8, 0x80000000u | (dev << 11) | (fn << 8) | (off & 0xfc));
  return inl(0xcfc);
}

void guest_main(void* boot_params) {
  (void)boot_params;
  for (unsigned dev = 0; dev < 32; dev++) {
    for (unsigned fn = 0; fn < 8; fn++) {
      uint32_t id = pci_read(dev, fn, 0);
      if ((id & 0xffff) == 0xffff) {
        if (fn == 0) break;
        continue;
      }
      uint32_t class_rev = pci_read(dev, fn, 8);
      serial_puts("hyve-guest: pci 00:");
      serial_put_hex(dev);
      serial_putc('.');
      serial_put_dec(fn);
      serial_puts(" id ");
      serial_put_hex(id);
      serial_puts(" class ");
      serial_put_hex(class_rev >> 8);
      serial_putc('\n');
      uint32_t header = pci_read(dev, fn, 0x0c) >> 16;
      if (fn == 0 && !(header & 0x80)) break;  /* single-function device */
    }
  }
  serial_puts("hyve-guest: pci scan done\n");
}
