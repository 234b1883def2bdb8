/* Echo: announces itself, then prints back every line the host types, forever. Tests
 * what the harness makes of console lines (failure patterns, warnings, waits). */
#include "runtime/guest.h"

void guest_main(void* boot_params) {
  (void)boot_params;
  serial_puts("hyve-guest: echo ready\n");
  char line[256];
  unsigned n = 0;
  for (;;) {
    int c = serial_getc();
    if (c == '\r' || c == '\n') {
      line[n] = 0;
      serial_puts(line);
      serial_puts("\n");
      n = 0;
    } else if (n < sizeof(line) - 1) {
      line[n++] = (char)c;
    }
  }
}
