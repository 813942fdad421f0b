// `memctl bridge list|add|remove` (issue 19): the BridgeAdmin service's
// calls, and the list's document and table.
#include <iostream>

#include <grpcpp/client_context.h>
#include <nlohmann/json.hpp>

#include "absl/strings/str_format.h"
#include "memctl/admin_call.h"
#include "memctl/memctl.h"
#include "memd/shared/size.h"
#include "memd/v1/bridge.grpc.pb.h"

namespace memd {
namespace {

template <typename Request, typename Response, typename Method>
int BridgeCall(Connection& conn, v1::BridgeAdmin::Stub& stub, Method method,
               const Request& request, Response* response) {
  grpc::ClientContext context;
  context.set_deadline(std::chrono::system_clock::now() + absl::ToChronoNanoseconds(conn.timeout));
  grpc::Status status = (stub.*method)(&context, request, response);
  return status.ok() ? kExitOk : ReportRpcError(conn, status);
}

}  // namespace

nlohmann::ordered_json BridgesDocument(const v1::ListBridgesResponse& list) {
  nlohmann::ordered_json bridges = nlohmann::ordered_json::array();
  for (const v1::BridgeStats& b : list.bridges()) {
    bridges.push_back({{"name", b.name()},
                       {"peer", b.peer()},
                       {"direction", b.direction()},
                       {"transport", b.transport()},
                       {"link", b.link()},
                       {"encrypted", b.encrypted()},
                       {"messages", b.messages()},
                       {"bytes", b.bytes()},
                       {"in_flight", b.in_flight()},
                       {"retries", b.retries()},
                       {"last_seq", b.last_seq()},
                       {"lost", b.lost()},
                       {"tag_failures", b.tag_failures()},
                       {"bytes_per_second", b.bytes_per_second()},
                       {"last_error", b.last_error()}});
  }
  return nlohmann::ordered_json{{"node", list.node()}, {"bridges", bridges}};
}

std::string BridgesTable(const v1::ListBridgesResponse& list, bool wide) {
  constexpr const char* kRow = "%-24s %-12s %-4s %-5s %-12s %-10s %9s %10s %9s %7s %10s\n";
  std::string out = absl::StrFormat("node %s\n", list.node());
  out += absl::StrFormat(kRow, "BRIDGE", "PEER", "DIR", "VIA", "ENCRYPTED", "LINK", "MESSAGES", "BYTES",
                         "IN FLIGHT", "RETRIES", "RATE/S");
  for (const v1::BridgeStats& b : list.bridges()) {
    out += absl::StrFormat(kRow, b.name(), b.peer(), b.direction(), b.transport(),
                           b.encrypted() ? "yes" : "no (trusted)", b.link(),
                           absl::StrCat(b.messages()), FormatSize(b.bytes()),
                           absl::StrCat(b.in_flight()), absl::StrCat(b.retries()),
                           FormatSize(static_cast<uint64_t>(b.bytes_per_second())));
    if (wide && !b.last_error().empty()) out += "  last error: " + b.last_error() + "\n";
    if (b.tag_failures() > 0) {
      out += absl::StrFormat("  tag failures: %u pulled frames failed their AES-256-GCM tag and "
                             "were refused (B41)\n", b.tag_failures());
    }
    if (b.lost() > 0) {
      out += absl::StrFormat("  lost: %u messages the peer refused for good (B20)\n", b.lost());
    }
  }
  return out;
}

int BridgeCommand(Connection& conn, const std::shared_ptr<grpc::Channel>& channel,
                  const BridgeArgs& args, Output output) {
  auto stub = v1::BridgeAdmin::NewStub(channel);
  if (args.command == "add") {
    v1::AddBridgeRequest request;
    request.set_pool(args.pool);
    request.set_channel(args.channel);
    request.set_peer(args.peer);
    v1::AddBridgeResponse response;
    int code = BridgeCall(conn, *stub, &v1::BridgeAdmin::Stub::AddBridge, request, &response);
    if (code == kExitOk) {
      std::cout << "bridge '" << args.pool << "/" << args.channel << "' to peer '" << args.peer
                << "' added\n";
    }
    return code;
  }
  if (args.command == "remove") {
    v1::RemoveBridgeRequest request;
    request.set_name(args.name);
    v1::RemoveBridgeResponse response;
    int code = BridgeCall(conn, *stub, &v1::BridgeAdmin::Stub::RemoveBridge, request, &response);
    if (code == kExitOk) {
      std::cout << "bridge '" << args.name << "' removed; " << response.dropped_messages()
                << " messages in flight were dropped\n";
    }
    return code;
  }
  v1::ListBridgesResponse response;
  int code = BridgeCall(conn, *stub, &v1::BridgeAdmin::Stub::ListBridges,
                        v1::ListBridgesRequest(), &response);
  if (code == kExitOk) {
    std::cout << Render(output, BridgesDocument(response),
                        [&](bool wide) { return BridgesTable(response, wide); });
  }
  return code;
}

}  // namespace memd
