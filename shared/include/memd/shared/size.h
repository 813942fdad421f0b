// Parsing and printing of byte sizes ("64MiB", "1GiB", "4096").
#ifndef MEMD_SHARED_SIZE_H_
#define MEMD_SHARED_SIZE_H_

#include <cstdint>
#include <string>
#include <string_view>

#include "absl/status/statusor.h"

namespace memd {

// Parses a byte size: plain digits, or digits followed by one of the suffixes
// B, K/KB/KiB, M/MB/MiB, G/GB/GiB, T/TB/TiB (case-insensitive; KB and KiB both
// mean 1024, as `free` and Docker use). Fails with INVALID_ARGUMENT naming the
// text when it is empty, malformed or overflows 64 bits.
absl::StatusOr<uint64_t> ParseSize(std::string_view text);

// Formats a byte count for people: "512 B", "64.0 MiB", "1.5 GiB".
std::string FormatSize(uint64_t bytes);

}  // namespace memd

#endif  // MEMD_SHARED_SIZE_H_
