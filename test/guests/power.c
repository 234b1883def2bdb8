/* Ways for a guest to end the VM, picked by the kernel command line:
 * "poweroff" (ACPI S5), "reboot" (reset register 0xcf9), "i8042-reset" (keyboard
 * controller pulse), "triple-fault" (#UD with an empty IDT), "halt" (cli; hlt), or not
 * at all: "sleep" (sti; hlt with nothing to wake it, so it sleeps until the host ends it). */
#include "runtime/guest.h"

struct __attribute__((packed)) idt_ptr { uint16_t limit; uint64_t base; };

static int has_word(const char* cmdline, const char* w) {
  for (const char* s = cmdline; *s; s++) {
    const char* a = s;
    const char* b = w;
    while (*b && *a == *b) a++, b++;
    if (!*b && (*a == 0 || *a == ' ') && (s == cmdline || s[-1] == ' ')) return 1;
  }
  return 0;
}

void guest_main(void* boot_params) {
  /* boot_params.hdr.cmd_line_ptr is at offset 0x228. */
  const char* cmdline = (const char*)(uint64_t)*(uint32_t*)((char*)boot_params + 0x228);
  serial_puts("hyve-guest: power cmdline [");
  serial_puts(cmdline);
  serial_puts("]\n");
  if (has_word(cmdline, "reboot")) guest_reboot();
  if (has_word(cmdline, "i8042-reset")) {
    while (inb(0x64) & 0x02) cpu_relax();
    outb(0x64, 0xfe);
    for (;;) __asm__ volatile("cli; hlt");
  }
  if (has_word(cmdline, "triple-fault")) {
    struct idt_ptr empty = {0, 0};
    __asm__ volatile("lidt %0; ud2" ::"m"(empty));
  }
  if (has_word(cmdline, "halt")) {
    for (;;) __asm__ volatile("cli; hlt");
  }
  if (has_word(cmdline, "sleep")) {
    serial_puts("hyve-guest: sleeping\n");
    for (;;) __asm__ volatile("sti; hlt");
  }
  guest_poweroff();
}
