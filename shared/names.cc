#include "memd/shared/names.h"

#include "absl/strings/str_format.h"

namespace memd {

absl::Status ValidateName(std::string_view what, std::string_view name) {
  if (name.empty() || name.size() > kMaxNameBytes) {
    return absl::InvalidArgumentError(absl::StrFormat(
        "%s '%s' has %u characters; allowed 1 to %u", what, name, name.size(), kMaxNameBytes));
  }
  for (char c : name) {
    bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '_' || c == '-';
    if (!ok) {
      return absl::InvalidArgumentError(absl::StrFormat(
          "%s '%s' contains '%c'; allowed characters are A-Z a-z 0-9 _ -", what, name, c));
    }
  }
  return absl::OkStatus();
}

std::string InstanceObjectPrefix(std::string_view instance) {
  return "memd." + std::string(instance) + ".";
}

std::string PoolObjectName(std::string_view instance, std::string_view pool) {
  return "/" + InstanceObjectPrefix(instance) + std::string(pool);
}

std::string PoolStateObjectName(std::string_view instance, std::string_view pool) {
  return PoolObjectName(instance, pool) + ".state";
}

std::string InstanceLockObjectName(std::string_view instance) {
  return "/" + InstanceObjectPrefix(instance) + "daemon.lock";
}

}  // namespace memd
