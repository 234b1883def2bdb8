/* SMBIOS as a firmware-less OS finds it: scan 0xF0000-0xFFFFF for the "_SM3_" entry point
 * on 16-byte boundaries (as Linux does), check its checksum, walk the table to the system
 * structure (type 1) and print its UUID in text form, decoding SMBIOS byte order. */
#include "runtime/guest.h"

static const char hex[] = "0123456789abcdef";

static void put_byte(uint8_t b) {
  serial_putc(hex[b >> 4]);
  serial_putc(hex[b & 0xf]);
}

static const uint8_t* find_entry_point(void) {
  for (uintptr_t a = 0xf0000; a < 0x100000; a += 16) {
    const uint8_t* p = (const uint8_t*)a;
    if (p[0] != '_' || p[1] != 'S' || p[2] != 'M' || p[3] != '3' || p[4] != '_') continue;
    uint8_t sum = 0;
    for (int i = 0; i < p[6]; ++i) sum = (uint8_t)(sum + p[i]);
    if (sum == 0) return p;
  }
  return 0;
}

void guest_main(void* boot_params) {
  (void)boot_params;
  const uint8_t* ep = find_entry_point();
  if (!ep) {
    serial_puts("hyve-guest: smbios no entry point\n");
    return;
  }
  const uint8_t* s = (const uint8_t*)(uintptr_t)(*(const uint64_t*)(ep + 0x10));
  while (s[0] != 1 && s[0] != 127) {
    const uint8_t* p = s + s[1];
    while (p[0] || p[1]) ++p;  /* the string set ends with two NULs */
    s = p + 2;
  }
  if (s[0] != 1) {
    serial_puts("hyve-guest: smbios no system structure\n");
    return;
  }
  const uint8_t* u = s + 8;
  /* time_low, time_mid and time_hi_and_version are little-endian; the rest is as written. */
  static const int order[] = {3, 2, 1, 0, -1, 5, 4, -1, 7, 6, -1, 8, 9, -1, 10, 11, 12, 13, 14, 15};
  serial_puts("hyve-guest: smbios uuid ");
  for (unsigned i = 0; i < sizeof order / sizeof order[0]; ++i) {
    if (order[i] < 0) serial_putc('-');
    else put_byte(u[order[i]]);
  }
  serial_putc('\n');
}
