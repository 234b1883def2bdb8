/* CMOS RTC: read the date in whatever mode register B says and print it as ISO 8601. */
#include "runtime/guest.h"

static uint8_t cmos_read(uint8_t reg) {
  outb(0x70, reg);
  return inb(0x71);
}

static unsigned decode(uint8_t v, int bcd) { return bcd ? (v >> 4) * 10 + (v & 0xf) : v; }

static void put2(unsigned v) {
  serial_putc((char)('0' + v / 10 % 10));
  serial_putc((char)('0' + v % 10));
}

void guest_main(void* boot_params) {
  (void)boot_params;
  while (cmos_read(0x0a) & 0x80) cpu_relax();  /* wait out an update in progress */
  int bcd = !(cmos_read(0x0b) & 0x04);
  unsigned sec = decode(cmos_read(0x00), bcd), min = decode(cmos_read(0x02), bcd);
  unsigned hour = decode(cmos_read(0x04) & 0x7f, bcd), day = decode(cmos_read(0x07), bcd);
  unsigned mon = decode(cmos_read(0x08), bcd), year = decode(cmos_read(0x09), bcd);
  unsigned century = decode(cmos_read(0x32), bcd);
  serial_puts("hyve-guest: rtc ");
  put2(century); put2(year); serial_putc('-'); put2(mon); serial_putc('-'); put2(day);
  serial_putc('T'); put2(hour); serial_putc(':'); put2(min); serial_putc(':'); put2(sec);
  serial_puts("Z\n");
}
