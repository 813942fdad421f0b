// `memctl channel drain|delete POOL/CHANNEL` (issue 24): an operator clears
// the backlog a killed consumer left, or removes an idle channel now. Both
// are admin calls (DrainChannel, DeleteChannel); the daemon logs them.
#include <iostream>

#include "absl/strings/str_format.h"
#include "memctl/admin_call.h"
#include "memctl/memctl.h"
#include "memd/shared/size.h"

namespace memd {

CLI::App* AddChannelCommand(CLI::App& app, ChannelArgs* args) {
  CLI::App* channel = app.add_subcommand(
      "channel", "Clear a channel: drain its queued messages, delete it (admin only; "
                 "docs/operations.md)");
  channel->require_subcommand(1);
  CLI::App* drain = channel->add_subcommand(
      "drain", "Release every message queued in the channel (their buffers are freed unless "
               "someone else holds them); says how many messages and bytes");
  CLI::App* remove = channel->add_subcommand(
      "delete", "Remove an idle channel now (refused while messages are queued or clients wait)");
  for (CLI::App* command : {drain, remove}) {
    command->add_option("NAME", args->name, "POOL/CHANNEL, as memctl stats shows it")->required();
    command->final_callback([args, command] { args->command = command->get_name(); });
  }
  return channel;
}

int ChannelCommand(Connection& conn, const ChannelArgs& args) {
  size_t slash = args.name.find('/');
  if (slash == std::string::npos || slash == 0 || slash + 1 == args.name.size()) {
    std::cerr << "memctl: '" << args.name << "' is not POOL/CHANNEL\n";
    return kExitUsage;
  }
  const std::string pool = args.name.substr(0, slash), channel = args.name.substr(slash + 1);
  if (args.command == "drain") {
    v1::DrainChannelRequest request;
    request.set_pool(pool);
    request.set_channel(channel);
    v1::DrainChannelResponse response;
    int code = Call(conn, &v1::Admin::Stub::DrainChannel, request, &response);
    if (code == kExitOk) {
      std::cout << absl::StrFormat("channel %s drained: %u messages (%u references, %s) released\n",
                                   args.name, response.messages(), response.references(),
                                   FormatSize(response.bytes()));
    }
    return code;
  }
  v1::DeleteChannelRequest request;
  request.set_pool(pool);
  request.set_channel(channel);
  v1::DeleteChannelResponse response;
  int code = Call(conn, &v1::Admin::Stub::DeleteChannel, request, &response);
  if (code == kExitOk) std::cout << "channel " << args.name << " deleted\n";
  return code;
}

}  // namespace memd
