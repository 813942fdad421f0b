#include "memctl/memctl.h"

#include <algorithm>
#include <chrono>
#include <fstream>
#include <iostream>
#include <thread>
#include <tuple>

#include <CLI/CLI.hpp>
#include <grpcpp/grpcpp.h>

#include "memd/shared/address.h"
#include "memd/shared/size.h"
#include "memd/v1/admin.grpc.pb.h"

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

// Runs one unary Admin call with the standard deadline; returns the exit code.
template <typename Request, typename Response, typename Method>
int Call(Connection& conn, Method method, const Request& request, Response* response) {
  grpc::ClientContext context;
  context.set_deadline(std::chrono::system_clock::now() + kRpcTimeout);
  grpc::Status status = (conn.stub.get()->*method)(&context, request, response);
  return status.ok() ? kExitOk : ReportRpcError(conn.address, status);
}

// Pages through a listing (ListSessions, ListBuffers): asks for pages of at
// most `page_size` entries (0: as many as the daemon gives a page) until the
// daemon says the list ends or `want` entries came (0: all), and gathers them
// in *all, whose next_page_token says whether more were left. `entries`
// picks a page's repeated field. Returns the exit code of the first failed
// call, or kExitOk.
template <typename Request, typename Response, typename Method, typename Entries>
int CallPaged(Connection& conn, Method method, Request request, uint32_t page_size, uint64_t want,
              Entries entries, Response* all) {
  uint64_t have = 0;
  do {
    uint64_t left = page_size == 0 ? UINT32_MAX : page_size;
    if (want != 0) left = std::min(left, want - have);
    request.set_limit(static_cast<uint32_t>(left));
    Response page;
    if (int code = Call(conn, method, request, &page); code != kExitOk) return code;
    have += static_cast<uint64_t>(entries(&page)->size());
    for (auto& entry : *entries(&page)) *entries(all)->Add() = std::move(entry);
    all->set_next_page_token(page.next_page_token());
    request.set_page_token(page.next_page_token());
  } while (all->next_page_token() != 0 && (want == 0 || have < want));
  return kExitOk;
}

}  // namespace

int RunMemctl(int argc, char** argv) {
  CLI::App app{"memctl: inspect a running memd daemon"};
  app.require_subcommand(1);
  std::string address = ClientDefaultAddress();
  app.add_option("--address", address,
                 "Daemon address (default $MEMD_ADDRESS, else unix:///run/memd/memd.sock)");
  std::string tls_ca, tls_cert, tls_key;
  app.add_option("--tls-ca", tls_ca,
                 "PEM CA bundle that signed the daemon's certificate (TCP addresses use TLS; "
                 "default: the system's roots)");
  app.add_option("--tls-cert", tls_cert, "PEM client certificate, if the daemon requires one");
  app.add_option("--tls-key", tls_key, "PEM private key of --tls-cert");
  bool json = false;
  CLI::App* stats = app.add_subcommand("stats", "Show every pool's usage and counters");
  CLI::App* pools = app.add_subcommand("pools", "List the pools and their configuration");
  CLI::App* clients = app.add_subcommand(
      "clients", "List sessions: pid, uid, process, name, pool, bytes and buffers held");
  CLI::App* buffers = app.add_subcommand("buffers", "List live buffers with references and holders");
  for (CLI::App* read : {stats, pools, clients, buffers}) {
    read->add_flag("--json", json, "Print one JSON document");
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
  CLI::App* set_max_alloc = app.add_subcommand(
      "set-max-alloc", "Change a pool's largest single allocation (admin only)");
  std::string target_pool, size_text;
  set_max_alloc->add_option("POOL", target_pool, "Pool name")->required();
  set_max_alloc->add_option("SIZE", size_text, "New max_alloc, e.g. 64MiB")->required();
  CLI::App* end_session = app.add_subcommand(
      "end-session", "End a session: its references are released (admin only)");
  uint64_t end_id = 0;
  end_session->add_option("SESSION", end_id, "Session id, as `memctl clients` shows it")->required();
  CLI::App* watch = app.add_subcommand(
      "watch", "Refresh the stats table in place every --interval seconds until interrupted");
  double interval = 2.0;
  int refreshes = 0;
  watch->add_option("--interval", interval, "Seconds between refreshes")
      ->capture_default_str()
      ->check(CLI::Range(0.1, 3600.0));
  watch->add_option("--count", refreshes, "Stop after this many refreshes (0: until interrupted)")
      ->check(CLI::NonNegativeNumber);
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
  std::shared_ptr<grpc::ChannelCredentials> credentials = grpc::InsecureChannelCredentials();
  if (parsed->kind != Address::Kind::kUnix) {
    // TCP listeners of memd always use TLS.
    grpc::SslCredentialsOptions ssl;
    for (auto [flag, path, out] : {std::tuple{"--tls-ca", &tls_ca, &ssl.pem_root_certs},
                                   std::tuple{"--tls-cert", &tls_cert, &ssl.pem_cert_chain},
                                   std::tuple{"--tls-key", &tls_key, &ssl.pem_private_key}}) {
      if (path->empty()) continue;
      std::ifstream in(*path, std::ios::binary);
      *out = std::string((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
      if (out->empty()) {
        std::cerr << "memctl: " << flag << " '" << *path << "' cannot be read or is empty\n";
        return kExitUsage;
      }
    }
    credentials = grpc::SslCredentials(ssl);
  }
  Connection conn{address, v1::Admin::NewStub(grpc::CreateChannel(parsed->grpc_target, credentials))};
  if (*clients) {
    v1::ListSessionsResponse response;
    int code = CallPaged(conn, &v1::Admin::Stub::ListSessions, v1::ListSessionsRequest(), page_size,
                         0, [](auto* page) { return page->mutable_sessions(); }, &response);
    if (code == kExitOk) std::cout << (json ? SessionsToJson(response) : SessionsToTable(response));
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
    if (code == kExitOk) std::cout << (json ? BuffersToJson(response) : BuffersToTable(response));
    return code;
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
  if (*watch) {
    // Like top: home the cursor and clear the screen, then redraw. A daemon
    // that goes away ends the watch with its exit code.
    for (int shown = 0; refreshes == 0 || shown < refreshes; ++shown) {
      if (shown > 0) std::this_thread::sleep_for(std::chrono::duration<double>(interval));
      v1::GetStatsResponse response;
      if (int code = Call(conn, &v1::Admin::Stub::GetStats, v1::GetStatsRequest(), &response);
          code != kExitOk) {
        return code;
      }
      std::cout << "\x1b[H\x1b[2J" << "memd " << response.instance() << " at " << address
                << ", up " << response.uptime_seconds() << " s (every " << interval
                << " s; Ctrl-C to stop)\n\n"
                << StatsToTable(response) << std::flush;
    }
    return kExitOk;
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
    std::cout << (json ? PoolsToJson(response) : PoolsToTable(response));
  } else {
    std::cout << (json ? StatsToJson(response) : StatsToTable(response));
  }
  return kExitOk;
}

}  // namespace memd
