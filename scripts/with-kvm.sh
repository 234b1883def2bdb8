#!/usr/bin/env bash
# with-kvm.sh COMMAND [ARGS...]: runs COMMAND where /dev/kvm works.
#
# On a machine with /dev/kvm that is here, unchanged. On one without (a cloud VM with no
# nested virtualization, or a PVM guest, whose kvm_pvm module creates no device), the
# command runs inside a Linux VM under QEMU's TCG emulator, whose emulated AMD CPU has
# SVM: Debian's kvm_amd in there provides a hardware-style /dev/kvm, and hyve runs on it
# unchanged (its hardware-KVM path, not its PVM one). That VM sees this machine's root
# filesystem over 9p and chroots into it, so the command has the same paths, checkout,
# node_modules and ~/.cache/hyve. Builds and downloads belong out here, before: compilers
# run about ten times slower under TCG, and the VM has no network (loopback only).
#
# HYVE_NESTED=1 takes the nested path even where /dev/kvm works (to try it); HYVE_NESTED=0
# never does (the command runs here and reports the missing /dev/kvm itself).
# HYVE_NESTED_MEMORY (default 2/3 of this machine's RAM, at most 16G) sizes the VM.
set -euo pipefail
[ $# -gt 0 ] || { echo "usage: $0 COMMAND [ARGS...]" >&2; exit 2; }

kvm_works() { [ -c /dev/kvm ] && { : <>/dev/kvm; } 2>/dev/null; }
if [ "${HYVE_NESTED:-}" = 0 ] || { [ "${HYVE_NESTED:-}" != 1 ] && kvm_works; }; then
  exec "$@"
fi

fail() { echo "with-kvm: $*" >&2; exit 1; }
for tool in qemu-system-x86_64 apt-get dpkg-deb /usr/sbin/depmod busybox cpio; do
  command -v "$tool" >/dev/null || fail "this machine has no usable /dev/kvm, and the nested fallback needs $tool (npm run setup installs it)"
done

hyve_cache="${HYVE_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/hyve}"
cache="$hyve_cache/nested-kvm"
mkdir -p "$cache"

# Debian's current stock kernel, with every module: kvm_amd, 9p and virtio for the VM
# itself, and tun, veth and the rest for whatever the command loads.
package=$(apt-cache depends linux-image-amd64 2>/dev/null | awk '/Depends: linux-image-[0-9]/ { print $2; exit }')
if [ -z "$package" ]; then
  # No package lists (offline): the newest kernel already prepared.
  package=$(ls -t "$cache" 2>/dev/null | grep '^linux-image-' | head -n1 | sed 's/-[0-9a-f]\{12\}$//' || true)
  [ -n "$package" ] || fail "cannot resolve linux-image-amd64 (try apt-get update) and nothing is cached in $cache"
fi
# PID 1 of the nested-KVM VM (part of the cache key, with the kernel package).
init=$(cat <<'INIT'
#!/bin/busybox sh
# PID 1 of the nested-KVM VM: mounts this machine's root over 9p, loads kvm_amd, runs
# the job (hyve_job=DIR on the kernel command line) chrooted there, and powers off.
/bin/busybox --install -s /bin
mount -t proc proc /proc && mount -t sysfs sys /sys && mount -t devtmpfs dev /dev
exec >/dev/console 2>&1
for m in virtio_pci 9pnet_virtio 9p; do modprobe $m; done
# cache=mmap: hyve maps snapshot memory files, which 9p allows only in a caching mode.
mount -t 9p -o trans=virtio,version=9p2000.L,msize=512000,cache=mmap hostroot /host || { echo "hyve-nested: cannot mount the host's root"; poweroff -f; }
job=$(sed -n 's/.* hyve_job=\([^ ]*\).*/\1/p' /proc/cmdline)
release=$(uname -r)
mount --bind "/host$job/../modules" "/lib/modules/$release"
# npt=0: KVM shadows the nested guests' page tables itself. With nested paging, QEMU
# 7.2's emulation of it triple-faulted 4 of 30 Linux boots; with shadow paging none of
# 30, at the same speed.
# nx_huge_pages=never: no kvm-nx-lpage-recovery kernel thread for each VM the tests make
# (hundreds; an AMD CPU has no iTLB-multihit erratum to mitigate): the stalls show
# kthreadd stuck. An older kvm that does not know "never" loads without it.
modprobe kvm nx_huge_pages=never || modprobe kvm
modprobe kvm_amd npt=0 || echo "hyve-nested: modprobe kvm_amd failed"
for m in tun veth; do modprobe $m || echo "hyve-nested: modprobe $m failed"; done
for d in proc sys dev; do mount --bind /$d /host/$d; done
# Terminals (tmux, script) need their own devpts; sockets, FIFOs and device nodes need
# a local /tmp (9p has none of them).
mkdir -p /host/dev/pts /host/dev/shm
mount -t devpts -o newinstance,ptmxmode=0666 devpts /host/dev/pts && mount --bind /host/dev/pts/ptmx /host/dev/ptmx
# A command run from a directory under /tmp (a clone in /tmp/x) keeps that directory:
# it is bound back from the host's /tmp over the new one.
mkdir -p /host-tmp && mount --bind /host/tmp /host-tmp
for d in dev/shm tmp run; do mount -t tmpfs tmpfs /host/$d || echo "hyve-nested: cannot mount /$d"; done
keep=$(cat "/host$job/tmp-keep" 2>/dev/null)
[ -z "$keep" ] || { mkdir -p "/host/tmp/$keep" && mount --bind "/host-tmp/$keep" "/host/tmp/$keep"; }
ip link set lo up
echo; echo "hyve-nested: start"  # after a newline: the BIOS's last escape codes have none
chroot /host /bin/bash "$job/run.sh"
echo "hyve-nested: end"
poweroff -f
INIT
)
kernel_dir="$cache/$package-$(printf '%s' "$init" | sha256sum | cut -c1-12)"
release=${package#linux-image-}
if [ ! -f "$kernel_dir/initrd.cpio.gz" ]; then
  echo "with-kvm: no usable /dev/kvm here; preparing the nested-KVM VM's kernel ($package) in $kernel_dir"
  stage=$(mktemp -d "$cache/.stage-XXXXXX")
  trap 'rm -rf "$stage"' EXIT
  fixture="$hyve_cache/debian-kernel-$release"
  if [ -f "$fixture/vmlinuz" ] && [ -f "$fixture/modules/modules.order" ]; then
    # `hyve fixtures --debian-kernel` has this package already (the slow test boots it):
    # its files, hard-linked, instead of a second download.
    mkdir -p "$stage/root/boot" "$stage/root/lib/modules"
    cp "$fixture/vmlinuz" "$stage/root/boot/vmlinuz-$release"
    cp -al "$fixture/modules" "$stage/root/lib/modules/$release"
  else
    (cd "$stage" && apt-get download -q "$package" >/dev/null 2>&1) || fail "apt-get download $package failed (network? stale package lists: apt-get update)"
    dpkg-deb -x "$stage"/*.deb "$stage/root"
  fi
  /usr/sbin/depmod -b "$stage/root" "$release"
  modules="$stage/root/lib/modules/$release"
  # The initramfs carries only what mounting the host needs; kvm_amd and the rest come
  # from the full module tree over 9p afterwards.
  initramfs="$stage/initramfs"
  mkdir -p "$initramfs"/{bin,dev,proc,sys,host,lib/modules/"$release"}
  cp "$(command -v busybox)" "$initramfs/bin/busybox"
  for module in virtio_pci 9pnet_virtio 9p; do
    path=$(awk -F: -v m="/$module.ko" 'index($1, m) == length($1) - length(m) + 1 { print $0; exit }' "$modules/modules.dep")
    [ -n "$path" ] || fail "$package has no $module module"
    for file in ${path/:/}; do
      mkdir -p "$initramfs/lib/modules/$release/$(dirname "$file")"
      cp "$modules/$file" "$initramfs/lib/modules/$release/$file"
    done
  done
  cp "$modules"/modules.{dep,order,builtin} "$initramfs/lib/modules/$release/"
  printf '%s' "$init" >"$initramfs/init"
  chmod +x "$initramfs/init"
  mkdir -p "$stage/entry"
  (cd "$initramfs" && find . | cpio -o -H newc --quiet | gzip -1) >"$stage/entry/initrd.cpio.gz"
  cp "$stage/root/boot/vmlinuz-$release" "$stage/entry/vmlinuz"
  mv "$modules" "$stage/entry/modules"
  rm -rf "$kernel_dir" && mv "$stage/entry" "$kernel_dir"
  rm -rf "$stage"
  trap - EXIT
  # Older kernels and init scripts, unless a run is using one now.
  for old in "$cache"/linux-image-*; do
    [ "$old" = "$kernel_dir" ] || compgen -G "$old/job-*" >/dev/null || rm -rf "$old"
  done
fi

# The job: this shell's exported environment and directory, the command, and a file for
# its exit status, in a directory both sides see (the cache, on the shared root).
job=$(mktemp -d "$kernel_dir/job-XXXXXX")
log="$job/qemu.log"
trap 'rm -rf "$job"' EXIT
export -p | grep -v -E '^declare -x (OLDPWD|PWD|SHLVL|_)=' >"$job/env.sh"
case "$PWD/" in /tmp/?*) top=${PWD#/tmp/}; echo "${top%%/*}" >"$job/tmp-keep" ;; esac
{
  echo '#!/bin/bash'
  echo ". $(printf %q "$job/env.sh")"
  echo "cd $(printf %q "$PWD")"
  # What runs longest and the kernel's last words, every 20 s, on a second serial port
  # that QEMU writes to monitor.txt: the way to see into a run that hangs, even on 9p.
  echo "(while sleep 20; do { date; ps -eo pid,stat,etime,time,wchan:20,args --sort=-time | cut -c1-200 | head -n 25; dmesg | tail -n 40; } >/dev/ttyS1; done) &"
  # Through a pipe, so the command sees no terminal (the VM's console is one); a copy
  # in the job directory can be followed from outside while it runs.
  echo "set -o pipefail"
  printf '%q ' "$@"
  echo "</dev/null 2>&1 | tee $(printf %q "$job/output.log")"
  echo "echo \$? >$(printf %q "$job/status")"
} >"$job/run.sh"

total_kib=$(awk '/^MemTotal:/ { print $2 }' /proc/meminfo)
memory=${HYVE_NESTED_MEMORY:-$(( total_kib * 2 / 3 / 1024 > 16384 ? 16384 : total_kib * 2 / 3 / 1024 ))M}
echo "with-kvm: no usable /dev/kvm here; running \`$*\` in a nested-KVM VM (QEMU TCG, $(nproc) vCPUs, $memory; kernel $release)"
# The VM writes monitor.txt every 20 s; when it stops for 2 minutes the VM has stalled:
# both vCPUs in soft lockups, spinning with interrupts off (one dump: __schedule and
# native_queued_spin_lock_slowpath), in about half of the full test runs (cause unknown:
# QEMU 7.2's multi-threaded TCG is the suspect; npt=0 made it rarer). The watchdog ends QEMU
# and the command runs again, up to 3 times in all, saying so: a stall of the emulator is
# not a test result.
stall_seconds=${HYVE_NESTED_STALL_SECONDS:-120}
attempts=3
# Where each vCPU of a stalled VM is: QEMU's `info registers -a` through its monitor
# socket. The VM boots with nokaslr, so the RIPs can be looked up in its /proc/kallsyms
# (Debian ships only a placeholder System.map).
dump_registers() {
  node -e '
    const socket = require("net").connect(process.argv[1]);
    let out = "";
    socket.on("data", (data) => (out += data));
    socket.on("error", () => process.exit(0));
    socket.on("connect", () => socket.write("info registers -a\n"));
    setTimeout(() => { process.stdout.write(out); process.exit(0); }, 3000);
  ' "$job/monitor.sock" >"$job/registers.txt" 2>/dev/null || true
}
run_vm() {
  rm -f "$job/monitor.txt" "$job/qemu.pid" "$job/stalled" "$job/registers.txt"
  local started
  started=$(date +%s)
  (
    while sleep 10; do
      pid=$(cat "$job/qemu.pid" 2>/dev/null) || continue
      kill -0 "$pid" 2>/dev/null || exit 0
      last=$(stat -c %Y "$job/monitor.txt" 2>/dev/null || echo "$started")
      if [ $(( $(date +%s) - last )) -gt "$stall_seconds" ]; then
        touch "$job/stalled"
        dump_registers
        kill "$pid"
        exit 0
      fi
    done
  ) &
  local watchdog=$!
  # The console shows SeaBIOS and the kernel first: only the job's own output passes.
  qemu-system-x86_64 -accel tcg,thread=multi -cpu EPYC -smp "$(nproc)" -m "$memory" \
    -nographic -no-reboot -nic none -pidfile "$job/qemu.pid" \
    -kernel "$kernel_dir/vmlinuz" -initrd "$kernel_dir/initrd.cpio.gz" \
    -append "console=ttyS0 quiet loglevel=1 panic=-1 nokaslr hyve_job=$job" \
    -virtfs local,path=/,mount_tag=hostroot,security_model=passthrough,multidevs=remap,id=hostroot \
    -serial mon:stdio -serial file:"$job/monitor.txt" -monitor unix:"$job/monitor.sock",server=on,wait=off \
    2>"$log" </dev/null |
    sed -u -n 's/\r$//; /hyve-nested: start$/,/^hyve-nested: end$/{/hyve-nested: /!p}' || true
  kill "$watchdog" 2>/dev/null || true
  wait "$watchdog" 2>/dev/null || true
  echo "with-kvm: the nested VM ran for $(( $(date +%s) - started )) s"
}
last_words() {
  echo "with-kvm: its last processes and kernel messages:" >&2
  tail -n 70 "$job/monitor.txt" >&2 2>/dev/null || true
  if [ -s "$job/registers.txt" ]; then
    echo "with-kvm: where its vCPUs were (QEMU's info registers):" >&2
    grep -E '^(CPU#|RIP=|CS =|CR0=)' "$job/registers.txt" >&2 || true
  fi
}

run_vm
for attempt in $(seq 2 "$attempts"); do
  [ ! -s "$job/status" ] && [ -e "$job/stalled" ] || break
  echo "with-kvm: the nested VM stalled (no sign of life for ${stall_seconds} s); running \`$*\` again (attempt $attempt of $attempts)" >&2
  last_words
  run_vm
done
if [ ! -s "$job/status" ]; then
  if [ -e "$job/stalled" ]; then
    echo "with-kvm: the nested VM stalled $attempts times (no sign of life for ${stall_seconds} s)" >&2
  else
    echo "with-kvm: the nested VM ended without the command's exit status; QEMU said:" >&2
    tail -n 20 "$log" >&2
  fi
  last_words
  exit 1
fi
exit "$(cat "$job/status")"
