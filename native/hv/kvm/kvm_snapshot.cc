// Snapshot save/restore of KVM vCPUs and the in-kernel platform. The sections are KVM's
// own structs, size-prefixed (StateWriter::state), so a kernel header with another layout
// is refused rather than misread. Restore follows the order a probe verified on this
// host's PVM: SREGS, MSRs, REGS, FPU, MP_STATE, LAPIC, VCPU_EVENTS, DEBUGREGS per vCPU,
// then the irqchip, PIT and clock of the VM.
#include "hv/kvm/kvm_hypervisor.h"

#include "util/error.h"

#include <sys/ioctl.h>

#include <algorithm>
#include <cerrno>
#include <optional>
#include <string>

namespace hyve::hv::kvm {

namespace {

constexpr uint32_t kMsrTsc = 0x10;
constexpr uint32_t kMsrTscDeadline = 0x6e0;

// Which optional blocks a vCPU section carries.
constexpr uint32_t kHasXsave = 1u << 0;
constexpr uint32_t kHasXcrs = 1u << 1;

template <typename T>
void get(int fd, unsigned long request, const char* what, T* arg) {
  if (::ioctl(fd, request, arg) < 0) throwErrno(ErrorCode::Hypervisor, std::string("KVM ") + what + " failed");
}

template <typename T>
void set(int fd, unsigned long request, const char* what, const T* arg) {
  if (::ioctl(fd, request, arg) < 0) {
    throwErrno(ErrorCode::Hypervisor, std::string("restoring the snapshot: KVM ") + what + " failed");
  }
}

// KVM_GET_MSRS stops at the first MSR it cannot read and returns how many it read. Skip
// such an MSR and carry on, so one unreadable index does not lose the ones after it.
std::vector<kvm_msr_entry> readMsrs(int fd, std::span<const uint32_t> indices) {
  std::vector<kvm_msr_entry> out;
  size_t next = 0;
  while (next < indices.size()) {
    size_t count = indices.size() - next;
    std::vector<uint8_t> buffer(sizeof(kvm_msrs) + count * sizeof(kvm_msr_entry));
    auto* list = reinterpret_cast<kvm_msrs*>(buffer.data());
    list->nmsrs = static_cast<uint32_t>(count);
    for (size_t i = 0; i < count; ++i) list->entries[i].index = indices[next + i];
    int read = ::ioctl(fd, KVM_GET_MSRS, list);
    if (read < 0) throwErrno(ErrorCode::Hypervisor, "KVM_GET_MSRS failed");
    out.insert(out.end(), list->entries, list->entries + read);
    next += static_cast<size_t>(read) + 1;  // skip the one it refused (if any)
  }
  return out;
}

void writeMsrs(int fd, std::span<const kvm_msr_entry> entries) {
  std::vector<uint8_t> buffer(sizeof(kvm_msrs) + entries.size() * sizeof(kvm_msr_entry));
  auto* list = reinterpret_cast<kvm_msrs*>(buffer.data());
  list->nmsrs = static_cast<uint32_t>(entries.size());
  std::copy(entries.begin(), entries.end(), list->entries);
  int written = ::ioctl(fd, KVM_SET_MSRS, list);
  if (written < 0) throwErrno(ErrorCode::Hypervisor, "restoring the snapshot: KVM_SET_MSRS failed");
  if (static_cast<size_t>(written) != entries.size()) {
    char hex[16];
    std::snprintf(hex, sizeof hex, "%x", entries[written].index);
    throw Error(ErrorCode::BadSnapshot, std::string("restoring the snapshot: KVM refused MSR 0x") + hex +
                                            " (was the snapshot taken on another host?)");
  }
}

}  // namespace

void KvmVcpu::saveState(snapshot::StateWriter& out) const {
  int fd = fd_.get();
  kvm_regs regs{};
  kvm_sregs sregs{};
  kvm_fpu fpu{};
  kvm_lapic_state lapic{};
  kvm_vcpu_events events{};
  kvm_mp_state mp{};
  kvm_debugregs debug{};
  get(fd, KVM_GET_REGS, "GET_REGS", &regs);
  get(fd, KVM_GET_SREGS, "GET_SREGS", &sregs);
  get(fd, KVM_GET_FPU, "GET_FPU", &fpu);
  get(fd, KVM_GET_LAPIC, "GET_LAPIC", &lapic);
  get(fd, KVM_GET_VCPU_EVENTS, "GET_VCPU_EVENTS", &events);
  get(fd, KVM_GET_MP_STATE, "GET_MP_STATE", &mp);
  get(fd, KVM_GET_DEBUGREGS, "GET_DEBUGREGS", &debug);
  // XSAVE/XCRS are optional: absent on some backends (and hidden from PVM guests anyway).
  auto xsave = std::make_unique<kvm_xsave>();
  kvm_xcrs xcrs{};
  uint32_t flags = 0;
  if (::ioctl(fd, KVM_GET_XSAVE, xsave.get()) == 0) flags |= kHasXsave;
  if (::ioctl(fd, KVM_GET_XCRS, &xcrs) == 0) flags |= kHasXcrs;
  std::vector<kvm_msr_entry> msrs = readMsrs(fd, msrIndices_);

  out.u32(flags);
  out.state(regs);
  out.state(sregs);
  out.state(fpu);
  if (flags & kHasXsave) out.state(*xsave);
  if (flags & kHasXcrs) out.state(xcrs);
  out.u32(static_cast<uint32_t>(msrs.size()));
  for (const auto& m : msrs) {
    out.u32(m.index);
    out.u64(m.data);
  }
  out.state(lapic);
  out.state(events);
  out.state(mp);
  out.state(debug);
}

void KvmVcpu::restoreState(snapshot::StateReader& in, std::chrono::nanoseconds elapsed) {
  // Parse everything first: a malformed section throws before the vCPU is touched.
  uint32_t flags = in.u32();
  auto regs = in.state<kvm_regs>();
  auto sregs = in.state<kvm_sregs>();
  auto fpu = in.state<kvm_fpu>();
  auto xsave = std::make_unique<kvm_xsave>();
  kvm_xcrs xcrs{};
  if (flags & kHasXsave) *xsave = in.state<kvm_xsave>();
  if (flags & kHasXcrs) xcrs = in.state<kvm_xcrs>();
  uint32_t msrCount = in.u32();
  if (msrCount > 4096) in.fail("lists an implausible number of MSRs");
  std::vector<kvm_msr_entry> msrs;
  std::optional<kvm_msr_entry> tscDeadline;
  int tscKhz = ::ioctl(fd_.get(), KVM_GET_TSC_KHZ, 0);
  for (uint32_t i = 0; i < msrCount; ++i) {
    kvm_msr_entry entry{};
    entry.index = in.u32();
    entry.data = in.u64();
    if (entry.index == kMsrTsc) {
      // PVM runs guest user mode natively, so user-mode rdtsc reads the host's TSC and the
      // only consistent guest TSC is the host's (KVM's initial zero offset): leave it, and
      // guest time moves on by itself. Elsewhere move the saved TSC on by the time the
      // snapshot sat on disk (kvmclock is moved on in restorePlatformState).
      if (pvm_) continue;
      if (tscKhz > 0) entry.data += static_cast<uint64_t>(elapsed.count()) / 1000 * static_cast<uint64_t>(tscKhz) / 1000;
    }
    // KVM ignores a deadline written while the LAPIC is not yet in TSC-deadline mode;
    // write it after KVM_SET_LAPIC (as QEMU does), or the guest's tick never fires again.
    if (entry.index == kMsrTscDeadline) {
      tscDeadline = entry;
      continue;
    }
    msrs.push_back(entry);
  }
  auto lapic = in.state<kvm_lapic_state>();
  auto events = in.state<kvm_vcpu_events>();
  auto mp = in.state<kvm_mp_state>();
  auto debug = in.state<kvm_debugregs>();
  in.expectEnd();

  int fd = fd_.get();
  set(fd, KVM_SET_SREGS, "SET_SREGS", &sregs);
  writeMsrs(fd, msrs);
  set(fd, KVM_SET_REGS, "SET_REGS", &regs);
  set(fd, KVM_SET_FPU, "SET_FPU", &fpu);
  if (flags & kHasXsave) set(fd, KVM_SET_XSAVE, "SET_XSAVE", xsave.get());
  if (flags & kHasXcrs) set(fd, KVM_SET_XCRS, "SET_XCRS", &xcrs);
  set(fd, KVM_SET_MP_STATE, "SET_MP_STATE", &mp);
  set(fd, KVM_SET_LAPIC, "SET_LAPIC", &lapic);
  // Only the state KVM reported as valid; the flags say which parts that is.
  set(fd, KVM_SET_VCPU_EVENTS, "SET_VCPU_EVENTS", &events);
  set(fd, KVM_SET_DEBUGREGS, "SET_DEBUGREGS", &debug);
  if (tscDeadline) writeMsrs(fd, {&*tscDeadline, 1});
  // Tell a kvmclock guest it was paused, so its soft-lockup watchdog does not mistake
  // the gap for a hung CPU. Fails harmlessly when the guest has no kvmclock.
  ::ioctl(fd, KVM_KVMCLOCK_CTRL, 0);
}

void KvmVm::savePlatformState(snapshot::StateWriter& out) const {
  int fd = vm_.get();
  for (uint32_t chip = 0; chip < 3; ++chip) {  // PIC master, PIC slave, IOAPIC
    kvm_irqchip irqchip{};
    irqchip.chip_id = chip;
    get(fd, KVM_GET_IRQCHIP, "GET_IRQCHIP", &irqchip);
    out.state(irqchip);
  }
  kvm_pit_state2 pit{};
  get(fd, KVM_GET_PIT2, "GET_PIT2", &pit);
  out.state(pit);
  kvm_clock_data clock{};
  get(fd, KVM_GET_CLOCK, "GET_CLOCK", &clock);
  out.state(clock);
}

void KvmVm::restorePlatformState(snapshot::StateReader& in, std::chrono::nanoseconds elapsed) {
  kvm_irqchip chips[3];
  for (uint32_t chip = 0; chip < 3; ++chip) {
    chips[chip] = in.state<kvm_irqchip>();
    if (chips[chip].chip_id != chip) in.fail("has interrupt controllers out of order");
  }
  auto pit = in.state<kvm_pit_state2>();
  auto saved = in.state<kvm_clock_data>();
  in.expectEnd();

  int fd = vm_.get();
  for (const auto& chip : chips) set(fd, KVM_SET_IRQCHIP, "SET_IRQCHIP", &chip);
  set(fd, KVM_SET_PIT2, "SET_PIT2", &pit);
  // kvmclock continues from the saved value plus the time the snapshot sat on disk: guest
  // monotonic time jumps forward as after a long pause, and wall-clock time is current.
  kvm_clock_data clock{};
  clock.clock = saved.clock + static_cast<uint64_t>(std::max<int64_t>(elapsed.count(), 0));
  set(fd, KVM_SET_CLOCK, "SET_CLOCK", &clock);
}

}  // namespace hyve::hv::kvm
