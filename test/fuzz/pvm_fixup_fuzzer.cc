// libFuzzer target for the PVM instruction fixups (native/pvm/instruction_fixup.cc): the
// instructions PVM's emulator gives up on, carried out in the VMM on a fake vCPU. The input
// is the vCPU (general registers, a CPU mode and privilege level, a few MSRs, whether
// address translation works), up to 15 instruction bytes, and the first 64 KiB of a 16 MiB
// guest RAM that memory operands, descriptor tables and stacks may point into (or not).
// Whatever the input, a fixup must decode, carry out or refuse the instruction without
// touching host memory outside guest RAM: ASan/UBSan catch anything else, libFuzzer's
// timeout a hang. Built and run by scripts/fuzz.sh.
#include "core/guest_memory.h"
#include "core/layout.h"
#include "hv/hypervisor.h"
#include "pvm/instruction_fixup.h"
#include "util/error.h"
#include "../native/fake_vcpu.h"

#include <cstdint>
#include <cstring>
#include <map>

using namespace hyve;

namespace {

constexpr size_t kRam = 16 * layout::MiB;
constexpr size_t kWindow = 64 * 1024;

// Reads the input front to back; past its end, zeros.
class Input {
 public:
  Input(const uint8_t* data, size_t length) : data_(data), length_(length) {}
  template <typename T>
  T take() {
    T value{};
    size_t n = std::min(sizeof value, length_ - offset_);
    std::memcpy(&value, data_ + offset_, n);
    offset_ += n;
    return value;
  }
  std::span<const uint8_t> rest() const { return {data_ + offset_, length_ - offset_}; }

 private:
  const uint8_t* data_;
  size_t length_;
  size_t offset_ = 0;
};

// The CPU modes a guest can be in when PVM gives up, by CS/CR0/EFER.
void setMode(test::FakeVcpu& vcpu, uint8_t mode, uint8_t cpl, uint8_t segmentBits) {
  uint8_t dpl = cpl & 3;
  bool longMode = false;
  bool db = true;
  switch (mode % 5) {
    case 0:  // 64-bit
      longMode = true, db = false;
      break;
    case 1:  // compatibility, 32-bit
      break;
    case 2:  // compatibility, 16-bit
      db = false;
      break;
    case 3:  // protected, 32-bit (no long mode)
      break;
    case 4:  // real mode
      dpl = 0;
      break;
  }
  bool paging = mode % 5 != 4;
  vcpu.sregs.cr0 = paging ? 0x80050033 : 0x10;
  vcpu.sregs.cr4 = paging ? 0x6b0 : 0;
  vcpu.sregs.efer = mode % 5 <= 2 ? 0xd01 : 0;
  vcpu.sregs.cs = hv::flatSegment(static_cast<uint16_t>(0x10 | dpl), 0xb, dpl, longMode);
  vcpu.sregs.cs.db = db;
  hv::Segment data = hv::flatSegment(static_cast<uint16_t>(0x18 | dpl), 0x3, dpl, false);
  // Odd segment bits: not present, expand-down, small limits, unusable.
  if (segmentBits & 1) data.present = 0;
  if (segmentBits & 2) data.type = 0x7;
  if (segmentBits & 4) data.limit = 0xfff;
  if (segmentBits & 8) data.unusable = 1;
  vcpu.sregs.ds = vcpu.sregs.es = vcpu.sregs.ss = vcpu.sregs.fs = vcpu.sregs.gs = data;
  vcpu.sregs.ss.dpl = dpl;
  vcpu.sregs.gdt = {0x1000, 0xffff};
  vcpu.sregs.idt = {0x2000, 0xfff};
  vcpu.sregs.tr = hv::flatSegment(0x28, 0xb, 0, false);
  vcpu.sregs.tr.base = 0x3000;
  vcpu.sregs.tr.limit = 0x67;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t length) {
  static GuestMemory memory(kRam);
  Input in(data, length);
  test::FakeVcpu vcpu;
  vcpu.translateMask = kRam - 1;
  vcpu.regs = in.take<hv::Registers>();
  uint8_t mode = in.take<uint8_t>();
  uint8_t cpl = in.take<uint8_t>();
  uint8_t flags = in.take<uint8_t>();
  setMode(vcpu, mode, cpl, flags);
  vcpu.translates = !(flags & 0x10);
  if (flags & 0x20) vcpu.translateMask = ~0ull;  // addresses beyond RAM reach the memory checks
  for (uint32_t msr : {0xc0000080u, 0xc0000081u, 0xc0000082u, 0xc0000084u, 0xc0000100u, 0xc0000101u, 0xc0000102u}) {
    vcpu.msrValues[msr] = in.take<uint64_t>();
  }
  hv::VcpuExit exit;
  exit.kind = hv::VcpuExit::Kind::EmulationFailure;
  uint8_t instructionLength = in.take<uint8_t>() % 16;
  for (uint8_t i = 0; i < instructionLength; ++i) exit.instruction.push_back(in.take<uint8_t>());

  auto window = memory.slice(0, kWindow);
  std::memset(window.data(), 0, kWindow);
  auto rest = in.rest();
  std::memcpy(window.data(), rest.data(), std::min(rest.size(), kWindow));

  pvm::InstructionFixup fixup(memory);
  try {
    fixup.handle(vcpu, exit);
  } catch (const Error&) {
    // A hypervisor call failing is reported as an Error; the fake's calls never fail.
    __builtin_trap();
  }
  return 0;
}
