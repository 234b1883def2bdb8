// libFuzzer target for the AHCI command path (native/ahci/): the input is one byte of
// set-up (which drive, which slots to issue) and the first 64 KiB of a 16 MiB guest RAM,
// which holds the command list at 0, the received-FIS area at 0x400 and whatever command
// tables, PRDTs, FISes and ATAPI packets the input makes of the rest (their addresses, and
// the PRDT's, may point anywhere). Whatever the input, the HBA must stay inside guest RAM
// and answer through its registers: ASan/UBSan catch anything else, libFuzzer's timeout a
// hang. Built and run by scripts/fuzz.sh.
#include "ahci/ahci_hba.h"
#include "ahci/ata_disk.h"
#include "ahci/atapi_cd.h"
#include "core/guest_memory.h"
#include "core/layout.h"

#include <sys/mman.h>
#include <unistd.h>

#include <cstdint>
#include <cstring>
#include <string>

using namespace hyve;

namespace {

constexpr size_t kWindow = 64 * 1024;

class Discard final : public InterruptController {
 public:
  void setIrqLevel(uint32_t, bool) override {}
  void signalMsi(uint64_t, uint32_t) override {}
};

// A 1 MiB image in a memfd, reached by path as a disk is.
std::string imagePath() {
  int fd = ::memfd_create("ahci-fuzz-image", 0);
  if (fd < 0 || ::ftruncate(fd, 1 << 20) != 0) __builtin_trap();
  return "/proc/self/fd/" + std::to_string(fd);  // kept open for the process's life
}

void write32(ahci::AhciHba& hba, uint32_t offset, uint32_t value) {
  hba.barWrite(ahci::kAbar, offset, {reinterpret_cast<const uint8_t*>(&value), 4});
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t length) {
  static GuestMemory memory(16 * layout::MiB);
  static const std::string image = imagePath();
  static Discard interrupts;
  if (length < 1) return 0;
  uint8_t setup = data[0];
  auto window = memory.slice(0, kWindow);
  std::memset(window.data(), 0, kWindow);
  std::memcpy(window.data(), data + 1, std::min(length - 1, kWindow));

  DiskOptions options;
  options.path = image;
  options.readOnly = setup & 2;
  std::vector<std::unique_ptr<ahci::AtaDrive>> drives;
  if (setup & 1) {
    options.readOnly = true;
    drives.push_back(std::make_unique<ahci::AtapiCd>(std::make_unique<RawDisk>(options)));
  } else {
    drives.push_back(std::make_unique<ahci::AtaDisk>(std::make_unique<RawDisk>(options), "FUZZ"));
  }
  ahci::AhciHba hba(std::move(drives), memory, interrupts, (setup & 4) ? 8 : 32);
  uint32_t port = ahci::kPortBase;
  write32(hba, port + ahci::kPxClb, 0);
  write32(hba, port + ahci::kPxFb, 0x400);
  write32(hba, port + ahci::kPxIe, ~0u);
  write32(hba, ahci::kGhc, ahci::kGhcAe | ahci::kGhcIe);
  write32(hba, port + ahci::kPxCmd, ahci::kCmdFre | ahci::kCmdSt);
  // Slot 0 always, plus up to three more chosen by the set-up byte (some beyond 8 slots).
  write32(hba, port + ahci::kPxCi, 1u | 1u << (setup >> 3));
  // Whatever state that left, a restart and a second issue must work the same way.
  write32(hba, port + ahci::kPxCmd, ahci::kCmdFre);
  write32(hba, port + ahci::kPxCmd, ahci::kCmdFre | ahci::kCmdSt);
  write32(hba, port + ahci::kPxCi, 2u);
  return 0;
}
