#include "memd/shared/names.h"

#include "absl/strings/str_format.h"
#include "memd/shared/text.h"

namespace memd {

// The name is quoted escaped (a client or an operator gave it: any bytes),
// and so is the first character outside the set, whole when it is a UTF-8
// sequence ('\xc3\xa9' for an e-acute), else its one byte.
absl::Status ValidateName(std::string_view what, std::string_view name) {
  if (name.empty() || name.size() > kMaxNameBytes) {
    return absl::InvalidArgumentError(absl::StrFormat("%s '%s' has %u characters; allowed 1 to %u",
                                                      what, Escaped(name), name.size(),
                                                      kMaxNameBytes));
  }
  for (size_t at = 0; at < name.size(); ++at) {
    char c = name[at];
    bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '_' || c == '-';
    if (!ok) {
      return absl::InvalidArgumentError(absl::StrFormat(
          "%s '%s' contains '%s'; allowed characters are A-Z a-z 0-9 _ -", what, Escaped(name),
          Escaped(name.substr(at, CharacterBytes(name.substr(at))))));
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
