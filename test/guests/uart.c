/* UART: output, then echo one line of host input back (tests the RX path). */
#include "runtime/guest.h"

void guest_main(void* boot_params) {
  (void)boot_params;
  serial_puts("hyve-guest: uart ok\n");
  serial_puts("hyve-guest: type a line\n");
  char line[128];
  unsigned n = 0;
  for (;;) {
    int c = serial_getc();
    if (c == '\r' || c == '\n') break;
    if (n < sizeof(line) - 1) line[n++] = (char)c;
  }
  line[n] = 0;
  serial_puts("hyve-guest: echo [");
  serial_puts(line);
  serial_puts("]\n");
}
