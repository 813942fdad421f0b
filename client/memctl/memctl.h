// memctl: the admin CLI. RunMemctl parses argv and runs one command against
// the daemon's Admin service. Exit codes: 0 success, 1 failure reported by
// the daemon, 2 usage error, 3 daemon unreachable.
#ifndef MEMD_CLIENT_MEMCTL_MEMCTL_H_
#define MEMD_CLIENT_MEMCTL_MEMCTL_H_

#include <string>

#include "memd/v1/admin.pb.h"

namespace memd {

inline constexpr int kExitOk = 0;
inline constexpr int kExitDaemonError = 1;
inline constexpr int kExitUsage = 2;
inline constexpr int kExitUnreachable = 3;

int RunMemctl(int argc, char** argv);

// Formatting, separate for tests: one JSON object {"pools": [...], ...}, and
// a table with human sizes.
std::string StatsToJson(const v1::GetStatsResponse& stats);
std::string StatsToTable(const v1::GetStatsResponse& stats);
std::string PoolsToJson(const v1::GetStatsResponse& stats);
std::string PoolsToTable(const v1::GetStatsResponse& stats);
std::string SessionsToJson(const v1::ListSessionsResponse& sessions);
std::string SessionsToTable(const v1::ListSessionsResponse& sessions);
std::string BuffersToJson(const v1::ListBuffersResponse& buffers);
std::string BuffersToTable(const v1::ListBuffersResponse& buffers);

}  // namespace memd

#endif  // MEMD_CLIENT_MEMCTL_MEMCTL_H_
