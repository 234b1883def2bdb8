// A small builder for ACPI Machine Language (ACPI 6.4, chapter 20): just the objects the
// DSDT needs. Every function returns the encoded bytes of one term, so a namespace is
// written as nested calls that mirror the ASL it stands for.
#pragma once

#include <cstdint>
#include <string_view>
#include <vector>

namespace hyve::firmware::aml {

using Bytes = std::vector<uint8_t>;

// PkgLength for `contentLength` bytes that follow it (the encoding counts its own bytes).
Bytes pkgLength(size_t contentLength);
// "\\_SB_.PCI0", "^FOO", "_HID"; segments shorter than four characters are padded with '_'.
Bytes nameString(std::string_view path);

// Data objects.
Bytes integer(uint64_t value);     // the shortest of ZeroOp/OneOp/Byte/Word/DWord/QWord
Bytes dwordInteger(uint32_t value);  // always DWordConst, as ASL compilers emit EisaId
Bytes string(std::string_view text);
Bytes eisaId(std::string_view id);   // "PNP0A03" → its compressed 32-bit EISA id
Bytes package(const std::vector<Bytes>& elements);
Bytes buffer(const Bytes& data);

// Named objects and scopes.
Bytes name(std::string_view path, const Bytes& object);
Bytes scope(std::string_view path, const std::vector<Bytes>& terms);
Bytes device(std::string_view path, const std::vector<Bytes>& terms);
Bytes method(std::string_view path, uint8_t argCount, bool serialized, const std::vector<Bytes>& terms);
Bytes returnValue(const Bytes& value);

enum class Trigger { Level, Edge };
enum class Polarity { ActiveHigh, ActiveLow };
enum class Sharing { Exclusive, Shared };
enum class Cacheability { NonCacheable, Cacheable, WriteCombining, Prefetchable };

// A ResourceTemplate (ACPI 6.4, section 6.4): resource descriptors closed by an end tag
// whose checksum makes the whole template sum to zero. Address space descriptors describe
// fixed windows (MinFixed, MaxFixed, PosDecode, granularity 0, no translation).
class ResourceTemplate {
 public:
  // IO(Decode16, min, max, alignment, length).
  ResourceTemplate& io(uint16_t minBase, uint16_t maxBase, uint8_t alignment, uint8_t length);
  // IRQ(...) { irq } for ISA interrupts 0-15.
  ResourceTemplate& irq(uint8_t irq, Trigger trigger, Polarity polarity, Sharing sharing);
  // Interrupt(ResourceConsumer, ...) { gsis } — the extended descriptor for any GSI.
  ResourceTemplate& interrupt(const std::vector<uint32_t>& gsis, Trigger trigger, Polarity polarity,
                              Sharing sharing);
  ResourceTemplate& memory32Fixed(uint32_t base, uint32_t length, bool writable);

  // Windows a bridge passes on (ResourceProducer).
  ResourceTemplate& wordBusNumber(uint16_t min, uint16_t max);
  ResourceTemplate& wordIo(uint16_t min, uint16_t max);
  ResourceTemplate& dwordIo(uint32_t min, uint32_t max);
  ResourceTemplate& dwordMemory(uint32_t min, uint32_t max, Cacheability cacheability, bool writable);
  ResourceTemplate& qwordMemory(uint64_t min, uint64_t max, Cacheability cacheability, bool writable);

  // The template as a Buffer object.
  Bytes build() const;

 private:
  enum class SpaceType : uint8_t { Memory = 0, Io = 1, BusNumber = 2 };
  void addressSpace(unsigned width, SpaceType type, uint8_t typeFlags, uint64_t min, uint64_t max);
  void largeHeader(uint8_t type, uint16_t length);

  Bytes descriptors_;
};

}  // namespace hyve::firmware::aml
