#include "firmware/acpi/aml.h"

#include "firmware/byte_buffer.h"
#include "util/error.h"

#include <string>

namespace hyve::firmware::aml {
namespace {

// Opcodes and prefixes (ACPI 6.4, section 20.3).
constexpr uint8_t kZeroOp = 0x00;
constexpr uint8_t kOneOp = 0x01;
constexpr uint8_t kNameOp = 0x08;
constexpr uint8_t kBytePrefix = 0x0a;
constexpr uint8_t kWordPrefix = 0x0b;
constexpr uint8_t kDWordPrefix = 0x0c;
constexpr uint8_t kStringPrefix = 0x0d;
constexpr uint8_t kQWordPrefix = 0x0e;
constexpr uint8_t kScopeOp = 0x10;
constexpr uint8_t kBufferOp = 0x11;
constexpr uint8_t kPackageOp = 0x12;
constexpr uint8_t kMethodOp = 0x14;
constexpr uint8_t kDualNamePrefix = 0x2e;
constexpr uint8_t kMultiNamePrefix = 0x2f;
constexpr uint8_t kExtOpPrefix = 0x5b;
constexpr uint8_t kDeviceOp = 0x82;  // after ExtOpPrefix
constexpr uint8_t kRootChar = '\\';
constexpr uint8_t kParentPrefixChar = '^';
constexpr uint8_t kNullName = 0x00;
constexpr uint8_t kReturnOp = 0xa4;

// Resource descriptor tags (ACPI 6.4, section 6.4).
constexpr uint8_t kIrqTag = 0x23;  // small item 0x04, 3 bytes of data (with the flags byte)
constexpr uint8_t kIoTag = 0x47;   // small item 0x08, 7 bytes
constexpr uint8_t kEndTag = 0x79;  // small item 0x0f, 1 byte (the checksum)
constexpr uint8_t kMemory32FixedType = 0x06;
constexpr uint8_t kDWordAddressType = 0x07;
constexpr uint8_t kWordAddressType = 0x08;
constexpr uint8_t kExtendedInterruptType = 0x09;
constexpr uint8_t kQWordAddressType = 0x0a;
constexpr uint8_t kIoEntireRange = 0x03;  // _RNG: both ISA and non-ISA ranges

// Type-specific flags of a memory window: _RW in bit 0, _MEM in bits 1-2.
uint8_t memoryFlags(Cacheability cacheability, bool writable) {
  return static_cast<uint8_t>((static_cast<uint8_t>(cacheability) << 1) | (writable ? 0x01 : 0));
}

[[noreturn]] void fail(const std::string& message) { throw Error(ErrorCode::Internal, "AML: " + message); }

void append(Bytes& out, const Bytes& more) { out.insert(out.end(), more.begin(), more.end()); }

Bytes concat(const std::vector<Bytes>& parts) {
  Bytes out;
  for (const auto& part : parts) append(out, part);
  return out;
}

void appendLittle(Bytes& out, uint64_t value, unsigned bytes) {
  for (unsigned i = 0; i < bytes; ++i) out.push_back(static_cast<uint8_t>(value >> (8 * i)));
}

// `prefix` PkgLength `body`: the shape shared by Scope, Device, Method, Package and Buffer.
Bytes withPkgLength(std::initializer_list<uint8_t> prefix, const Bytes& body) {
  Bytes out(prefix);
  append(out, pkgLength(body.size()));
  append(out, body);
  return out;
}

bool isLeadNameChar(char c) { return (c >= 'A' && c <= 'Z') || c == '_'; }
bool isNameChar(char c) { return isLeadNameChar(c) || (c >= '0' && c <= '9'); }

void appendNameSeg(Bytes& out, std::string_view seg, std::string_view path) {
  if (seg.empty() || seg.size() > 4 || !isLeadNameChar(seg[0])) fail("bad name segment in \"" + std::string(path) + "\"");
  for (size_t i = 0; i < 4; ++i) {
    char c = i < seg.size() ? seg[i] : '_';
    if (!isNameChar(c)) fail("bad name character in \"" + std::string(path) + "\"");
    out.push_back(static_cast<uint8_t>(c));
  }
}

}  // namespace

Bytes pkgLength(size_t contentLength) {
  // One byte holds up to 63 in bits 0-5. Longer encodings keep the low nibble in the lead
  // byte (bits 6-7 count the bytes that follow) and 8 more bits in each following byte.
  if (contentLength + 1 <= 0x3f) return {static_cast<uint8_t>(contentLength + 1)};
  for (unsigned following = 1; following <= 3; ++following) {
    size_t total = contentLength + 1 + following;
    if (total >= (size_t{1} << (4 + 8 * following))) continue;
    Bytes out{static_cast<uint8_t>((following << 6) | (total & 0x0f))};
    for (unsigned i = 0; i < following; ++i) out.push_back(static_cast<uint8_t>(total >> (4 + 8 * i)));
    return out;
  }
  fail("package of " + std::to_string(contentLength) + " bytes exceeds the PkgLength range");
}

Bytes nameString(std::string_view path) {
  Bytes out;
  std::string_view rest = path;
  if (!rest.empty() && rest[0] == '\\') {
    out.push_back(kRootChar);
    rest.remove_prefix(1);
  } else {
    while (!rest.empty() && rest[0] == '^') {
      out.push_back(kParentPrefixChar);
      rest.remove_prefix(1);
    }
  }
  std::vector<std::string_view> segs;
  while (!rest.empty()) {
    size_t dot = rest.find('.');
    segs.push_back(rest.substr(0, dot));
    rest = dot == std::string_view::npos ? std::string_view{} : rest.substr(dot + 1);
    if (dot != std::string_view::npos && rest.empty()) fail("trailing '.' in \"" + std::string(path) + "\"");
  }
  if (segs.size() > 255) fail("too many name segments");
  if (segs.empty()) {
    out.push_back(kNullName);
  } else if (segs.size() == 2) {
    out.push_back(kDualNamePrefix);
  } else if (segs.size() > 2) {
    out.push_back(kMultiNamePrefix);
    out.push_back(static_cast<uint8_t>(segs.size()));
  }
  for (auto seg : segs) appendNameSeg(out, seg, path);
  return out;
}

Bytes integer(uint64_t value) {
  if (value == 0) return {kZeroOp};
  if (value == 1) return {kOneOp};
  Bytes out;
  if (value <= 0xff) {
    out.push_back(kBytePrefix);
    appendLittle(out, value, 1);
  } else if (value <= 0xffff) {
    out.push_back(kWordPrefix);
    appendLittle(out, value, 2);
  } else if (value <= 0xffffffff) {
    out.push_back(kDWordPrefix);
    appendLittle(out, value, 4);
  } else {
    out.push_back(kQWordPrefix);
    appendLittle(out, value, 8);
  }
  return out;
}

Bytes dwordInteger(uint32_t value) {
  Bytes out{kDWordPrefix};
  appendLittle(out, value, 4);
  return out;
}

Bytes string(std::string_view text) {
  Bytes out{kStringPrefix};
  for (char c : text) {
    if (c <= 0 || static_cast<unsigned char>(c) > 0x7f) fail("strings must be ASCII without NUL");
    out.push_back(static_cast<uint8_t>(c));
  }
  out.push_back(0);
  return out;
}

Bytes eisaId(std::string_view id) {
  // Three letters of 5 bits each ('A' = 1) and four hex digits, stored big-endian.
  if (id.size() != 7) fail("EISA id must be 7 characters: " + std::string(id));
  uint32_t value = 0;
  for (size_t i = 0; i < 3; ++i) {
    if (id[i] < 'A' || id[i] > 'Z') fail("EISA id must start with three capitals: " + std::string(id));
    value = (value << 5) | static_cast<uint32_t>(id[i] - 'A' + 1);
  }
  for (size_t i = 3; i < 7; ++i) {
    char c = id[i];
    uint32_t digit;
    if (c >= '0' && c <= '9') digit = c - '0';
    else if (c >= 'A' && c <= 'F') digit = c - 'A' + 10;
    else fail("EISA id must end with four hex digits: " + std::string(id));
    value = (value << 4) | digit;
  }
  return dwordInteger(__builtin_bswap32(value));
}

Bytes package(const std::vector<Bytes>& elements) {
  if (elements.size() > 255) fail("Package with more than 255 elements needs VarPackage");
  Bytes body{static_cast<uint8_t>(elements.size())};
  append(body, concat(elements));
  return withPkgLength({kPackageOp}, body);
}

Bytes buffer(const Bytes& data) {
  Bytes body = integer(data.size());
  append(body, data);
  return withPkgLength({kBufferOp}, body);
}

Bytes name(std::string_view path, const Bytes& object) {
  Bytes out{kNameOp};
  append(out, nameString(path));
  append(out, object);
  return out;
}

Bytes scope(std::string_view path, const std::vector<Bytes>& terms) {
  Bytes body = nameString(path);
  append(body, concat(terms));
  return withPkgLength({kScopeOp}, body);
}

Bytes device(std::string_view path, const std::vector<Bytes>& terms) {
  Bytes body = nameString(path);
  append(body, concat(terms));
  return withPkgLength({kExtOpPrefix, kDeviceOp}, body);
}

Bytes method(std::string_view path, uint8_t argCount, bool serialized, const std::vector<Bytes>& terms) {
  if (argCount > 7) fail("a method takes at most 7 arguments");
  Bytes body = nameString(path);
  body.push_back(static_cast<uint8_t>(argCount | (serialized ? 0x08 : 0)));  // SyncLevel 0
  append(body, concat(terms));
  return withPkgLength({kMethodOp}, body);
}

Bytes returnValue(const Bytes& value) {
  // Built front to back rather than from an initializer list: GCC 12 reports a false
  // array-bounds error for inserting after a one-element vector.
  Bytes out;
  out.reserve(1 + value.size());
  out.push_back(kReturnOp);
  append(out, value);
  return out;
}

// --- ResourceTemplate ---

ResourceTemplate& ResourceTemplate::io(uint16_t minBase, uint16_t maxBase, uint8_t alignment, uint8_t length) {
  if (minBase > maxBase) fail("IO descriptor with min > max");
  descriptors_.push_back(kIoTag);
  descriptors_.push_back(0x01);  // decodes 16 address bits
  appendLittle(descriptors_, minBase, 2);
  appendLittle(descriptors_, maxBase, 2);
  descriptors_.push_back(alignment);
  descriptors_.push_back(length);
  return *this;
}

ResourceTemplate& ResourceTemplate::irq(uint8_t irq, Trigger trigger, Polarity polarity, Sharing sharing) {
  if (irq > 15) fail("IRQ descriptor only holds IRQs 0-15");
  descriptors_.push_back(kIrqTag);
  appendLittle(descriptors_, 1u << irq, 2);
  descriptors_.push_back(static_cast<uint8_t>((trigger == Trigger::Edge ? 0x01 : 0) |
                                              (polarity == Polarity::ActiveLow ? 0x08 : 0) |
                                              (sharing == Sharing::Shared ? 0x10 : 0)));
  return *this;
}

ResourceTemplate& ResourceTemplate::interrupt(const std::vector<uint32_t>& gsis, Trigger trigger, Polarity polarity,
                                              Sharing sharing) {
  if (gsis.empty() || gsis.size() > 255) fail("Interrupt descriptor needs 1-255 interrupts");
  largeHeader(kExtendedInterruptType, static_cast<uint16_t>(2 + 4 * gsis.size()));
  descriptors_.push_back(static_cast<uint8_t>(0x01 |  // ResourceConsumer
                                              (trigger == Trigger::Edge ? 0x02 : 0) |
                                              (polarity == Polarity::ActiveLow ? 0x04 : 0) |
                                              (sharing == Sharing::Shared ? 0x08 : 0)));
  descriptors_.push_back(static_cast<uint8_t>(gsis.size()));
  for (uint32_t gsi : gsis) appendLittle(descriptors_, gsi, 4);
  return *this;
}

ResourceTemplate& ResourceTemplate::memory32Fixed(uint32_t base, uint32_t length, bool writable) {
  largeHeader(kMemory32FixedType, 9);
  descriptors_.push_back(writable ? 0x01 : 0x00);
  appendLittle(descriptors_, base, 4);
  appendLittle(descriptors_, length, 4);
  return *this;
}

ResourceTemplate& ResourceTemplate::wordBusNumber(uint16_t min, uint16_t max) {
  addressSpace(2, SpaceType::BusNumber, 0, min, max);
  return *this;
}
ResourceTemplate& ResourceTemplate::wordIo(uint16_t min, uint16_t max) {
  addressSpace(2, SpaceType::Io, kIoEntireRange, min, max);
  return *this;
}
ResourceTemplate& ResourceTemplate::dwordIo(uint32_t min, uint32_t max) {
  addressSpace(4, SpaceType::Io, kIoEntireRange, min, max);
  return *this;
}
ResourceTemplate& ResourceTemplate::dwordMemory(uint32_t min, uint32_t max, Cacheability cacheability,
                                                bool writable) {
  addressSpace(4, SpaceType::Memory, memoryFlags(cacheability, writable), min, max);
  return *this;
}
ResourceTemplate& ResourceTemplate::qwordMemory(uint64_t min, uint64_t max, Cacheability cacheability,
                                                bool writable) {
  addressSpace(8, SpaceType::Memory, memoryFlags(cacheability, writable), min, max);
  return *this;
}

void ResourceTemplate::addressSpace(unsigned width, SpaceType type, uint8_t typeFlags, uint64_t min, uint64_t max) {
  // A fixed window: _LEN = _MAX - _MIN + 1, which cannot express the full 64-bit range.
  uint64_t fieldMax = width == 8 ? UINT64_MAX : (uint64_t{1} << (8 * width)) - 1;
  if (min > max || max - min >= fieldMax) fail("address space descriptor with a bad range");
  uint8_t tag = width == 2 ? kWordAddressType : width == 4 ? kDWordAddressType : kQWordAddressType;
  largeHeader(tag, static_cast<uint16_t>(3 + 5 * width));
  descriptors_.push_back(static_cast<uint8_t>(type));
  descriptors_.push_back(0x0c);  // ResourceProducer, PosDecode, MinFixed, MaxFixed
  descriptors_.push_back(typeFlags);
  appendLittle(descriptors_, 0, width);  // granularity: must be 0 for a fixed window
  appendLittle(descriptors_, min, width);
  appendLittle(descriptors_, max, width);
  appendLittle(descriptors_, 0, width);  // translation offset
  appendLittle(descriptors_, max - min + 1, width);
}

void ResourceTemplate::largeHeader(uint8_t type, uint16_t length) {
  descriptors_.push_back(static_cast<uint8_t>(0x80 | type));
  appendLittle(descriptors_, length, 2);
}

Bytes ResourceTemplate::build() const {
  Bytes data = descriptors_;
  data.push_back(kEndTag);
  data.push_back(0);
  data.back() = checksumByte(data);
  return buffer(data);
}

}  // namespace hyve::firmware::aml
