#include "devices/uart/uart_16550.h"
#include "fake_interrupts.h"

#include <doctest/doctest.h>

#include <string>

namespace hyve {
namespace {

// 16550 register offsets (DLAB clear).
constexpr uint64_t kData = 0, kIer = 1, kIir = 2, kMcr = 4, kLsr = 5;
constexpr uint32_t kIrq = 4;

struct Rig {
  test::FakeInterrupts interrupts;
  std::string output;
  Uart16550 uart{IrqLine(&interrupts, kIrq), [this](std::span<const uint8_t> bytes) { output.append(bytes.begin(), bytes.end()); }};

  uint8_t read(uint64_t offset) {
    uint8_t value = 0;
    uart.read(offset, {&value, 1});
    return value;
  }
  void write(uint64_t offset, uint8_t value) { uart.write(offset, {&value, 1}); }
};

TEST_CASE("UART: bytes written to THR reach the host") {
  Rig rig;
  rig.write(kData, 'h');
  rig.write(kData, 'i');
  CHECK(rig.output == "hi");
  CHECK((rig.read(kLsr) & 0x60) == 0x60);  // THRE and TEMT: the transmitter is idle
}

TEST_CASE("UART: host input is read through RBR, LSR.DR says when; without FIFOs it holds one byte") {
  Rig rig;
  CHECK((rig.read(kLsr) & 0x01) == 0);
  const uint8_t input[] = {'x', 'y'};
  CHECK(rig.uart.pushInput(input) == 1);  // FCR.0 clear: the 16450-style one-byte holding register
  CHECK((rig.read(kLsr) & 0x01) == 1);
  CHECK(rig.read(kData) == 'x');
  CHECK((rig.read(kLsr) & 0x01) == 0);
  CHECK(rig.uart.pushInput(std::span<const uint8_t>(input).subspan(1)) == 1);
  CHECK(rig.read(kData) == 'y');
}

TEST_CASE("UART: received data raises the IRQ only with IER.RDA and MCR.OUT2, and reading clears it") {
  Rig rig;
  const uint8_t input[] = {'z'};
  rig.write(kIer, 0x01);  // received data available
  rig.uart.pushInput(input);
  CHECK_FALSE(rig.interrupts.level(kIrq));  // OUT2 gates the line to the PIC, as on a PC
  rig.write(kMcr, 0x08);
  CHECK(rig.interrupts.level(kIrq));
  CHECK((rig.read(kIir) & 0x0f) == 0x04);  // identification: received data
  rig.read(kData);
  CHECK_FALSE(rig.interrupts.level(kIrq));
  CHECK((rig.read(kIir) & 0x01) == 0x01);  // nothing pending
}

TEST_CASE("UART: a full receive FIFO takes no more input") {
  Rig rig;
  rig.write(kIir, 0x01);  // FCR: enable the 16-byte FIFOs
  std::string many(40, 'a');
  size_t taken = rig.uart.pushInput({reinterpret_cast<const uint8_t*>(many.data()), many.size()});
  CHECK(taken == Uart16550::kFifoSize);
}

}  // namespace
}  // namespace hyve
