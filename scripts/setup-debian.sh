#!/usr/bin/env bash
# Installs the Debian packages hyve builds and tests with. Idempotent; run as root
# (or with sudo) on Debian 12. Each package and why:
#   build-essential python3      node-gyp's toolchain for the native addon
#   libzydis-dev                 x86 decoder for the PVM instruction-fixup layer
#   zlib1g-dev liblzma-dev libzstd-dev liblz4-dev libbz2-dev
#                                host-side decompression of bzImage payloads and initrds
#   linux-source-6.1 flex bison bc libelf-dev libssl-dev
#                                building the default guest's minimal kernel
#   busybox-static               the default guest's userland
#   cpio                         inspecting initramfs images by hand (tests use our own writer)
#   tmux                         driving the CLI in a pseudo-terminal in tests
#   dmidecode                    the foreign check of hyve's SMBIOS tables (test/smbios.test.ts)
#   e2fsprogs                    mke2fs -d and debugfs: ext4 images for the virtio-blk tests
#   clang libclang-rt-14-dev     the libFuzzer targets in test/fuzz/ (scripts/fuzz.sh)
#   xorriso                      ISO 9660 images for the ahci-cd test (test/ahci.test.ts)
#   libslirp-dev                 virtio-net's rootless user-mode networking (linked into the addon)
#   iproute2                     ip netns / ip tuntap for the tap backend's test
#   libseccomp-dev               the per-thread seccomp filters (native/util/seccomp*.cc)
#   qemu-system-x86 kmod         QEMU TCG's side-by-side figures (npm run bench), and the nested-KVM
#                                VM that scripts/with-kvm.sh runs the VM tests in on a machine
#                                without /dev/kvm (kmod's depmod indexes that VM's modules)
#   dropbear-bin openssh-sftp-server
#                                the SSH overlay's server and SFTP (guest.exec/upload, src/fixtures/ssh-overlay.ts)
#   passt                        the benchmark's QEMU-with-passt side (npm run bench -- --sides qemu,qemu-passt)
#   liburing-dev                 npm run bench:diskio: io_uring against virtio-blk's preadv path (bench/diskio.c)
set -euo pipefail
packages=(
  build-essential python3
  libzydis-dev doctest-dev
  zlib1g-dev liblzma-dev libzstd-dev liblz4-dev libbz2-dev
  linux-source-6.1 flex bison bc libelf-dev libssl-dev
  busybox-static cpio tmux
  dmidecode
  e2fsprogs clang libclang-rt-14-dev
  xorriso
  libslirp-dev iproute2
  libseccomp-dev
  qemu-system-x86 kmod
  dropbear-bin openssh-sftp-server
  passt liburing-dev
)
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
if [ ${#missing[@]} -eq 0 ]; then
  exit 0
fi
SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO=sudo
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
