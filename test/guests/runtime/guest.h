/* Minimal runtime for bespoke test guests: port I/O, COM1 console, power control. */
#pragma once

#include <stdint.h>

static inline void outb(uint16_t port, uint8_t v) { __asm__ volatile("outb %0, %1" ::"a"(v), "Nd"(port)); }
static inline void outw(uint16_t port, uint16_t v) { __asm__ volatile("outw %0, %1" ::"a"(v), "Nd"(port)); }
static inline void outl(uint16_t port, uint32_t v) { __asm__ volatile("outl %0, %1" ::"a"(v), "Nd"(port)); }
static inline uint8_t inb(uint16_t port) { uint8_t v; __asm__ volatile("inb %1, %0" : "=a"(v) : "Nd"(port)); return v; }
static inline uint32_t inl(uint16_t port) { uint32_t v; __asm__ volatile("inl %1, %0" : "=a"(v) : "Nd"(port)); return v; }
static inline uint32_t mmio_read32(uint64_t a) { return *(volatile uint32_t*)a; }
static inline void mmio_write32(uint64_t a, uint32_t v) { *(volatile uint32_t*)a = v; }
static inline void cpu_relax(void) { __asm__ volatile("pause"); }

void serial_putc(char c);
void serial_puts(const char* s);
void serial_put_hex(uint64_t v);
void serial_put_dec(uint64_t v);
int serial_getc(void);  /* blocks until a byte arrives */
void guest_poweroff(void) __attribute__((noreturn));
void guest_reboot(void) __attribute__((noreturn));

void guest_main(void* boot_params);
void ap_main(void);
