// KVM implementation of the hypervisor boundary (hv/hypervisor.h).
#pragma once

#include "hv/hypervisor.h"
#include "util/mapping.h"
#include "util/unique_fd.h"

#include "hv/kvm/kvm_uapi.h"

#include <atomic>
#include <pthread.h>

namespace hyve::hv::kvm {

class KvmHypervisor final : public Hypervisor {
 public:
  KvmHypervisor(UniqueFd kvm, bool pvm);
  std::unique_ptr<Vm> createVm() override;
  std::string name() const override { return pvm_ ? "kvm-pvm" : "kvm"; }
  bool emulatesGuestKernel() const override { return pvm_; }
  uint32_t maxVcpus() const override;

 private:
  UniqueFd kvm_;
  bool pvm_;
};

class KvmVm final : public Vm {
 public:
  // `pvm`: the host runs guest user mode natively (see KvmVcpu::restoreState).
  KvmVm(int kvmFd, UniqueFd vm, bool pvm);
  void mapMemory(const MemorySlot& slot) override;
  void createPlatform() override;
  std::unique_ptr<Vcpu> createVcpu(uint32_t id) override;
  std::vector<CpuidEntry> supportedCpuid() const override;
  std::vector<uint32_t> msrIndexList() const override;
  void setIrqLevel(uint32_t gsi, bool high) override;
  void signalMsi(uint64_t address, uint32_t data) override;
  bool addIoEvent(uint64_t address, uint32_t length, int eventFd) override;
  void removeIoEvent(uint64_t address, uint32_t length, int eventFd) override;
  void savePlatformState(snapshot::StateWriter& out) const override;
  void restorePlatformState(snapshot::StateReader& in, std::chrono::nanoseconds elapsed) override;

 private:
  int kvmFd_;  // borrowed from KvmHypervisor, which outlives its VMs
  UniqueFd vm_;
  bool pvm_;
  size_t runSize_;
  std::vector<uint32_t> msrIndices_;  // what vCPU snapshots save; read once
};

class KvmVcpu final : public Vcpu {
 public:
  KvmVcpu(uint32_t id, UniqueFd fd, size_t runSize, std::vector<uint32_t> msrIndices, bool pvm);
  uint32_t id() const override { return id_; }
  VcpuExit run() override;
  void requestStop() override;
  void bindToCurrentThread() override;
  void kick() override;
  Registers registers() const override;
  void setRegisters(const Registers& regs) override;
  SpecialRegisters specialRegisters() const override;
  void setSpecialRegisters(const SpecialRegisters& sregs) override;
  void setCpuid(std::span<const CpuidEntry> entries) override;
  std::vector<Msr> msrs(std::span<const uint32_t> indices) const override;
  void setMsrs(std::span<const Msr> msrs) override;
  void setXcr0(uint64_t value) override;
  void injectException(const ExceptionInjection& exception) override;
  std::optional<uint64_t> translate(uint64_t guestVirtual) const override;
  void applyFirmwareDefaults() override;
  void setBreakpoints(std::span<const uint64_t> addresses) override;
  bool waitsOnOtherVcpus() const override;
  void saveState(snapshot::StateWriter& out) const override;
  void restoreState(snapshot::StateReader& in, std::chrono::nanoseconds elapsed) override;

 private:
  uint32_t id_;
  std::vector<uint32_t> msrIndices_;
  bool pvm_;
  UniqueFd fd_;
  Mapping run_;
  kvm_run* runData() const { return reinterpret_cast<kvm_run*>(run_.data()); }
  std::atomic<bool> threadBound_{false};
  pthread_t thread_{};
};

}  // namespace hyve::hv::kvm
