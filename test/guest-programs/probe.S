# long probe_syscall(long nr, long a1, long a2, long a3, uint64_t tag, uint64_t *out)
#
# Makes one system call with every register the x86-64 syscall ABI preserves holding a
# value derived from `tag`, and stores what they hold afterwards into out[]:
#   out[0..7]   rbx rbp r12 r13 r14 r15 r9 r10  (loaded with tag ^ 1, 2, 0xc, 0xd, 0xe, 0xf, 9, 0xa)
#   out[8..11]  r8 rdx rsi rdi after the call;  out[13..16] the values they had before it
#   out[12]     the word at %fs:0 (glibc's TCB pointer: this thread's FS base)
#   out[20..51] xmm0..xmm15, 16 bytes each     (both halves loaded with tag ^ (0x100 + n))
# Returns the kernel's raw result (rax). rcx and r11 are the only registers the kernel may change.
	.text
	.globl probe_syscall
	.type probe_syscall,@function
probe_syscall:
	push %rbx
	push %rbp
	push %r12
	push %r13
	push %r14
	push %r15
	push %r9            # out
	mov %rdi, %rax      # nr
	mov %rsi, %rdi      # a1
	mov %rdx, %rsi      # a2
	mov %rcx, %rdx      # a3
	mov %r8, %rbx
	xor $0x01, %rbx
	mov %r8, %rbp
	xor $0x02, %rbp
	mov %r8, %r12
	xor $0x0c, %r12
	mov %r8, %r13
	xor $0x0d, %r13
	mov %r8, %r14
	xor $0x0e, %r14
	mov %r8, %r15
	xor $0x0f, %r15
	mov %r8, %r9
	xor $0x09, %r9
	mov %r8, %r10
	xor $0x0a, %r10
	push %rdi
	push %rsi
	push %rdx
	push %r8
	mov %r8, %r11
	xor $0x100, %r11
	movq %r11, %xmm0
	pinsrq $1, %r11, %xmm0
	mov %r8, %r11
	xor $0x101, %r11
	movq %r11, %xmm1
	pinsrq $1, %r11, %xmm1
	mov %r8, %r11
	xor $0x102, %r11
	movq %r11, %xmm2
	pinsrq $1, %r11, %xmm2
	mov %r8, %r11
	xor $0x103, %r11
	movq %r11, %xmm3
	pinsrq $1, %r11, %xmm3
	mov %r8, %r11
	xor $0x104, %r11
	movq %r11, %xmm4
	pinsrq $1, %r11, %xmm4
	mov %r8, %r11
	xor $0x105, %r11
	movq %r11, %xmm5
	pinsrq $1, %r11, %xmm5
	mov %r8, %r11
	xor $0x106, %r11
	movq %r11, %xmm6
	pinsrq $1, %r11, %xmm6
	mov %r8, %r11
	xor $0x107, %r11
	movq %r11, %xmm7
	pinsrq $1, %r11, %xmm7
	mov %r8, %r11
	xor $0x108, %r11
	movq %r11, %xmm8
	pinsrq $1, %r11, %xmm8
	mov %r8, %r11
	xor $0x109, %r11
	movq %r11, %xmm9
	pinsrq $1, %r11, %xmm9
	mov %r8, %r11
	xor $0x10a, %r11
	movq %r11, %xmm10
	pinsrq $1, %r11, %xmm10
	mov %r8, %r11
	xor $0x10b, %r11
	movq %r11, %xmm11
	pinsrq $1, %r11, %xmm11
	mov %r8, %r11
	xor $0x10c, %r11
	movq %r11, %xmm12
	pinsrq $1, %r11, %xmm12
	mov %r8, %r11
	xor $0x10d, %r11
	movq %r11, %xmm13
	pinsrq $1, %r11, %xmm13
	mov %r8, %r11
	xor $0x10e, %r11
	movq %r11, %xmm14
	pinsrq $1, %r11, %xmm14
	mov %r8, %r11
	xor $0x10f, %r11
	movq %r11, %xmm15
	pinsrq $1, %r11, %xmm15
	syscall
	mov 32(%rsp), %rcx  # out
	mov %rbx, 0(%rcx)
	mov %rbp, 8(%rcx)
	mov %r12, 16(%rcx)
	mov %r13, 24(%rcx)
	mov %r14, 32(%rcx)
	mov %r15, 40(%rcx)
	mov %r9, 48(%rcx)
	mov %r10, 56(%rcx)
	mov %r8, 64(%rcx)
	mov %rdx, 72(%rcx)
	mov %rsi, 80(%rcx)
	mov %rdi, 88(%rcx)
	movdqu %xmm0, 160(%rcx)
	movdqu %xmm1, 176(%rcx)
	movdqu %xmm2, 192(%rcx)
	movdqu %xmm3, 208(%rcx)
	movdqu %xmm4, 224(%rcx)
	movdqu %xmm5, 240(%rcx)
	movdqu %xmm6, 256(%rcx)
	movdqu %xmm7, 272(%rcx)
	movdqu %xmm8, 288(%rcx)
	movdqu %xmm9, 304(%rcx)
	movdqu %xmm10, 320(%rcx)
	movdqu %xmm11, 336(%rcx)
	movdqu %xmm12, 352(%rcx)
	movdqu %xmm13, 368(%rcx)
	movdqu %xmm14, 384(%rcx)
	movdqu %xmm15, 400(%rcx)
	mov %fs:0, %r11
	mov %r11, 96(%rcx)
	pop %r8
	pop %rdx
	pop %rsi
	pop %rdi
	mov %r8, 104(%rcx)
	mov %rdx, 112(%rcx)
	mov %rsi, 120(%rcx)
	mov %rdi, 128(%rcx)
	pop %r9
	pop %r15
	pop %r14
	pop %r13
	pop %r12
	pop %rbp
	pop %rbx
	ret
	.size probe_syscall, .-probe_syscall
	.section .note.GNU-stack,"",@progbits
