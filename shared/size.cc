#include "memd/shared/size.h"

#include <array>
#include <cctype>

#include "absl/strings/str_format.h"

namespace memd {
namespace {

struct Suffix {
  std::string_view text;
  int shift;  // the multiplier is 1 << shift
};

std::string_view Trim(std::string_view s) {
  while (!s.empty() && std::isspace(static_cast<unsigned char>(s.front()))) s.remove_prefix(1);
  while (!s.empty() && std::isspace(static_cast<unsigned char>(s.back()))) s.remove_suffix(1);
  return s;
}

constexpr std::array<Suffix, 14> kSuffixes = {{
    {"b", 0},    {"k", 10},   {"kb", 10},  {"kib", 10}, {"m", 20},
    {"mb", 20},  {"mib", 20}, {"g", 30},   {"gb", 30},  {"gib", 30},
    {"t", 40},   {"tb", 40},  {"tib", 40}, {"", 0},
}};

}  // namespace

absl::StatusOr<uint64_t> ParseSize(std::string_view text) {
  std::string_view s = Trim(text);
  size_t digits = 0;
  while (digits < s.size() && std::isdigit(static_cast<unsigned char>(s[digits]))) ++digits;
  if (digits == 0) {
    return absl::InvalidArgumentError(absl::StrFormat(
        "size '%s' must start with a number (examples: 4096, 64MiB, 1GiB)", text));
  }
  uint64_t value = 0;
  for (size_t i = 0; i < digits; ++i) {
    uint64_t digit = static_cast<uint64_t>(s[i] - '0');
    if (value > (UINT64_MAX - digit) / 10) {
      return absl::InvalidArgumentError(
          absl::StrFormat("size '%s' overflows 64 bits", text));
    }
    value = value * 10 + digit;
  }
  std::string suffix(Trim(s.substr(digits)));
  for (char& c : suffix) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  for (const Suffix& candidate : kSuffixes) {
    if (suffix != candidate.text) continue;
    if (candidate.shift > 0 && value > (UINT64_MAX >> candidate.shift)) {
      return absl::InvalidArgumentError(
          absl::StrFormat("size '%s' overflows 64 bits", text));
    }
    return value << candidate.shift;
  }
  return absl::InvalidArgumentError(absl::StrFormat(
      "size '%s' has unknown unit '%s' (allowed: B, KiB, MiB, GiB, TiB)", text, suffix));
}

std::string FormatSize(uint64_t bytes) {
  static constexpr std::array<const char*, 5> kUnits = {"KiB", "MiB", "GiB", "TiB", "PiB"};
  if (bytes < 1024) return absl::StrFormat("%u B", bytes);
  double value = static_cast<double>(bytes) / 1024.0;
  size_t unit = 0;
  while (value >= 1024.0 && unit + 1 < kUnits.size()) {
    value /= 1024.0;
    ++unit;
  }
  return absl::StrFormat("%.1f %s", value, kUnits[unit]);
}

}  // namespace memd
