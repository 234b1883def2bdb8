/* Walks the address space the VMM leaves unclaimed: 4096 successive I/O ports and 4096
 * successive MMIO pages (above this guest's RAM, below the PCI hole). The VMM's exit
 * statistics must not grow with the number of addresses touched. */
#include "runtime/guest.h"

#define PORTS 4096
#define PAGES 4096

void guest_main(void* boot_params) {
  (void)boot_params;
  for (uint32_t i = 0; i < PORTS; i++) outb((uint16_t)(0x4000 + i), 0x5a);
  for (uint64_t i = 0; i < PAGES; i++) mmio_write32(0x10000000 + i * 0x1000, 0x5a5a5a5a);
  serial_puts("unclaimed: ");
  serial_put_dec(PORTS);
  serial_puts(" ports, ");
  serial_put_dec(PAGES);
  serial_puts(" pages\n");
  guest_poweroff();
}
