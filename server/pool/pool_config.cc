#include "pool/pool_config.h"

#include "absl/strings/str_format.h"
#include "memd/shared/names.h"
#include "memd/shared/size.h"

namespace memd {
namespace {

constexpr uint64_t kMaxAlignment = 1 << 20;

}  // namespace

std::string BytesText(uint64_t n) { return absl::StrFormat("%s (%u bytes)", FormatSize(n), n); }

absl::Status ValidatePoolConfig(const PoolConfig& config) {
  if (absl::Status s = ValidateName("pool name", config.name); !s.ok()) return s;
  uint64_t a = config.alignment_bytes;
  if (a < 8 || a > kMaxAlignment || (a & (a - 1)) != 0) {
    return absl::InvalidArgumentError(absl::StrFormat(
        "alignment %u of pool '%s' must be a power of two from 8 to %u", a, config.name,
        kMaxAlignment));
  }
  if (config.size_bytes < a) {
    return absl::InvalidArgumentError(absl::StrFormat(
        "pool '%s' size %s is smaller than its alignment %u", config.name,
        BytesText(config.size_bytes), a));
  }
  if (config.size_bytes / a > kMaxPoolGranules) {
    return absl::InvalidArgumentError(absl::StrFormat(
        "pool '%s' size %s exceeds the largest pool of %s at alignment %u (%u alignment units); "
        "raise the alignment or make the pool smaller", config.name, BytesText(config.size_bytes),
        BytesText(kMaxPoolGranules * a), a, kMaxPoolGranules));
  }
  if (config.max_alloc_bytes == 0) {
    return absl::InvalidArgumentError(
        absl::StrFormat("max_alloc of pool '%s' must be at least 1 byte", config.name));
  }
  return absl::OkStatus();
}

}  // namespace memd
