#include "config/identity.h"

#include <grp.h>
#include <pwd.h>

#include <cstdlib>
#include <optional>

#include "absl/strings/str_format.h"

namespace memd {
namespace {

// A decimal id below 2^31, or nullopt.
std::optional<uint32_t> Number(const std::string& text) {
  if (text.empty() || text.size() > 10) return std::nullopt;
  for (char c : text) {
    if (c < '0' || c > '9') return std::nullopt;
  }
  unsigned long value = std::strtoul(text.c_str(), nullptr, 10);
  if (value >= (1ul << 31)) return std::nullopt;
  return static_cast<uint32_t>(value);
}

}  // namespace

absl::StatusOr<UserIdentity> ResolveUser(const std::string& flag, const std::string& text) {
  if (std::optional<uint32_t> n = Number(text)) {
    passwd* pw = ::getpwuid(*n);
    return UserIdentity{*n, pw != nullptr ? pw->pw_gid : *n};
  }
  if (passwd* pw = ::getpwnam(text.c_str()); pw != nullptr) {
    return UserIdentity{pw->pw_uid, pw->pw_gid};
  }
  return absl::InvalidArgumentError(
      absl::StrFormat("%s '%s' is neither a user of this system nor a uid", flag, text));
}

absl::StatusOr<gid_t> ResolveGroup(const std::string& flag, const std::string& text) {
  if (std::optional<uint32_t> n = Number(text)) return *n;
  if (group* gr = ::getgrnam(text.c_str()); gr != nullptr) return gr->gr_gid;
  return absl::InvalidArgumentError(
      absl::StrFormat("%s '%s' is neither a group of this system nor a gid", flag, text));
}

}  // namespace memd
