#!/usr/bin/env python3
"""Writes the kernel fuzzer's seeds (test/fuzz/corpus/kernel/) from a bespoke test guest
ELF: the ELF itself, and small bzImages around it, one per payload compression, plus one
whose payload the host cannot unpack (the guest-decompressor path).
Usage: make-kernel-seeds.py GUEST.elf OUTDIR"""
import struct, subprocess, sys, os

elf = open(sys.argv[1], 'rb').read()
out = sys.argv[2]
os.makedirs(out, exist_ok=True)

def compress(tool_args, data):
    return subprocess.run(tool_args, input=data, stdout=subprocess.PIPE, check=True).stdout

def bzimage(payload, relocatable=False):
    setup = bytearray(1024)                       # boot sector + one setup sector
    setup[0x1f1] = 1                              # setup_sects
    struct.pack_into('<I', setup, 0x1f4, (len(payload) + 15) // 16)  # syssize
    setup[0x1fe:0x200] = b'\x55\xaa'
    setup[0x200:0x202] = bytes([0xeb, 0x268 - 0x202])  # the jump that ends the header
    setup[0x202:0x206] = b'HdrS'
    struct.pack_into('<H', setup, 0x206, 0x020f)  # boot protocol 2.15
    setup[0x211] = 0x01                           # LOADED_HIGH
    struct.pack_into('<I', setup, 0x214, 0x100000)
    struct.pack_into('<I', setup, 0x230, 0x200000)  # kernel_alignment
    setup[0x234] = 1 if relocatable else 0
    struct.pack_into('<H', setup, 0x236, 0x1)     # XLF_KERNEL_64
    struct.pack_into('<I', setup, 0x238, 2047)    # cmdline_size
    struct.pack_into('<I', setup, 0x248, 0)       # payload_offset
    struct.pack_into('<I', setup, 0x24c, len(payload))
    struct.pack_into('<Q', setup, 0x258, 0x1000000)  # pref_address
    struct.pack_into('<I', setup, 0x260, 0x400000)   # init_size
    body = payload + bytes(-len(payload) % 16)
    return bytes(setup) + body

size = struct.pack('<I', len(elf))
payloads = {
    'gzip': compress(['gzip', '-9n'], elf),
    'xz': compress(['xz', '--check=crc32', '-c'], elf) + size,
    'lzma': compress(['lzma', '-c'], elf) + size,
    'bzip2': compress(['bzip2', '-c'], elf) + size,
    'zstd': compress(['zstd', '-q', '-c'], elf) + size,
    'lz4': compress(['lz4', '-l', '-q', '-c'], elf) + size,
}
open(os.path.join(out, 'vmlinux.elf'), 'wb').write(elf)
for name, payload in payloads.items():
    open(os.path.join(out, f'bzImage-{name}'), 'wb').write(bzimage(payload))
open(os.path.join(out, 'bzImage-relocatable-gzip'), 'wb').write(bzimage(payloads['gzip'], relocatable=True))
open(os.path.join(out, 'bzImage-guest-decompressor'), 'wb').write(bzimage(b'\x90' * 256))
