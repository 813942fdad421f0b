#include "memctl/memctl.h"

#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <csignal>
#include <cstring>
#include <fstream>
#include <iostream>
#include <thread>
#include <tuple>

#include <CLI/CLI.hpp>

#include "memctl/admin_call.h"
#include "memctl/admin_channel.h"
#include "memd/shared/address.h"
#include "memd/shared/duration.h"
#include "memd/shared/size.h"
#include "memd/shared/unique_fd.h"
#include "memd/version.h"

namespace memd {
namespace {

// The name of process `pid` (/proc/PID/comm); empty when unknown.
std::string ProcessName(pid_t pid) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/comm");
  std::string name;
  std::getline(in, name);
  return name;
}

// memctl reload: SIGHUP to the process that serves the Unix socket, found
// through SO_PEERCRED (no pid file to go stale). A socket systemd passed
// (memd.socket) names systemd itself, so only a process called memd is
// signalled; under systemd, `systemctl reload memd` does the same.
int Reload(const Address& address, const std::string& text) {
  if (address.kind != Address::Kind::kUnix) {
    std::cerr << "memctl: reload signals the daemon behind a local Unix socket; " << text
              << " is not one\n";
    return kExitUsage;
  }
  UniqueFd fd(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  std::snprintf(addr.sun_path, sizeof(addr.sun_path), "%s", address.unix_path.c_str());
  ucred cred{};
  socklen_t len = sizeof(cred);
  if (::connect(fd.get(), reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0 ||
      ::getsockopt(fd.get(), SOL_SOCKET, SO_PEERCRED, &cred, &len) != 0) {
    std::cerr << "memctl: cannot reach memd at " << text << ": " << std::strerror(errno) << "\n";
    return kExitUnreachable;
  }
  std::string name = ProcessName(cred.pid);
  if (name != "memd") {
    std::cerr << "memctl: the socket " << address.unix_path << " belongs to pid " << cred.pid
              << " ('" << name << "'), not memd: a socket systemd passes (memd.socket); "
              << "use `systemctl reload memd`\n";
    return kExitDaemonError;
  }
  if (::kill(cred.pid, SIGHUP) != 0) {
    std::cerr << "memctl: cannot signal memd (pid " << cred.pid << ", uid " << cred.uid
              << "): " << std::strerror(errno) << "; run as memd's user or root\n";
    return kExitDaemonError;
  }
  std::cout << "sent SIGHUP to memd pid " << cred.pid << " at " << text
            << ": it reloads its configuration and logs what changed\n";
  return kExitOk;
}

// memctl watch: like top on a terminal (home the cursor, clear, redraw); on
// a pipe or file, plain tables one after another, each after a header line.
int Watch(Connection& conn, Output output, double interval, int refreshes) {
  const bool tty = ::isatty(STDOUT_FILENO) == 1;
  for (int shown = 0; refreshes == 0 || shown < refreshes; ++shown) {
    if (shown > 0) std::this_thread::sleep_for(std::chrono::duration<double>(interval));
    v1::GetStatsResponse response;
    if (int code = Call(conn, &v1::Admin::Stub::GetStats, v1::GetStatsRequest(), &response);
        code != kExitOk) {
      return code;  // a daemon that goes away ends the watch with its exit code
    }
    if (tty) std::cout << "\x1b[H\x1b[2J";
    if (output == Output::kTable || output == Output::kWide) {
      std::cout << "memd " << response.instance() << " at " << conn.address << ", up "
                << response.uptime_seconds() << " s (every " << interval << " s"
                << (tty ? "; Ctrl-C to stop" : "") << ")\n\n";
    }
    std::cout << Render(output, StatsDocument(response),
                        [&](bool wide) { return StatsTable(response, wide); })
              << (tty ? "" : "\n") << std::flush;
  }
  return kExitOk;
}

// memctl --version / memctl version: memctl's own version always, then the
// daemon's when it answers, or on stderr why not; exit 0 either way (a
// version question is not a health check: `memctl health` is).
int Version(Connection& conn) {
  std::cout << "memctl " << MEMD_VERSION_STRING << "\n" << std::flush;
  v1::GetStatsRequest request;
  request.set_without_channels(true);
  v1::GetStatsResponse response;
  grpc::ClientContext context;
  context.set_deadline(std::chrono::system_clock::now() + absl::ToChronoNanoseconds(conn.timeout));
  grpc::Status status = conn.stub->GetStats(&context, request, &response);
  if (!status.ok()) {
    std::cerr << "memd: no answer from " << conn.address << " (" << status.error_message()
              << "); memctl's version is above\n";
    return kExitOk;
  }
  std::cout << "memd "
            << (response.version().empty() ? "(unknown: the daemon predates GetStats.version)"
                                            : response.version())
            << " (instance " << response.instance() << " at " << conn.address << ")\n";
  return kExitOk;
}

}  // namespace

int RunMemctl(int argc, char** argv) {
  CLI::App app{"memctl: inspect and steer a running memd daemon"};
  app.require_subcommand(0, 1);  // none only with --version
  app.fallthrough();             // global options after the command too
  std::string address = ClientDefaultAddress();
  app.add_option("--address", address,
                 "Daemon address (default $MEMD_ADDRESS, else unix:///run/memd/memd.sock)");
  std::string tls_ca, tls_cert, tls_key;
  app.add_option("--tls-ca", tls_ca,
                 "PEM CA bundle that signed the daemon's certificate (TCP addresses use TLS; "
                 "default: the system's roots)");
  app.add_option("--tls-cert", tls_cert, "PEM client certificate, if the daemon requires one");
  app.add_option("--tls-key", tls_key, "PEM private key of --tls-cert");
  std::string output_text = "table";
  app.add_option("-o,--output", output_text, "Output format: table, wide, json or yaml")
      ->capture_default_str();
  std::string timeout_text = "5s";
  app.add_option("--timeout", timeout_text,
                 "How long each request to the daemon may take: seconds or with a unit (500ms, 1m)")
      ->capture_default_str();
  bool version = false;
  app.add_flag("--version", version,
               "Print memctl's version, and the daemon's when it answers (exit 0 either way)");
  bool json = false;
  CLI::App* stats = app.add_subcommand("stats", "Show every pool's usage and counters");
  CLI::App* pools = app.add_subcommand("pools", "List the pools and their configuration");
  CLI::App* clients = app.add_subcommand(
      "clients", "List sessions: pid, uid, process, name, pool, bytes and buffers held");
  CLI::App* buffers = app.add_subcommand("buffers", "List live buffers with references and holders");
  for (CLI::App* read : {stats, pools, clients, buffers}) {
    read->add_flag("--json", json, "Same as -o json");
  }
  std::string pool_filter;
  uint64_t session_filter = 0;
  uint64_t limit = 1000;
  uint32_t page_size = 0;
  buffers->add_option("--pool", pool_filter, "Only this pool");
  buffers->add_option("--session", session_filter, "Only buffers this session holds");
  buffers->add_option("--limit", limit, "At most this many buffers (0: all)")->capture_default_str();
  for (CLI::App* listing : {clients, buffers}) {
    listing->add_option("--page-size", page_size,
                        "Entries per request; memctl asks page after page (default: as many as "
                        "the daemon sends a page)")
        ->check(CLI::PositiveNumber);
  }
  CLI::App* check = app.add_subcommand(
      "check", "Run every pool's invariant checker in the daemon; exit 1 when one is broken");
  CLI::App* set_max_alloc = app.add_subcommand(
      "set-max-alloc", "Change a pool's largest single allocation (admin only)");
  std::string target_pool, size_text;
  set_max_alloc->add_option("POOL", target_pool, "Pool name")->required();
  set_max_alloc->add_option("SIZE", size_text, "New max_alloc, e.g. 64MiB")->required();
  CLI::App* end_session = app.add_subcommand(
      "end-session", "End a session: its references are released (admin only)");
  uint64_t end_id = 0;
  end_session->add_option("SESSION", end_id, "Session id, as `memctl clients` shows it")->required();
  CLI::App* shutdown = app.add_subcommand(
      "shutdown", "Stop the daemon; every pool's buffers stay for the next start unless "
                  "--discard (admin only)");
  bool discard = false;
  shutdown->add_flag("--discard", discard,
                     "Discard every pool and every buffer in them: the next start creates the "
                     "pools empty (clients still mapping them keep their memory until they exit)");
  CLI::App* reload = app.add_subcommand(
      "reload", "Make the daemon reload its configuration (SIGHUP to the process serving the "
                "Unix socket; as memd's user or root)");
  CLI::App* watch = app.add_subcommand(
      "watch", "Refresh the stats every --interval seconds until interrupted (in place on a "
               "terminal, one after another otherwise)");
  double interval = 2.0;
  int refreshes = 0;
  watch->add_option("--interval", interval, "Seconds between refreshes")
      ->capture_default_str()
      ->check(CLI::Range(0.1, 3600.0));
  watch->add_option("--count", refreshes, "Stop after this many refreshes (0: until interrupted)")
      ->check(CLI::NonNegativeNumber);
  CLI::App* health = app.add_subcommand("health", "Exit 0 when the daemon serves, 3 when unreachable");
  CLI::App* version_command = app.add_subcommand(
      "version", "Print memctl's version and the daemon's (as --version; exit 0 either way)");
  CLI::App* completion = app.add_subcommand(
      "completion", "Print the completion script for bash, zsh or fish (source it, or install "
                    "it where the shell looks)");
  std::string shell;
  completion->add_option("SHELL", shell, "bash, zsh or fish")
      ->required()
      ->check(CLI::IsMember(CompletionShells()));
  CLI::App* man = app.add_subcommand("man", "Print this manual page (roff; man -l -)");
  CLI::App* bridge = app.add_subcommand(
      "bridge", "Channels bridged to peer daemons: list, add, remove (docs/multi-node.md)");
  bridge->require_subcommand(1);
  BridgeArgs bridge_args;
  CLI::App* bridge_list = bridge->add_subcommand(
      "list", "Every bridge: peer, direction, transport, link, messages, bytes, in flight, "
              "retries, throughput of the last interval");
  bridge_list->add_flag("--json", json, "Same as -o json");
  CLI::App* bridge_add = bridge->add_subcommand(
      "add", "Bridge a channel to the channel of the same name on a peer (admin only; kept "
             "across restarts in the daemon's state directory)");
  bridge_add->add_option("POOL", bridge_args.pool, "A pool marked bridge=true")->required();
  bridge_add->add_option("CHANNEL", bridge_args.channel, "Channel name")->required();
  bridge_add->add_option("PEER", bridge_args.peer, "A configured peer's node name")->required();
  CLI::App* bridge_remove = bridge->add_subcommand(
      "remove", "Stop a bridge; its messages in flight are dropped (admin only)");
  bridge_remove->add_option("NAME", bridge_args.name, "POOL/CHANNEL, as bridge list shows it")
      ->required();
  TraceArgs trace_args;
  CLI::App* trace = AddTraceCommand(app, &trace_args);
  ChannelArgs channel_args;
  CLI::App* channel_command = AddChannelCommand(app, &channel_args);
  try {
    app.parse(argc, argv);
  } catch (const CLI::CallForHelp&) {
    std::cout << app.help();
    return kExitOk;
  } catch (const CLI::ParseError& e) {
    std::cerr << "memctl: " << e.what() << "\nRun 'memctl --help' for the commands.\n";
    return kExitUsage;
  }
  if (*completion) {
    std::cout << Completion(app, shell);
    return kExitOk;
  }
  if (*man) {
    std::cout << ManPage(app);
    return kExitOk;
  }
  std::optional<Output> output = ParseOutput(json ? "json" : output_text);
  if (!output) {
    std::cerr << "memctl: -o '" << output_text << "' must be one of table, wide, json, yaml\n";
    return kExitUsage;
  }
  absl::StatusOr<absl::Duration> timeout = ParseDuration("--timeout", timeout_text, absl::Hours(1));
  if (!timeout.ok() || *timeout == absl::ZeroDuration()) {
    std::cerr << "memctl: "
              << (timeout.ok() ? "--timeout must be more than 0s" : timeout.status().message())
              << "\n";
    return kExitUsage;
  }
  absl::StatusOr<Address> parsed = ParseAddress(address);
  if (!parsed.ok()) {
    std::cerr << "memctl: " << parsed.status().message() << "\n";
    return kExitUsage;
  }
  if (*reload) return Reload(*parsed, address);
  AdminTls tls;
  for (auto [flag, path, out] : {std::tuple{"--tls-ca", &tls_ca, &tls.ca_pem},
                                 std::tuple{"--tls-cert", &tls_cert, &tls.cert_pem},
                                 std::tuple{"--tls-key", &tls_key, &tls.key_pem}}) {
    if (path->empty() || parsed->kind == Address::Kind::kUnix) continue;
    std::ifstream in(*path, std::ios::binary);
    *out = std::string((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    if (out->empty()) {
      std::cerr << "memctl: " << flag << " '" << *path << "' cannot be read or is empty\n";
      return kExitUsage;
    }
  }
  absl::StatusOr<std::shared_ptr<grpc::Channel>> opened = OpenAdminChannel(address, tls);
  if (!opened.ok()) {
    std::cerr << "memctl: " << opened.status().message() << "\n";
    return kExitUsage;
  }
  std::shared_ptr<grpc::Channel> channel = *opened;
  Connection conn{address, v1::Admin::NewStub(channel), *timeout};
  if (version || *version_command) return Version(conn);
  if (app.get_subcommands().empty()) {
    std::cerr << "memctl: a command is required\nRun 'memctl --help' for the commands.\n";
    return kExitUsage;
  }
  if (*clients) {
    v1::ListSessionsResponse response;
    int code = CallPaged(conn, &v1::Admin::Stub::ListSessions, v1::ListSessionsRequest(), page_size,
                         0, [](auto* page) { return page->mutable_sessions(); }, &response);
    if (code == kExitOk) {
      std::cout << Render(*output, SessionsDocument(response),
                          [&](bool wide) { return SessionsTable(response, wide); });
    }
    return code;
  }
  if (*buffers) {
    v1::ListBuffersRequest request;
    request.set_pool(pool_filter);
    request.set_session_id(session_filter);
    v1::ListBuffersResponse response;
    int code = CallPaged(conn, &v1::Admin::Stub::ListBuffers, request, page_size, limit,
                         [](auto* page) { return page->mutable_buffers(); }, &response);
    response.set_truncated(response.next_page_token() != 0);
    if (code == kExitOk) {
      std::cout << Render(*output, BuffersDocument(response),
                          [&](bool wide) { return BuffersTable(response, wide); });
    }
    return code;
  }
  if (*check) {
    v1::CheckPoolsResponse response;
    int code = Call(conn, &v1::Admin::Stub::CheckPools, v1::CheckPoolsRequest(), &response);
    if (code != kExitOk) return code;
    nlohmann::ordered_json doc = CheckDocument(response);
    std::cout << Render(*output, doc, [&](bool wide) { return CheckTable(response, wide); });
    return doc["ok"].get<bool>() ? kExitOk : kExitDaemonError;
  }
  if (*set_max_alloc) {
    absl::StatusOr<uint64_t> size = ParseSize(size_text);
    if (!size.ok()) {
      std::cerr << "memctl: " << size.status().message() << "\n";
      return kExitUsage;
    }
    v1::SetMaxAllocRequest request;
    request.set_pool(target_pool);
    request.set_max_alloc_bytes(*size);
    v1::SetMaxAllocResponse response;
    int code = Call(conn, &v1::Admin::Stub::SetMaxAlloc, request, &response);
    if (code == kExitOk) {
      std::cout << "max_alloc of pool '" << target_pool << "': " << FormatSize(response.previous_max_alloc_bytes())
                << " -> " << FormatSize(*size) << "\n";
    }
    return code;
  }
  if (*end_session) {
    v1::EndSessionRequest request;
    request.set_session_id(end_id);
    v1::EndSessionResponse response;
    int code = Call(conn, &v1::Admin::Stub::EndSession, request, &response);
    if (code == kExitOk) std::cout << "session " << end_id << " ended\n";
    return code;
  }
  if (*shutdown) {
    v1::ShutdownRequest request;
    request.set_discard(discard);
    v1::ShutdownResponse response;
    int code = Call(conn, &v1::Admin::Stub::Shutdown, request, &response);
    if (code == kExitOk) {
      std::cout << "memd is stopping: " << response.live_buffers() << " live buffers "
                << (discard ? "discarded" : "kept for the next start") << ", "
                << response.sessions() << " sessions ended\n";
    }
    return code;
  }
  if (*watch) return Watch(conn, *output, interval, refreshes);
  if (*trace) return TraceCommand(conn, trace_args);
  if (*channel_command) return ChannelCommand(conn, channel_args);
  if (*bridge) {
    bridge_args.command = *bridge_add ? "add" : *bridge_remove ? "remove" : "list";
    return BridgeCommand(conn, channel, bridge_args, *output);
  }
  v1::GetStatsRequest request;
  // Health needs no channel entries: its answer stays small whatever the daemon holds.
  request.set_without_channels(*health || *pools);
  v1::GetStatsResponse response;
  if (int code = Call(conn, &v1::Admin::Stub::GetStats, request, &response); code != kExitOk) {
    return code;
  }
  if (*health) {
    std::cout << "SERVING (" << address << ", " << response.pools_size() << " pools)\n";
  } else if (*pools) {
    std::cout << Render(*output, PoolsDocument(response),
                        [&](bool wide) { return PoolsTable(response, wide); });
  } else {
    std::cout << Render(*output, StatsDocument(response),
                        [&](bool wide) { return StatsTable(response, wide); });
  }
  return kExitOk;
}

}  // namespace memd
