// memctl: the admin CLI. RunMemctl parses argv and runs one command against
// the daemon's Admin service. Exit codes: 0 success, 1 failure reported by
// the daemon (or `check` found a broken pool), 2 usage error, 3 daemon
// unreachable.
//
// Files: memctl.cc (flags, commands), admin_call.* (calls, deadlines, errors),
// output.cc (-o table|wide|json|yaml), stats_format.cc and listing_format.cc
// (each command's document and table), cli_docs.cc (man page, completion).
#ifndef MEMD_CLIENT_MEMCTL_MEMCTL_H_
#define MEMD_CLIENT_MEMCTL_MEMCTL_H_

#include <functional>
#include <optional>
#include <string>

#include <nlohmann/json.hpp>

#include <grpcpp/channel.h>

#include "memd/v1/admin.pb.h"
#include "memd/v1/bridge.pb.h"

namespace CLI {
class App;
}

namespace memd {

inline constexpr int kExitOk = 0;
inline constexpr int kExitDaemonError = 1;
inline constexpr int kExitUsage = 2;
inline constexpr int kExitUnreachable = 3;

int RunMemctl(int argc, char** argv);

// -o: how a command prints its answer.
enum class Output {
  kTable,  // aligned columns, human sizes (the default)
  kWide,   // the table with every column
  kJson,   // one JSON document, stable keys, exact numbers (handles as strings)
  kYaml,   // the same document as YAML
};
std::optional<Output> ParseOutput(const std::string& text);
// The document as JSON or YAML, or the table (`table(wide)`).
std::string Render(Output output, const nlohmann::ordered_json& doc,
                   const std::function<std::string(bool wide)>& table);
std::string ToYaml(const nlohmann::ordered_json& doc);

// Each command's document and table. Handles are decimal strings in the
// documents: jq and JavaScript read JSON numbers as doubles, exact only to 2^53.
nlohmann::ordered_json StatsDocument(const v1::GetStatsResponse& stats);
std::string StatsTable(const v1::GetStatsResponse& stats, bool wide);
nlohmann::ordered_json PoolsDocument(const v1::GetStatsResponse& stats);
std::string PoolsTable(const v1::GetStatsResponse& stats, bool wide);
nlohmann::ordered_json SessionsDocument(const v1::ListSessionsResponse& sessions);
std::string SessionsTable(const v1::ListSessionsResponse& sessions, bool wide);
nlohmann::ordered_json BuffersDocument(const v1::ListBuffersResponse& buffers);
std::string BuffersTable(const v1::ListBuffersResponse& buffers, bool wide);
nlohmann::ordered_json CheckDocument(const v1::CheckPoolsResponse& check);
std::string CheckTable(const v1::CheckPoolsResponse& check, bool wide);

// memctl bridge list|add|remove (bridge_command.cc).
struct BridgeArgs {
  std::string command;                // "list", "add", "remove"
  std::string pool, channel, peer;    // add
  std::string name;                   // remove: "<pool>/<channel>"
};
struct Connection;
int BridgeCommand(Connection& conn, const std::shared_ptr<grpc::Channel>& channel,
                  const BridgeArgs& args, Output output);
nlohmann::ordered_json BridgesDocument(const v1::ListBridgesResponse& list);
std::string BridgesTable(const v1::ListBridgesResponse& list, bool wide);

// memctl trace: records buffers' lives for a while and writes them in the
// Trace Event Format (trace_command.cc: the command; trace_format.cc: the
// document).
struct TraceArgs {
  double seconds = 10;      // how long to record at most
  uint32_t max_events = 0;  // 0: the daemon's default
  std::string pool;         // empty: every pool
  std::string channel;      // empty: every channel
  std::string path;         // the JSON file to write; "-": standard output
};
CLI::App* AddTraceCommand(CLI::App& app, TraceArgs* args);
int TraceCommand(Connection& conn, const TraceArgs& args);
// Perfetto's and chrome://tracing's JSON of a recording (all pages in one
// answer). With `channel`, only buffers that went through it.
nlohmann::ordered_json TraceDocument(const v1::ReadTraceResponse& trace,
                                     const std::string& channel);

// memctl's manual page (roff) and bash completion script, made from its
// command-line definition so they never disagree with it (cli_docs.cc).
std::string ManPage(const CLI::App& app);
std::string BashCompletion(const CLI::App& app);

}  // namespace memd

#endif  // MEMD_CLIENT_MEMCTL_MEMCTL_H_
