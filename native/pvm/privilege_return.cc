#include "pvm/privilege_return.h"

#include <array>
#include <cstring>

namespace hyve::pvm {
namespace {

constexpr uint64_t kEferSyscallEnable = 1;
constexpr uint32_t kMsrStar = 0xc0000081;
constexpr uint32_t kMsrGsBase = 0xc0000101;
constexpr uint32_t kMsrKernelGsBase = 0xc0000102;

// Descriptor type field (bits 43:40) for S=1 segments.
constexpr uint8_t kTypeAccessed = 1;
constexpr uint8_t kTypeWritable = 2;      // data segments
constexpr uint8_t kTypeConforming = 4;    // code segments
constexpr uint8_t kTypeCode = 8;
constexpr uint8_t kTypeCodeReadAccessed = 0xb;
constexpr uint8_t kTypeDataWriteAccessed = 0x3;

// The fixed segments SYSRET loads: flat 4 GiB, DPL 3, present.
hv::Segment userSegment(uint16_t selector, uint8_t type, bool longMode) {
  return hv::flatSegment(selector, type, 3, longMode);
}

hv::Segment segmentFromDescriptor(uint16_t selector, uint64_t d) {
  hv::Segment segment{};
  segment.selector = selector;
  segment.base = ((d >> 16) & 0xffffff) | (((d >> 56) & 0xff) << 24);
  uint32_t limit = static_cast<uint32_t>((d & 0xffff) | (((d >> 48) & 0xf) << 16));
  segment.g = (d >> 55) & 1;
  segment.limit = segment.g ? (limit << 12) | 0xfff : limit;
  // The CPU sets the accessed bit on load; Linux's GDT entries already have it.
  segment.type = static_cast<uint8_t>(((d >> 40) & 0xf) | kTypeAccessed);
  segment.s = (d >> 44) & 1;
  segment.dpl = (d >> 45) & 3;
  segment.present = (d >> 47) & 1;
  segment.avl = (d >> 52) & 1;
  segment.l = (d >> 53) & 1;
  segment.db = (d >> 54) & 1;
  return segment;
}

// What the CPU holds after loading a null selector into SS (allowed in 64-bit mode below CPL 3).
hv::Segment nullStackSegment(uint16_t selector) {
  hv::Segment segment{};
  segment.selector = selector;
  segment.type = kTypeDataWriteAccessed;
  segment.s = 1;
  segment.dpl = selector & 3;
  segment.unusable = 1;
  return segment;
}

std::optional<uint64_t> readMsr(FixupContext& c, uint32_t index) {
  const uint32_t indices[] = {index};
  auto values = c.vcpu.msrs(indices);
  if (values.size() != 1 || values[0].index != index) return std::nullopt;
  return values[0].value;
}

enum class DescriptorRead { Ok, OutsideTable, Unreadable, Ldt };

DescriptorRead readDescriptor(const FixupContext& c, uint16_t selector, uint64_t& descriptor) {
  if (selector & 4) return DescriptorRead::Ldt;
  uint64_t offset = selector & ~7u;
  if (offset + 7 > c.sregs.gdt.limit) return DescriptorRead::OutsideTable;
  uint8_t bytes[8];
  if (readLinear(c.vcpu, c.memory, c.sregs.gdt.base + offset, bytes, sizeof(bytes)) != sizeof(bytes)) {
    return DescriptorRead::Unreadable;
  }
  std::memcpy(&descriptor, bytes, sizeof(descriptor));
  return DescriptorRead::Ok;
}

// Reads a descriptor for IRET; on failure either raises #GP(selector) as the CPU would
// (returns false, problem empty) or explains why we cannot tell (problem set).
bool loadDescriptor(FixupContext& c, uint16_t selector, uint64_t& descriptor, Problem& problem) {
  switch (readDescriptor(c, selector, descriptor)) {
    case DescriptorRead::Ok: return true;
    case DescriptorRead::OutsideTable:
      c.raise(vector::kGeneralProtection, selector & 0xfffc);
      return false;
    case DescriptorRead::Unreadable:
      problem = "cannot read the GDT entry for selector " + hex(selector) + " (GDT at " + hex(c.sregs.gdt.base) + ")";
      return false;
    case DescriptorRead::Ldt:
      problem = "selector " + hex(selector) + " points into the LDT, which the fixup does not read";
      return false;
  }
  return false;
}

// Segments the new, less privileged code may not use are nulled on a return to an outer level.
void invalidateForOuterLevel(hv::Segment& segment, unsigned newCpl) {
  if (segment.unusable || (segment.selector & ~3) == 0) return;
  bool conformingCode = (segment.type & kTypeCode) && (segment.type & kTypeConforming);
  if (segment.s && !conformingCode && segment.dpl < newCpl) {
    segment.selector = 0;
    segment.unusable = 1;
    segment.present = 0;
  }
}

}  // namespace

Problem emulateSysret(FixupContext& c) {
  if (c.mode != CpuMode::Long64 || !(c.sregs.efer & kEferSyscallEnable)) {
    c.raise(vector::kInvalidOpcode);
    return {};
  }
  if (c.cpl != 0) {
    c.raise(vector::kGeneralProtection, 0);
    return {};
  }
  auto star = readMsr(c, kMsrStar);
  if (!star) return "cannot read MSR_STAR";
  const bool toLongMode = c.instruction.operand_width == 64;
  if (toLongMode && !isCanonical(c.regs.rcx, c.sregs)) {
    c.raise(vector::kGeneralProtection, 0);
    return {};
  }
  const auto userBase = static_cast<uint16_t>(*star >> 48);
  c.regs.rip = toLongMode ? c.regs.rcx : (c.regs.rcx & 0xffffffff);
  // Keeps the defined flags except RF and VM; bit 1 always reads as 1.
  c.regs.rflags = (c.regs.r11 & 0x3c7fd7) | rflags::kFixedOne;
  c.sregs.cs = userSegment(static_cast<uint16_t>((toLongMode ? userBase + 16 : userBase) | 3),
                               kTypeCodeReadAccessed, toLongMode);
  c.sregs.ss = userSegment(static_cast<uint16_t>((userBase + 8) | 3), kTypeDataWriteAccessed, false);
  c.regsChanged = c.sregsChanged = true;
  return {};
}

Problem emulateIretq(FixupContext& c) {
  if (c.mode != CpuMode::Long64 || c.instruction.operand_width != 64) {
    return "only iretq in 64-bit mode is handled";
  }
  if (c.regs.rflags & rflags::kNestedTask) {
    c.raise(vector::kGeneralProtection, 0);
    return {};
  }
  // RIP, CS, RFLAGS, RSP, SS: 64-bit mode always pops all five.
  std::array<uint64_t, 5> frame{};
  if (readLinear(c.vcpu, c.memory, c.regs.rsp, frame.data(), sizeof(frame)) != sizeof(frame)) {
    return "cannot read the interrupt frame at rsp " + hex(c.regs.rsp);
  }
  const uint64_t newRip = frame[0];
  const auto csSelector = static_cast<uint16_t>(frame[1]);
  const uint64_t poppedFlags = frame[2];
  const uint64_t newRsp = frame[3];
  const auto ssSelector = static_cast<uint16_t>(frame[4]);

  // Code segment checks, in the SDM's order.
  if ((csSelector & ~3) == 0) {
    c.raise(vector::kGeneralProtection, 0);
    return {};
  }
  Problem problem;
  uint64_t csDescriptor = 0;
  if (!loadDescriptor(c, csSelector, csDescriptor, problem)) return problem;
  hv::Segment cs = segmentFromDescriptor(csSelector, csDescriptor);
  const unsigned newCpl = csSelector & 3;
  const bool conforming = cs.type & kTypeConforming;
  if (!cs.s || !(cs.type & kTypeCode) || newCpl < c.cpl || (conforming && cs.dpl > newCpl) ||
      (!conforming && cs.dpl != newCpl) || (cs.l && cs.db)) {
    c.raise(vector::kGeneralProtection, csSelector & 0xfffc);
    return {};
  }
  if (!cs.present) {
    c.raise(vector::kSegmentNotPresent, csSelector & 0xfffc);
    return {};
  }
  const bool toLongMode = cs.l;
  if (toLongMode ? !isCanonical(newRip, c.sregs) : newRip > cs.limit) {
    c.raise(vector::kGeneralProtection, 0);
    return {};
  }

  // Stack segment: a null SS is only allowed when staying in 64-bit mode below CPL 3.
  hv::Segment ss;
  if ((ssSelector & ~3) == 0) {
    if (!toLongMode || newCpl == 3 || (ssSelector & 3) != newCpl) {
      c.raise(vector::kGeneralProtection, 0);
      return {};
    }
    ss = nullStackSegment(ssSelector);
  } else {
    uint64_t ssDescriptor = 0;
    if (!loadDescriptor(c, ssSelector, ssDescriptor, problem)) return problem;
    ss = segmentFromDescriptor(ssSelector, ssDescriptor);
    if ((ssSelector & 3) != newCpl || !ss.s || (ss.type & kTypeCode) || !(ss.type & kTypeWritable) ||
        ss.dpl != newCpl) {
      c.raise(vector::kGeneralProtection, ssSelector & 0xfffc);
      return {};
    }
    if (!ss.present) {
      c.raise(vector::kStackFault, ssSelector & 0xfffc);
      return {};
    }
  }

  // Which flags IRET may change depends on the privilege it runs at (the old CPL).
  uint64_t writable = rflags::kArithmetic | rflags::kTrap | rflags::kDirection | rflags::kNestedTask |
                      rflags::kResume | rflags::kAlignmentCheck | rflags::kId;
  const unsigned iopl = (c.regs.rflags & rflags::kIopl) >> 12;
  if (c.cpl <= iopl) writable |= rflags::kInterrupt;
  if (c.cpl == 0) writable |= rflags::kIopl | rflags::kVirtualInterrupt | rflags::kVirtualInterruptPending;
  c.regs.rflags = (c.regs.rflags & ~writable) | (poppedFlags & writable) | rflags::kFixedOne;

  c.regs.rip = newRip;
  c.regs.rsp = newRsp;
  c.sregs.cs = cs;
  c.sregs.ss = ss;
  if (newCpl > c.cpl) {
    for (hv::Segment* segment : {&c.sregs.ds, &c.sregs.es, &c.sregs.fs, &c.sregs.gs}) {
      invalidateForOuterLevel(*segment, newCpl);
    }
  }
  c.regsChanged = c.sregsChanged = true;
  return {};
}

Problem emulateSwapgs(FixupContext& c) {
  if (c.mode != CpuMode::Long64) {
    c.raise(vector::kInvalidOpcode);
    return {};
  }
  if (c.cpl != 0) {
    c.raise(vector::kGeneralProtection, 0);
    return {};
  }
  auto kernelGsBase = readMsr(c, kMsrKernelGsBase);
  if (!kernelGsBase) return "cannot read MSR_KERNEL_GS_BASE";
  // Through the MSRs rather than SET_SREGS: the same state, without reloading everything else.
  const hv::Msr swapped[] = {{kMsrKernelGsBase, c.sregs.gs.base}, {kMsrGsBase, *kernelGsBase}};
  c.vcpu.setMsrs(swapped);
  c.sregs.gs.base = *kernelGsBase;
  c.skip();
  return {};
}

}  // namespace hyve::pvm
