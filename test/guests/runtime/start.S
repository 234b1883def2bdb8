/* Entry points of a test guest.
 * _start: the boot CPU, entered by hyve's loader in 64-bit mode.
 * ap_trampoline: application processors, started by INIT/SIPI in real mode at 0x10000;
 * they switch to long mode using the loader's identity page tables (CR3 from the BSP). */
  .section .text.start, "ax"
  .code64
  .globl _start
_start:
  lea boot_stack_top(%rip), %rsp
  mov %rsi, %rdi          /* boot_params for guest_main */
  call guest_main
  call guest_poweroff
1: hlt
  jmp 1b

  .section .trampoline, "ax"
  .code16
  .globl ap_trampoline
ap_trampoline:
  cli
  /* SIPI sets CS to the trampoline's segment; real-mode offsets are relative to it. */
  mov %cs, %ax
  mov %ax, %ds
  lgdtl (ap_gdt_ptr - ap_trampoline)
  mov %cr0, %eax
  or $1, %eax
  mov %eax, %cr0
  ljmpl $0x08, $ap_protected
  .code32
ap_protected:
  mov $0x10, %ax
  mov %ax, %ds
  mov %ax, %ss
  mov %cr4, %eax
  or $0x20, %eax          /* PAE */
  mov %eax, %cr4
  mov ap_cr3, %eax
  mov %eax, %cr3
  mov $0xc0000080, %ecx   /* EFER.LME */
  rdmsr
  or $0x100, %eax
  wrmsr
  mov %cr0, %eax
  or $0x80000000, %eax    /* PG */
  mov %eax, %cr0
  ljmp $0x18, $ap_long
  .code64
ap_long:
  xor %ax, %ax
  mov %ax, %ds
  mov %ax, %es
  mov %ax, %ss
  /* Each AP takes the next stack slot. */
  mov $4096, %rax
  lock xadd %rax, ap_stack_next
  lea 4096(%rax), %rsp
  call ap_main
2: cli
  hlt
  jmp 2b

  .balign 8
ap_gdt:
  .quad 0
  .quad 0x00cf9a000000ffff  /* 0x08: 32-bit code */
  .quad 0x00cf92000000ffff  /* 0x10: data */
  .quad 0x00af9a000000ffff  /* 0x18: 64-bit code */
ap_gdt_ptr:
  .word ap_gdt_ptr - ap_gdt - 1
  .long ap_gdt
  .globl ap_cr3
ap_cr3:
  .long 0
  .globl ap_stack_next
ap_stack_next:
  .quad 0

  .section .bss
  .balign 16
  .space 16384
boot_stack_top:
  .section .note.GNU-stack, "", @progbits
