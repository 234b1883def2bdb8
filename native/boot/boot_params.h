// The Linux x86 boot ABI structures the loader writes into guest memory: the "zero page"
// (struct boot_params with its setup header) and Xen's PVH hvm_start_info. Defined here
// rather than taken from kernel headers; the static_asserts pin every field the loader
// touches to the offsets in arch/x86/include/uapi/asm/bootparam.h and start_info.h.
#pragma once

#include <cstddef>
#include <cstdint>

namespace hyve::boot {

// The bzImage file carries its setup header at this offset; it lands at the same offset
// inside boot_params.
constexpr size_t kSetupHeaderOffset = 0x1f1;
constexpr uint32_t kSetupHeaderMagic = 0x53726448;  // "HdrS"
constexpr uint16_t kBootFlag = 0xaa55;

// loadflags
constexpr uint8_t kLoadedHigh = 1 << 0;
constexpr uint8_t kKaslrFlag = 1 << 1;
constexpr uint8_t kCanUseHeap = 1 << 7;
// xloadflags
constexpr uint16_t kXlfKernel64 = 1 << 0;
constexpr uint16_t kXlfCanBeLoadedAbove4G = 1 << 1;

constexpr uint8_t kLoaderTypeUndefined = 0xff;  // "no registered boot loader ID"

#pragma pack(push, 1)

struct SetupHeader {
  uint8_t setupSects;
  uint16_t rootFlags;
  uint32_t syssize;
  uint16_t ramSize;
  uint16_t vidMode;
  uint16_t rootDev;
  uint16_t bootFlag;
  uint16_t jump;
  uint32_t header;
  uint16_t version;
  uint32_t realmodeSwitch;
  uint16_t startSysSeg;
  uint16_t kernelVersion;
  uint8_t typeOfLoader;
  uint8_t loadflags;
  uint16_t setupMoveSize;
  uint32_t code32Start;
  uint32_t ramdiskImage;
  uint32_t ramdiskSize;
  uint32_t bootsectKludge;
  uint16_t heapEndPtr;
  uint8_t extLoaderVer;
  uint8_t extLoaderType;
  uint32_t cmdLinePtr;
  uint32_t initrdAddrMax;
  uint32_t kernelAlignment;
  uint8_t relocatableKernel;
  uint8_t minAlignment;
  uint16_t xloadflags;
  uint32_t cmdlineSize;
  uint32_t hardwareSubarch;
  uint64_t hardwareSubarchData;
  uint32_t payloadOffset;
  uint32_t payloadLength;
  uint64_t setupData;
  uint64_t prefAddress;
  uint32_t initSize;
  uint32_t handoverOffset;
  uint32_t kernelInfoOffset;
};

struct BootE820Entry {
  uint64_t address;
  uint64_t size;
  uint32_t type;
};

constexpr size_t kZeroPageE820Max = 128;

struct BootParams {
  uint8_t screenInfo[0x40];
  uint8_t apmBiosInfo[0x14];
  uint8_t pad2[4];
  uint64_t tbootAddr;
  uint8_t istInfo[0x10];
  uint64_t acpiRsdpAddr;
  uint8_t pad3[8];
  uint8_t hd0Info[16];
  uint8_t hd1Info[16];
  uint8_t sysDescTable[0x10];
  uint8_t olpcOfwHeader[0x10];
  uint32_t extRamdiskImage;
  uint32_t extRamdiskSize;
  uint32_t extCmdLinePtr;
  uint8_t pad4[112];
  uint32_t ccBlobAddress;
  uint8_t edidInfo[0x80];
  uint8_t efiInfo[0x20];
  uint32_t altMemK;
  uint32_t scratch;
  uint8_t e820Entries;
  uint8_t eddbufEntries;
  uint8_t eddMbrSigBufEntries;
  uint8_t kbdStatus;
  uint8_t secureBoot;
  uint8_t pad5[2];
  uint8_t sentinel;
  uint8_t pad6[1];
  SetupHeader hdr;
  uint8_t pad7[0x290 - 0x1f1 - sizeof(SetupHeader)];
  uint32_t eddMbrSigBuffer[16];
  BootE820Entry e820Table[kZeroPageE820Max];
  uint8_t pad8[48];
  uint8_t eddbuf[0xeec - 0xd00];
  uint8_t pad9[276];
};

#pragma pack(pop)

static_assert(offsetof(SetupHeader, bootFlag) == 0x1fe - kSetupHeaderOffset);
static_assert(offsetof(SetupHeader, jump) == 0x200 - kSetupHeaderOffset);
static_assert(offsetof(SetupHeader, header) == 0x202 - kSetupHeaderOffset);
static_assert(offsetof(SetupHeader, version) == 0x206 - kSetupHeaderOffset);
static_assert(offsetof(SetupHeader, typeOfLoader) == 0x210 - kSetupHeaderOffset);
static_assert(offsetof(SetupHeader, loadflags) == 0x211 - kSetupHeaderOffset);
static_assert(offsetof(SetupHeader, code32Start) == 0x214 - kSetupHeaderOffset);
static_assert(offsetof(SetupHeader, ramdiskImage) == 0x218 - kSetupHeaderOffset);
static_assert(offsetof(SetupHeader, ramdiskSize) == 0x21c - kSetupHeaderOffset);
static_assert(offsetof(SetupHeader, heapEndPtr) == 0x224 - kSetupHeaderOffset);
static_assert(offsetof(SetupHeader, cmdLinePtr) == 0x228 - kSetupHeaderOffset);
static_assert(offsetof(SetupHeader, initrdAddrMax) == 0x22c - kSetupHeaderOffset);
static_assert(offsetof(SetupHeader, kernelAlignment) == 0x230 - kSetupHeaderOffset);
static_assert(offsetof(SetupHeader, relocatableKernel) == 0x234 - kSetupHeaderOffset);
static_assert(offsetof(SetupHeader, xloadflags) == 0x236 - kSetupHeaderOffset);
static_assert(offsetof(SetupHeader, cmdlineSize) == 0x238 - kSetupHeaderOffset);
static_assert(offsetof(SetupHeader, payloadOffset) == 0x248 - kSetupHeaderOffset);
static_assert(offsetof(SetupHeader, payloadLength) == 0x24c - kSetupHeaderOffset);
static_assert(offsetof(SetupHeader, setupData) == 0x250 - kSetupHeaderOffset);
static_assert(offsetof(SetupHeader, prefAddress) == 0x258 - kSetupHeaderOffset);
static_assert(offsetof(SetupHeader, initSize) == 0x260 - kSetupHeaderOffset);
static_assert(offsetof(SetupHeader, kernelInfoOffset) == 0x268 - kSetupHeaderOffset);
static_assert(sizeof(SetupHeader) == 0x26c - kSetupHeaderOffset);

static_assert(sizeof(BootE820Entry) == 20);
static_assert(offsetof(BootParams, acpiRsdpAddr) == 0x070);
static_assert(offsetof(BootParams, extRamdiskImage) == 0x0c0);
static_assert(offsetof(BootParams, extRamdiskSize) == 0x0c4);
static_assert(offsetof(BootParams, extCmdLinePtr) == 0x0c8);
static_assert(offsetof(BootParams, ccBlobAddress) == 0x13c);
static_assert(offsetof(BootParams, efiInfo) == 0x1c0);
static_assert(offsetof(BootParams, e820Entries) == 0x1e8);
static_assert(offsetof(BootParams, sentinel) == 0x1ef);
static_assert(offsetof(BootParams, hdr) == kSetupHeaderOffset);
static_assert(offsetof(BootParams, eddMbrSigBuffer) == 0x290);
static_assert(offsetof(BootParams, e820Table) == 0x2d0);
static_assert(offsetof(BootParams, eddbuf) == 0xd00);
static_assert(sizeof(BootParams) == 0x1000);

// Xen PVH boot ABI (include/xen/interface/hvm/start_info.h), version 1.
constexpr uint32_t kHvmStartMagic = 0x336ec578;
constexpr uint32_t kXenElfnotePhys32Entry = 18;

struct HvmStartInfo {
  uint32_t magic;
  uint32_t version;
  uint32_t flags;
  uint32_t nrModules;
  uint64_t modlistPaddr;
  uint64_t cmdlinePaddr;
  uint64_t rsdpPaddr;
  uint64_t memmapPaddr;
  uint32_t memmapEntries;
  uint32_t reserved;
};

struct HvmModlistEntry {
  uint64_t paddr;
  uint64_t size;
  uint64_t cmdlinePaddr;
  uint64_t reserved;
};

struct HvmMemmapEntry {
  uint64_t address;
  uint64_t size;
  uint32_t type;
  uint32_t reserved;
};

static_assert(offsetof(HvmStartInfo, modlistPaddr) == 16);
static_assert(offsetof(HvmStartInfo, cmdlinePaddr) == 24);
static_assert(offsetof(HvmStartInfo, rsdpPaddr) == 32);
static_assert(offsetof(HvmStartInfo, memmapPaddr) == 40);
static_assert(offsetof(HvmStartInfo, memmapEntries) == 48);
static_assert(sizeof(HvmStartInfo) == 56);
static_assert(sizeof(HvmModlistEntry) == 32);
static_assert(sizeof(HvmMemmapEntry) == 24);

}  // namespace hyve::boot
