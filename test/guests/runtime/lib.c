#include "guest.h"

#define COM1 0x3f8
#define LSR_DATA_READY 0x01
#define LSR_THR_EMPTY 0x20

void serial_putc(char c) {
  while (!(inb(COM1 + 5) & LSR_THR_EMPTY)) cpu_relax();
  outb(COM1, (uint8_t)c);
}

void serial_puts(const char* s) {
  while (*s) serial_putc(*s++);
}

void serial_put_hex(uint64_t v) {
  serial_puts("0x");
  for (int shift = 60; shift >= 0; shift -= 4) serial_putc("0123456789abcdef"[(v >> shift) & 0xf]);
}

void serial_put_dec(uint64_t v) {
  char buf[21];
  int i = 20;
  buf[i] = 0;
  do {
    buf[--i] = (char)('0' + v % 10);
    v /= 10;
  } while (v);
  serial_puts(&buf[i]);
}

int serial_getc(void) {
  while (!(inb(COM1 + 5) & LSR_DATA_READY)) cpu_relax();
  return inb(COM1);
}

/* ACPI S5 through PM1a_CNT (SLP_TYP=5, SLP_EN), as the DSDT's \_S5 advertises. */
void guest_poweroff(void) {
  outw(0x604, (5 << 10) | (1 << 13));
  for (;;) __asm__ volatile("cli; hlt");
}

/* The FADT reset register: 0x06 to port 0xcf9. */
void guest_reboot(void) {
  outb(0xcf9, 0x06);
  for (;;) __asm__ volatile("cli; hlt");
}

/* Guests that do not start APs never reach this; smp.c overrides it. */
__attribute__((weak)) void ap_main(void) {}
