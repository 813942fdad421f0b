#include "memctl/memctl.h"

#include <chrono>
#include <iostream>

#include <CLI/CLI.hpp>
#include <grpcpp/grpcpp.h>

#include "memd/shared/address.h"
#include "memd/v1/memd.grpc.pb.h"

namespace memd {
namespace {

constexpr auto kRpcTimeout = std::chrono::seconds(5);

struct Connection {
  std::string address;
  std::unique_ptr<v1::Admin::Stub> stub;
};

// Exit code for a failed RPC, with the message on stderr.
int ReportRpcError(const std::string& address, const grpc::Status& status) {
  bool unreachable = status.error_code() == grpc::StatusCode::UNAVAILABLE ||
                     status.error_code() == grpc::StatusCode::DEADLINE_EXCEEDED;
  std::cerr << "memctl: " << (unreachable ? "cannot reach memd at " : "memd at ") << address
            << (unreachable ? ": " : " failed: ") << status.error_message() << "\n";
  return unreachable ? kExitUnreachable : kExitDaemonError;
}

int GetStats(Connection& conn, v1::GetStatsResponse* response) {
  grpc::ClientContext context;
  context.set_deadline(std::chrono::system_clock::now() + kRpcTimeout);
  grpc::Status status = conn.stub->GetStats(&context, v1::GetStatsRequest(), response);
  return status.ok() ? kExitOk : ReportRpcError(conn.address, status);
}

}  // namespace

int RunMemctl(int argc, char** argv) {
  CLI::App app{"memctl: inspect a running memd daemon"};
  app.require_subcommand(1);
  std::string address = ClientDefaultAddress();
  app.add_option("--address", address,
                 "Daemon address (default $MEMD_ADDRESS, else unix:///run/memd/memd.sock)");
  bool json = false;
  CLI::App* stats = app.add_subcommand("stats", "Show every pool's usage and counters");
  stats->add_flag("--json", json, "Print one JSON object with a 'pools' list");
  CLI::App* health = app.add_subcommand("health", "Exit 0 when the daemon serves, 3 when unreachable");
  try {
    app.parse(argc, argv);
  } catch (const CLI::CallForHelp&) {
    std::cout << app.help();
    return kExitOk;
  } catch (const CLI::ParseError& e) {
    std::cerr << "memctl: " << e.what() << "\nRun 'memctl --help' for the commands.\n";
    return kExitUsage;
  }
  absl::StatusOr<Address> parsed = ParseAddress(address);
  if (!parsed.ok()) {
    std::cerr << "memctl: " << parsed.status().message() << "\n";
    return kExitUsage;
  }
  Connection conn{address, v1::Admin::NewStub(grpc::CreateChannel(
                               parsed->grpc_target, grpc::InsecureChannelCredentials()))};
  v1::GetStatsResponse response;
  if (int code = GetStats(conn, &response); code != kExitOk) return code;
  if (*health) {
    std::cout << "SERVING (" << address << ", " << response.pools_size() << " pools)\n";
  } else if (*stats) {
    std::cout << (json ? StatsToJson(response) : StatsToTable(response));
  }
  return kExitOk;
}

}  // namespace memd
