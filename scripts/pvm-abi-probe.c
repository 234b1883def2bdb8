// Does this host's /dev/kvm offer the PVM guest ABI that a PVM-enlightened kernel
// (CONFIG_PVM_GUEST from the virt-pvm/linux tree) needs? Build and run:
//   gcc -O2 -o /tmp/pvm-abi-probe scripts/pvm-abi-probe.c && /tmp/pvm-abi-probe
// It reads, on a fresh vCPU, the MSRs through which such a guest registers its event
// entry points and per-vCPU area (virt-pvm's Documentation/virt/kvm/x86/pvm-spec.rst).
// KVM_GET_MSRS returns how many MSRs it processed: 1 if the host knows the MSR.
#include <fcntl.h>
#include <linux/kvm.h>
#include <stdio.h>
#include <sys/ioctl.h>
#include <unistd.h>

static int knowsMsr(int vcpu, unsigned index) {
  struct {
    struct kvm_msrs header;
    struct kvm_msr_entry entry;
  } request = {.header = {.nmsrs = 1}, .entry = {.index = index}};
  return ioctl(vcpu, KVM_GET_MSRS, &request) == 1;
}

int main(void) {
  int kvm = open("/dev/kvm", O_RDWR | O_CLOEXEC);
  if (kvm < 0) return perror("/dev/kvm"), 2;
  int vm = ioctl(kvm, KVM_CREATE_VM, 0);
  int vcpu = vm < 0 ? -1 : ioctl(vm, KVM_CREATE_VCPU, 0);
  if (vcpu < 0) return perror("KVM_CREATE_VM/VCPU"), 2;
  static const struct Msr { unsigned index; const char* name; } msrs[] = {
      {0x4b564d01, "MSR_KVM_SYSTEM_TIME_NEW (control: any KVM knows it)"},
      {0x4b564df0, "MSR_PVM_LINEAR_ADDRESS_RANGE"},
      {0x4b564df1, "MSR_PVM_VCPU_STRUCT"},
      {0x4b564df2, "MSR_PVM_SUPERVISOR_RSP"},
      {0x4b564df4, "MSR_PVM_EVENT_ENTRY"},
      {0x4b564df5, "MSR_PVM_RETU_RIP"},
      {0x4b564df6, "MSR_PVM_RETS_RIP"},
      {0x4b564df7, "MSR_PVM_SWITCH_CR3"},
  };
  int pvmKnown = 0;
  for (const struct Msr* m = msrs; m < msrs + sizeof msrs / sizeof *msrs; m++) {
    int known = knowsMsr(vcpu, m->index);
    if (m != msrs) pvmKnown += known;
    printf("%#x %-55s %s\n", m->index, m->name, known ? "known" : "unknown");
  }
  printf("PVM guest ABI: %s\n", pvmKnown == 7 ? "offered" : pvmKnown ? "partly offered" : "not offered");
  close(vcpu);
  close(vm);
  close(kvm);
  return pvmKnown == 7 ? 0 : 1;
}
