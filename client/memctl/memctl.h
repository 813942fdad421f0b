// memctl: the admin CLI. RunMemctl parses argv and runs one command against
// the daemon's Admin service. Exit codes: 0 success, 1 failure reported by
// the daemon (or `check` found a broken pool), 2 usage error, 3 daemon
// unreachable.
//
// Files: memctl.cc (flags, commands), admin_call.* (calls, deadlines, errors),
// cli_docs.cc (man page, shell completion), bridge_command.cc; the documents,
// tables and -o formats are the memctl_format library (format.h).
#ifndef MEMD_CLIENT_MEMCTL_MEMCTL_H_
#define MEMD_CLIENT_MEMCTL_MEMCTL_H_

#include <memory>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include <grpcpp/channel.h>

#include "memctl/format.h"
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

// memctl channel drain|delete POOL/CHANNEL (channel_command.cc).
struct ChannelArgs {
  std::string command;  // "drain", "delete"
  std::string name;     // "<pool>/<channel>"
};
CLI::App* AddChannelCommand(CLI::App& app, ChannelArgs* args);
int ChannelCommand(Connection& conn, const ChannelArgs& args);

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

// memctl's manual page (roff) and completion scripts, made from its
// command-line definition so they never disagree with it (cli_docs.cc).
std::string ManPage(const CLI::App& app);
// The shells `memctl completion` writes for: bash, zsh, fish.
const std::vector<std::string>& CompletionShells();
// The completion script for `shell`, one of CompletionShells().
std::string Completion(const CLI::App& app, const std::string& shell);
std::string BashCompletion(const CLI::App& app);
std::string ZshCompletion(const CLI::App& app);
std::string FishCompletion(const CLI::App& app);

}  // namespace memd

#endif  // MEMD_CLIENT_MEMCTL_MEMCTL_H_
