// libmemd_admin: the daemon's Admin answers for programs other than memctl
// (the Python package's Client.stats()), formatted by memctl's own code
// (client/memctl/format.h), so both print the same document. Installed with
// libmemd: find_package(memd) gives memd::admin, pkg-config memd-admin.
//
// Thread-safe: every call opens its own channel.
#ifndef MEMD_ADMIN_H_
#define MEMD_ADMIN_H_

#include <cstdint>
#include <string>

#include "absl/status/statusor.h"
#include "memd/export.h"

namespace memd {

// The daemon's stats at `address` ("unix:///path", or host:port with TLS and
// the system's roots) as the JSON document `memctl stats --json` prints.
// Waits at most `timeout_ms` for the answer; the error then carries the
// daemon's status code and names the address.
MEMD_EXPORT absl::StatusOr<std::string> StatsJson(const std::string& address,
                                                  int64_t timeout_ms = 5000);

}  // namespace memd

#endif  // MEMD_ADMIN_H_
