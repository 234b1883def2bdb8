// The VM's identity: the UUID the SMBIOS system structure (type 1) carries, as xhyve's
// -U sets it. Kept as the 16 bytes of its text form, most significant first (RFC 4122).
#pragma once

#include <array>
#include <cstdint>
#include <string>
#include <string_view>

namespace hyve::firmware {

using Uuid = std::array<uint8_t, 16>;

// "xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx", hex digits in either case; anything else
// throws Error(BadConfig) naming the text.
Uuid parseUuid(std::string_view text);
// A random (version 4) UUID, for VMs started without one.
Uuid randomUuid();
// The canonical lower-case text form.
std::string formatUuid(const Uuid& uuid);

}  // namespace hyve::firmware
