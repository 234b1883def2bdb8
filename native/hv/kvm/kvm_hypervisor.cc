#include "hv/kvm/kvm_hypervisor.h"

#include "core/layout.h"
#include "hv/kvm/pvm_host.h"
#include "util/error.h"

#include <fcntl.h>
#include <sys/ioctl.h>
#include <sys/mman.h>

#include <cerrno>
#include <csignal>
#include <cstring>
#include <mutex>

namespace hyve::hv {

namespace {

// The signal that kicks a vCPU thread out of KVM_RUN. SIGUSR1 is Node's debugger
// signal and the first real-time signals belong to glibc, so take one further up.
int kickSignal() { return SIGRTMIN + 6; }

void installKickHandler() {
  static std::once_flag once;
  std::call_once(once, [] {
    struct sigaction action {};
    action.sa_handler = [](int) {};  // only interrupts the ioctl
    sigemptyset(&action.sa_mask);
    action.sa_flags = 0;  // no SA_RESTART: KVM_RUN must return EINTR
    sigaction(kickSignal(), &action, nullptr);
  });
}

int checkedIoctl(int fd, unsigned long request, const char* what, unsigned long arg = 0) {
  int result = ::ioctl(fd, request, arg);
  if (result < 0) throwErrno(ErrorCode::Hypervisor, std::string("KVM ") + what + " failed");
  return result;
}

template <typename T>
void checkedIoctl(int fd, unsigned long request, const char* what, T* arg) {
  if (::ioctl(fd, request, arg) < 0) throwErrno(ErrorCode::Hypervisor, std::string("KVM ") + what + " failed");
}

}  // namespace

std::unique_ptr<Hypervisor> Hypervisor::open() {
  int fd = ::open("/dev/kvm", O_RDWR | O_CLOEXEC);
  if (fd < 0) {
    int err = errno;
    if ((err == ENOENT || err == ENXIO || err == ENODEV) && kvm::hostIsPvm()) {
      // Measured on a machine that is itself a PVM guest: the module loads, refuses to
      // bind ("this kernel is itself a kvm-pvm guest"), and no /dev/kvm appears.
      throw Error(ErrorCode::NoKvm,
                  "/dev/kvm is not available although the kvm_pvm module is loaded: it creates no device "
                  "when this machine is itself a PVM guest (dmesg: 'this kernel is itself a kvm-pvm guest'); "
                  "run on the PVM host itself or on a machine with hardware virtualization");
    }
    if (err == ENOENT || err == ENXIO || err == ENODEV) {
      throw Error(ErrorCode::NoKvm,
                  "/dev/kvm is not available: enable hardware virtualization and load the kvm module "
                  "(kvm_intel or kvm_amd), or run on a host with nested virtualization");
    }
    if (err == EACCES || err == EPERM) {
      throw Error(ErrorCode::KvmAccess,
                  "permission denied opening /dev/kvm: add this user to the 'kvm' group "
                  "(sudo usermod -aG kvm $USER, then log in again)");
    }
    errno = err;
    throwErrno(ErrorCode::NoKvm, "cannot open /dev/kvm");
  }
  UniqueFd kvm(fd);
  int version = ::ioctl(kvm.get(), KVM_GET_API_VERSION, 0);
  if (version != KVM_API_VERSION) {
    throw Error(ErrorCode::NoKvm, "/dev/kvm speaks KVM API version " + std::to_string(version) + ", hyve needs " +
                                      std::to_string(KVM_API_VERSION));
  }
  return std::make_unique<kvm::KvmHypervisor>(std::move(kvm), kvm::hostIsPvm());
}

namespace kvm {

KvmHypervisor::KvmHypervisor(UniqueFd kvm, bool pvm) : kvm_(std::move(kvm)), pvm_(pvm) {}

uint32_t KvmHypervisor::maxVcpus() const {
  int max = ::ioctl(kvm_.get(), KVM_CHECK_EXTENSION, KVM_CAP_MAX_VCPUS);
  if (max <= 0) max = ::ioctl(kvm_.get(), KVM_CHECK_EXTENSION, KVM_CAP_NR_VCPUS);
  return max > 0 ? static_cast<uint32_t>(max) : 1;
}

std::unique_ptr<Vm> KvmHypervisor::createVm() {
  int vm = ::ioctl(kvm_.get(), KVM_CREATE_VM, 0);
  if (vm < 0) throwErrno(ErrorCode::Hypervisor, "KVM_CREATE_VM failed");
  return std::make_unique<KvmVm>(kvm_.get(), UniqueFd(vm), pvm_);
}

KvmVm::KvmVm(int kvmFd, UniqueFd vm, bool pvm) : kvmFd_(kvmFd), vm_(std::move(vm)), pvm_(pvm) {
  int size = checkedIoctl(kvmFd_, KVM_GET_VCPU_MMAP_SIZE, "GET_VCPU_MMAP_SIZE");
  runSize_ = static_cast<size_t>(size);
  // Report every emulation failure to user space with the instruction bytes, so the
  // PVM fixup layer can act on it. Older kernels lack the capability: harmless.
  if (::ioctl(vm_.get(), KVM_CHECK_EXTENSION, KVM_CAP_EXIT_ON_EMULATION_FAILURE) > 0) {
    kvm_enable_cap cap{};
    cap.cap = KVM_CAP_EXIT_ON_EMULATION_FAILURE;
    cap.args[0] = 1;
    ::ioctl(vm_.get(), KVM_ENABLE_CAP, &cap);
  }
}

void KvmVm::mapMemory(const MemorySlot& slot) {
  kvm_userspace_memory_region region{};
  region.slot = slot.slot;
  region.guest_phys_addr = slot.guestAddress;
  region.memory_size = slot.size;
  region.userspace_addr = reinterpret_cast<uint64_t>(slot.host);
  if (::ioctl(vm_.get(), KVM_SET_USER_MEMORY_REGION, &region) < 0) {
    throwErrno(ErrorCode::Memory, "cannot map " + std::to_string(slot.size >> 20) + " MiB of guest memory at 0x" +
                                      std::to_string(slot.guestAddress));
  }
}

void KvmVm::createPlatform() {
  // VMX needs these pages reserved; other backends (PVM, SVM) ignore or reject them.
  ::ioctl(vm_.get(), KVM_SET_TSS_ADDR, static_cast<unsigned long>(layout::kKvmTss));
  uint64_t identity = layout::kKvmIdentityMap;
  ::ioctl(vm_.get(), KVM_SET_IDENTITY_MAP_ADDR, &identity);
  checkedIoctl(vm_.get(), KVM_CREATE_IRQCHIP, "CREATE_IRQCHIP");
  kvm_pit_config pit{};
  pit.flags = KVM_PIT_SPEAKER_DUMMY;
  checkedIoctl(vm_.get(), KVM_CREATE_PIT2, "CREATE_PIT2", &pit);
}

std::unique_ptr<Vcpu> KvmVm::createVcpu(uint32_t id) {
  int fd = ::ioctl(vm_.get(), KVM_CREATE_VCPU, static_cast<unsigned long>(id));
  if (fd < 0) throwErrno(ErrorCode::Hypervisor, "KVM_CREATE_VCPU " + std::to_string(id) + " failed");
  if (msrIndices_.empty()) msrIndices_ = msrIndexList();
  return std::make_unique<KvmVcpu>(id, UniqueFd(fd), runSize_, msrIndices_, pvm_);
}

std::vector<CpuidEntry> KvmVm::supportedCpuid() const {
  for (uint32_t capacity = 128;; capacity *= 2) {
    std::vector<uint8_t> buffer(sizeof(kvm_cpuid2) + capacity * sizeof(kvm_cpuid_entry2));
    auto* cpuid = reinterpret_cast<kvm_cpuid2*>(buffer.data());
    cpuid->nent = capacity;
    if (::ioctl(kvmFd_, KVM_GET_SUPPORTED_CPUID, cpuid) < 0) {
      if (errno == E2BIG && capacity < 4096) continue;
      throwErrno(ErrorCode::Hypervisor, "KVM_GET_SUPPORTED_CPUID failed");
    }
    // The in-kernel LAPIC emulates the TSC-deadline timer whatever the host CPU has, but
    // kernels before 6.3 leave it out of this table (QEMU and Firecracker add it too). A
    // guest without it calibrates its LAPIC timer against the PIT for 100 ms at boot, and
    // where that verification fails (timing under nested emulation) it falls back to PIT
    // broadcast: sleeps never end.
    const bool tscDeadline = ::ioctl(vm_.get(), KVM_CHECK_EXTENSION, KVM_CAP_TSC_DEADLINE_TIMER) > 0;
    constexpr uint32_t kLeaf1EcxTscDeadline = 1u << 24;
    std::vector<CpuidEntry> entries;
    for (uint32_t i = 0; i < cpuid->nent; ++i) {
      const auto& e = cpuid->entries[i];
      uint32_t ecx = e.ecx;
      if (e.function == 1 && tscDeadline) ecx |= kLeaf1EcxTscDeadline;
      entries.push_back({e.function, e.index, e.flags, e.eax, e.ebx, ecx, e.edx});
    }
    return entries;
  }
}

std::vector<uint32_t> KvmVm::msrIndexList() const {
  kvm_msr_list probe{};
  ::ioctl(kvmFd_, KVM_GET_MSR_INDEX_LIST, &probe);  // E2BIG, fills nmsrs
  std::vector<uint8_t> buffer(sizeof(kvm_msr_list) + probe.nmsrs * sizeof(uint32_t));
  auto* list = reinterpret_cast<kvm_msr_list*>(buffer.data());
  list->nmsrs = probe.nmsrs;
  checkedIoctl(kvmFd_, KVM_GET_MSR_INDEX_LIST, "GET_MSR_INDEX_LIST", list);
  return {list->indices, list->indices + list->nmsrs};
}

void KvmVm::setIrqLevel(uint32_t gsi, bool high) {
  kvm_irq_level irq{};
  irq.irq = gsi;
  irq.level = high ? 1 : 0;
  ::ioctl(vm_.get(), KVM_IRQ_LINE, &irq);
}

void KvmVm::signalMsi(uint64_t address, uint32_t data) {
  kvm_msi msi{};
  msi.address_lo = static_cast<uint32_t>(address);
  msi.address_hi = static_cast<uint32_t>(address >> 32);
  msi.data = data;
  ::ioctl(vm_.get(), KVM_SIGNAL_MSI, &msi);
}

bool KvmVm::addIoEvent(uint64_t address, uint32_t length, int eventFd) {
  kvm_ioeventfd event{};
  event.addr = address;
  event.len = length;
  event.fd = eventFd;
  return ::ioctl(vm_.get(), KVM_IOEVENTFD, &event) == 0;
}

void KvmVm::removeIoEvent(uint64_t address, uint32_t length, int eventFd) {
  kvm_ioeventfd event{};
  event.addr = address;
  event.len = length;
  event.fd = eventFd;
  event.flags = KVM_IOEVENTFD_FLAG_DEASSIGN;
  ::ioctl(vm_.get(), KVM_IOEVENTFD, &event);
}

// ---- vCPU ----

namespace {

Segment fromKvm(const kvm_segment& s) {
  return {s.base, s.limit, s.selector, s.type, s.present, s.dpl, s.db, s.s, s.l, s.g, s.avl, s.unusable};
}

kvm_segment toKvm(const Segment& s) {
  kvm_segment k{};
  k.base = s.base;
  k.limit = s.limit;
  k.selector = s.selector;
  k.type = s.type;
  k.present = s.present;
  k.dpl = s.dpl;
  k.db = s.db;
  k.s = s.s;
  k.l = s.l;
  k.g = s.g;
  k.avl = s.avl;
  k.unusable = s.unusable;
  return k;
}

}  // namespace

KvmVcpu::KvmVcpu(uint32_t id, UniqueFd fd, size_t runSize, std::vector<uint32_t> msrIndices, bool pvm)
    : id_(id), msrIndices_(std::move(msrIndices)), pvm_(pvm), fd_(std::move(fd)) {
  void* run = ::mmap(nullptr, runSize, PROT_READ | PROT_WRITE, MAP_SHARED, fd_.get(), 0);
  if (run == MAP_FAILED) throwErrno(ErrorCode::Hypervisor, "cannot map the vCPU run area");
  run_ = Mapping(run, runSize);
  installKickHandler();
}

void KvmVcpu::bindToCurrentThread() {
  thread_ = pthread_self();
  threadBound_.store(true, std::memory_order_release);
}

void KvmVcpu::requestStop() {
  __atomic_store_n(&runData()->immediate_exit, 1, __ATOMIC_SEQ_CST);
  if (threadBound_.load(std::memory_order_acquire)) pthread_kill(thread_, kickSignal());
}

void KvmVcpu::kick() {
  if (threadBound_.load(std::memory_order_acquire)) pthread_kill(thread_, kickSignal());
}

VcpuExit KvmVcpu::run() {
  VcpuExit exit;
  kvm_run* run = runData();
  if (::ioctl(fd_.get(), KVM_RUN, 0) < 0) {
    int err = errno;
    if (err == EINTR || err == EAGAIN) {
      __atomic_store_n(&run->immediate_exit, 0, __ATOMIC_SEQ_CST);
      exit.kind = VcpuExit::Kind::Interrupted;
      return exit;
    }
    errno = err;
    throwErrno(ErrorCode::Hypervisor, "KVM_RUN on vCPU " + std::to_string(id_) + " failed");
  }
  exit.rawReason = run->exit_reason;
  switch (run->exit_reason) {
    case KVM_EXIT_IO: {
      exit.kind = VcpuExit::Kind::PortIo;
      exit.address = run->io.port;
      exit.write = run->io.direction == KVM_EXIT_IO_OUT;
      exit.size = run->io.size;
      exit.count = run->io.count;
      // KVM places the data inside the run area; clamp in case of a malformed record.
      size_t offset = run->io.data_offset;
      size_t length = static_cast<size_t>(exit.size) * exit.count;
      if (offset < run_.size() && length <= run_.size() - offset) {
        exit.data = {run_.data() + offset, length};
      } else {
        exit.kind = VcpuExit::Kind::InternalError;
      }
      break;
    }
    case KVM_EXIT_MMIO:
      exit.kind = VcpuExit::Kind::Mmio;
      exit.address = run->mmio.phys_addr;
      exit.write = run->mmio.is_write != 0;
      exit.size = std::min<uint32_t>(run->mmio.len, sizeof(run->mmio.data));
      exit.data = {run->mmio.data, exit.size};
      break;
    case KVM_EXIT_HLT: exit.kind = VcpuExit::Kind::Halt; break;
    case KVM_EXIT_DEBUG:
      exit.kind = VcpuExit::Kind::Breakpoint;
      exit.address = run->debug.arch.pc;
      exit.details = {run->debug.arch.exception, run->debug.arch.dr6, run->debug.arch.dr7};
      break;
    case KVM_EXIT_SHUTDOWN: exit.kind = VcpuExit::Kind::Shutdown; break;
    case KVM_EXIT_INTR: exit.kind = VcpuExit::Kind::Interrupted; break;
    case KVM_EXIT_SYSTEM_EVENT:
      switch (run->system_event.type) {
        case KVM_SYSTEM_EVENT_RESET: exit.kind = VcpuExit::Kind::SystemReset; break;
        case KVM_SYSTEM_EVENT_SHUTDOWN: exit.kind = VcpuExit::Kind::SystemShutdown; break;
        default: exit.kind = VcpuExit::Kind::InternalError; break;
      }
      break;
    case KVM_EXIT_INTERNAL_ERROR: {
      exit.suberror = run->internal.suberror;
      uint32_t ndata = std::min<uint32_t>(run->internal.ndata, 16);
      exit.details.assign(run->internal.data, run->internal.data + ndata);
      if (run->internal.suberror == KVM_INTERNAL_ERROR_EMULATION) {
        exit.kind = VcpuExit::Kind::EmulationFailure;
        const auto& failure = run->emulation_failure;
        if (ndata >= 1 && (failure.flags & KVM_INTERNAL_ERROR_EMULATION_FLAG_INSTRUCTION_BYTES)) {
          uint8_t size = std::min<uint8_t>(failure.insn_size, sizeof(failure.insn_bytes));
          exit.instruction.assign(failure.insn_bytes, failure.insn_bytes + size);
        }
      } else {
        exit.kind = VcpuExit::Kind::InternalError;
      }
      break;
    }
    default: exit.kind = VcpuExit::Kind::Unknown; break;
  }
  return exit;
}

Registers KvmVcpu::registers() const {
  kvm_regs r{};
  checkedIoctl(fd_.get(), KVM_GET_REGS, "GET_REGS", &r);
  return {r.rax, r.rbx, r.rcx, r.rdx, r.rsi, r.rdi, r.rsp, r.rbp, r.r8,  r.r9,
          r.r10, r.r11, r.r12, r.r13, r.r14, r.r15, r.rip, r.rflags};
}

void KvmVcpu::setRegisters(const Registers& g) {
  kvm_regs r{};
  r.rax = g.rax; r.rbx = g.rbx; r.rcx = g.rcx; r.rdx = g.rdx;
  r.rsi = g.rsi; r.rdi = g.rdi; r.rsp = g.rsp; r.rbp = g.rbp;
  r.r8 = g.r8; r.r9 = g.r9; r.r10 = g.r10; r.r11 = g.r11;
  r.r12 = g.r12; r.r13 = g.r13; r.r14 = g.r14; r.r15 = g.r15;
  r.rip = g.rip; r.rflags = g.rflags;
  checkedIoctl(fd_.get(), KVM_SET_REGS, "SET_REGS", &r);
}

SpecialRegisters KvmVcpu::specialRegisters() const {
  kvm_sregs s{};
  checkedIoctl(fd_.get(), KVM_GET_SREGS, "GET_SREGS", &s);
  SpecialRegisters out{};
  out.cs = fromKvm(s.cs); out.ds = fromKvm(s.ds); out.es = fromKvm(s.es); out.fs = fromKvm(s.fs);
  out.gs = fromKvm(s.gs); out.ss = fromKvm(s.ss); out.tr = fromKvm(s.tr); out.ldt = fromKvm(s.ldt);
  out.gdt = {s.gdt.base, s.gdt.limit};
  out.idt = {s.idt.base, s.idt.limit};
  out.cr0 = s.cr0; out.cr2 = s.cr2; out.cr3 = s.cr3; out.cr4 = s.cr4; out.cr8 = s.cr8;
  out.efer = s.efer; out.apicBase = s.apic_base;
  return out;
}

void KvmVcpu::setSpecialRegisters(const SpecialRegisters& in) {
  // Start from KVM's copy so the pending-interrupt bitmap is preserved.
  kvm_sregs s{};
  checkedIoctl(fd_.get(), KVM_GET_SREGS, "GET_SREGS", &s);
  s.cs = toKvm(in.cs); s.ds = toKvm(in.ds); s.es = toKvm(in.es); s.fs = toKvm(in.fs);
  s.gs = toKvm(in.gs); s.ss = toKvm(in.ss); s.tr = toKvm(in.tr); s.ldt = toKvm(in.ldt);
  s.gdt.base = in.gdt.base; s.gdt.limit = in.gdt.limit;
  s.idt.base = in.idt.base; s.idt.limit = in.idt.limit;
  s.cr0 = in.cr0; s.cr2 = in.cr2; s.cr3 = in.cr3; s.cr4 = in.cr4; s.cr8 = in.cr8;
  s.efer = in.efer; s.apic_base = in.apicBase;
  checkedIoctl(fd_.get(), KVM_SET_SREGS, "SET_SREGS", &s);
}

void KvmVcpu::setCpuid(std::span<const CpuidEntry> entries) {
  std::vector<uint8_t> buffer(sizeof(kvm_cpuid2) + entries.size() * sizeof(kvm_cpuid_entry2));
  auto* cpuid = reinterpret_cast<kvm_cpuid2*>(buffer.data());
  cpuid->nent = static_cast<uint32_t>(entries.size());
  for (size_t i = 0; i < entries.size(); ++i) {
    auto& k = cpuid->entries[i];
    const auto& e = entries[i];
    k.function = e.function; k.index = e.index; k.flags = e.flags;
    k.eax = e.eax; k.ebx = e.ebx; k.ecx = e.ecx; k.edx = e.edx;
  }
  checkedIoctl(fd_.get(), KVM_SET_CPUID2, "SET_CPUID2", cpuid);
}

std::vector<Msr> KvmVcpu::msrs(std::span<const uint32_t> indices) const {
  std::vector<uint8_t> buffer(sizeof(kvm_msrs) + indices.size() * sizeof(kvm_msr_entry));
  auto* list = reinterpret_cast<kvm_msrs*>(buffer.data());
  list->nmsrs = static_cast<uint32_t>(indices.size());
  for (size_t i = 0; i < indices.size(); ++i) list->entries[i].index = indices[i];
  int read = ::ioctl(fd_.get(), KVM_GET_MSRS, list);
  if (read < 0) throwErrno(ErrorCode::Hypervisor, "KVM_GET_MSRS failed");
  std::vector<Msr> out;
  for (int i = 0; i < read; ++i) out.push_back({list->entries[i].index, list->entries[i].data});
  return out;
}

void KvmVcpu::setXcr0(uint64_t value) {
  kvm_xcrs xcrs{};
  xcrs.nr_xcrs = 1;
  xcrs.xcrs[0].xcr = 0;
  xcrs.xcrs[0].value = value;
  checkedIoctl(fd_.get(), KVM_SET_XCRS, "SET_XCRS", &xcrs);
}

void KvmVcpu::setMsrs(std::span<const Msr> msrs) {
  std::vector<uint8_t> buffer(sizeof(kvm_msrs) + msrs.size() * sizeof(kvm_msr_entry));
  auto* list = reinterpret_cast<kvm_msrs*>(buffer.data());
  list->nmsrs = static_cast<uint32_t>(msrs.size());
  for (size_t i = 0; i < msrs.size(); ++i) {
    list->entries[i].index = msrs[i].index;
    list->entries[i].data = msrs[i].value;
  }
  int written = ::ioctl(fd_.get(), KVM_SET_MSRS, list);
  if (written < 0) throwErrno(ErrorCode::Hypervisor, "KVM_SET_MSRS failed");
  if (static_cast<size_t>(written) != msrs.size()) {
    throw Error(ErrorCode::Hypervisor, "KVM refused MSR 0x" + [&] {
      char hex[16];
      std::snprintf(hex, sizeof hex, "%x", msrs[written].index);
      return std::string(hex);
    }());
  }
}

void KvmVcpu::injectException(const ExceptionInjection& exception) {
  kvm_vcpu_events events{};
  checkedIoctl(fd_.get(), KVM_GET_VCPU_EVENTS, "GET_VCPU_EVENTS", &events);
  events.exception.injected = 1;
  events.exception.nr = exception.vector;
  events.exception.has_error_code = exception.errorCode.has_value();
  events.exception.error_code = exception.errorCode.value_or(0);
  events.flags = 0;  // leave NMI/SIPI/shadow state as it is
  checkedIoctl(fd_.get(), KVM_SET_VCPU_EVENTS, "SET_VCPU_EVENTS", &events);
}

bool KvmVcpu::waitsOnOtherVcpus() const {
  kvm_mp_state mp{};
  checkedIoctl(fd_.get(), KVM_GET_MP_STATE, "GET_MP_STATE", &mp);
  // An AP not started yet (waiting for INIT, or for the SIPI after it).
  if (mp.mp_state == KVM_MP_STATE_UNINITIALIZED || mp.mp_state == KVM_MP_STATE_INIT_RECEIVED) return true;
  if (mp.mp_state != KVM_MP_STATE_HALTED) return false;
  if (registers().rflags & (1u << 9)) return false;  // IF: an interrupt can still wake it
  kvm_vcpu_events events{};
  checkedIoctl(fd_.get(), KVM_GET_VCPU_EVENTS, "GET_VCPU_EVENTS", &events);
  return !events.nmi.pending && !events.nmi.injected && !events.smi.pending;
}

void KvmVcpu::setBreakpoints(std::span<const uint64_t> addresses) {
  kvm_guest_debug debug{};
  if (!addresses.empty()) {
    debug.control = KVM_GUESTDBG_ENABLE | KVM_GUESTDBG_USE_HW_BP;
    for (size_t i = 0; i < std::min<size_t>(addresses.size(), 4); ++i) {
      debug.arch.debugreg[i] = addresses[i];
      debug.arch.debugreg[7] |= 1ull << (i * 2);  // local enable; type 00 = instruction, length 00
    }
  }
  checkedIoctl(fd_.get(), KVM_SET_GUEST_DEBUG, "SET_GUEST_DEBUG", &debug);
}

std::optional<uint64_t> KvmVcpu::translate(uint64_t guestVirtual) const {
  kvm_translation t{};
  t.linear_address = guestVirtual;
  if (::ioctl(fd_.get(), KVM_TRANSLATE, &t) < 0 || !t.valid) return std::nullopt;
  return t.physical_address;
}

void KvmVcpu::applyFirmwareDefaults() {
  // Wire LINT0 as ExtINT (the PIC's output) and LINT1 as NMI, as PC firmware does;
  // Linux relies on it for the legacy timer path before it programs the IOAPIC.
  kvm_lapic_state lapic{};
  checkedIoctl(fd_.get(), KVM_GET_LAPIC, "GET_LAPIC", &lapic);
  constexpr size_t kLvtLint0 = 0x350, kLvtLint1 = 0x360;
  constexpr uint32_t kDeliveryExtInt = 7u << 8, kDeliveryNmi = 4u << 8, kDeliveryMask = 7u << 8;
  auto update = [&](size_t offset, uint32_t mode) {
    uint32_t value;
    std::memcpy(&value, lapic.regs + offset, 4);
    value = (value & ~kDeliveryMask) | mode;
    std::memcpy(lapic.regs + offset, &value, 4);
  };
  update(kLvtLint0, kDeliveryExtInt);
  update(kLvtLint1, kDeliveryNmi);
  checkedIoctl(fd_.get(), KVM_SET_LAPIC, "SET_LAPIC", &lapic);

  kvm_fpu fpu{};
  fpu.fcw = 0x37f;     // x87 default control word (all exceptions masked)
  fpu.mxcsr = 0x1f80;  // SSE default: all exceptions masked
  checkedIoctl(fd_.get(), KVM_SET_FPU, "SET_FPU", &fpu);
}

}  // namespace kvm
}  // namespace hyve::hv
