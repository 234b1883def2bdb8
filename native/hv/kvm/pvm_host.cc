#include "hv/kvm/pvm_host.h"

#include <unistd.h>

namespace hyve::hv::kvm {

bool hostIsPvm() {
  // The module registers itself in sysfs whether built in or loaded; PVM exposes no
  // KVM capability that would identify it through the API.
  return ::access("/sys/module/kvm_pvm", F_OK) == 0;
}

}  // namespace hyve::hv::kvm
