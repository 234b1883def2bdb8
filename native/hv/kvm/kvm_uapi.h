// <linux/kvm.h>, made usable from C++.
// Debian 12's uapi headers declare flexible arrays through __DECLARE_FLEX_ARRAY as an
// empty struct followed by the array. In C++ an empty struct takes a byte, which
// changes sizeof(kvm_cpuid2), kvm_msrs and kvm_msr_list, and so the ioctl numbers
// derived from them (KVM rejects them with EINVAL). Use a GNU zero-length array instead.
#pragma once

#include <linux/stddef.h>
#undef __DECLARE_FLEX_ARRAY
#define __DECLARE_FLEX_ARRAY(TYPE, NAME) TYPE NAME[0]
#include <linux/kvm.h>

static_assert(sizeof(kvm_cpuid2) == 8, "kvm_cpuid2 layout must match the kernel's");
static_assert(sizeof(kvm_msrs) == 8, "kvm_msrs layout must match the kernel's");
static_assert(sizeof(kvm_msr_list) == 4, "kvm_msr_list layout must match the kernel's");
