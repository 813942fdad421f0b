#include "daemon_env.h"

#include <sys/stat.h>

#include <signal.h>
#include <sys/wait.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cstdio>

#include <atomic>
#include <filesystem>
#include <thread>

#include <grpcpp/grpcpp.h>
#include <gtest/gtest.h>

namespace memd::testing {

std::string MemdBinary() { return MEMD_BINARY; }
std::string MemctlBinary() { return MEMCTL_BINARY; }
std::string TestClientBinary() { return MEMD_TEST_CLIENT_BINARY; }

std::string UniqueInstanceName() {
  static std::atomic<int> counter{0};
  return "memd-test-" + std::to_string(getpid()) + "-" + std::to_string(counter++);
}

std::string StateDirectoryOf(const std::string& instance) {
  return "/run/memd/state/" + instance;  // the daemon's default as root
}

std::string StateFilePath(const std::string& instance, const std::string& pool) {
  return StateDirectoryOf(instance) + "/" + pool + ".state";
}

std::vector<uint64_t> ReadHandles(Subprocess& client) {
  std::vector<uint64_t> handles;
  while (auto line = client.ReadLine()) {
    if (*line == "ready") return handles;
    if (line->rfind("handle ", 0) != 0) {
      ADD_FAILURE() << "unexpected line from test client: " << *line;
      return {};
    }
    handles.push_back(std::stoull(line->substr(7)));
  }
  ADD_FAILURE() << "test client ended before 'ready'";
  return {};
}

bool SocketAccepts(const std::string& path) {
  int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  std::snprintf(addr.sun_path, sizeof(addr.sun_path), "%s", path.c_str());
  bool ok = connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) == 0;
  close(fd);
  return ok;
}

bool WaitFor(const std::function<bool()>& condition, std::chrono::milliseconds timeout) {
  auto deadline = std::chrono::steady_clock::now() + timeout;
  while (std::chrono::steady_clock::now() < deadline) {
    if (condition()) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  return condition();
}

DaemonEnv::DaemonEnv(DaemonOptions options) : options_(std::move(options)) {
  // Session arenas keep a chunk per C API session, which the suites that
  // count a client's exact buffers and bytes do not expect: they run without
  // (this process and the clients it spawns), unless a test asked for
  // arenas (arena_test.cc sets MEMD_ARENA_THRESHOLD itself).
  ::setenv("MEMD_ARENA_THRESHOLD", "0", /*overwrite=*/0);
  char tmpl[] = "/tmp/memd-test-XXXXXX";
  dir_ = mkdtemp(tmpl);
  // Other uids (security tests) reach the socket through this directory.
  chmod(dir_.c_str(), 0755);
  socket_path_ = dir_ + (options_.socket_in_new_dir ? "/run/memd.sock" : "/memd.sock");
  address_ = "unix://" + socket_path_;
  instance_ = options_.instance.empty() ? UniqueInstanceName() : options_.instance;
  ok_ = Start();
}

DaemonEnv::~DaemonEnv() {
  // Every test also checks the clean shutdown: exit 0 after SIGTERM, which
  // removes the socket and keeps the pools' state for a next start; the
  // test's instance has none, so its state directory goes too.
  bool was_running = process_ != nullptr;
  std::optional<int> status = Stop(SIGTERM);
  if (was_running && ok_) {
    EXPECT_EQ(ExitCode(status), 0) << "memd did not exit cleanly after SIGTERM (128 + N: signal N)";
  }
  std::error_code ec;
  std::filesystem::remove_all(dir_, ec);
  std::filesystem::remove_all(StateDirectoryOf(instance_), ec);
}

bool DaemonEnv::Start() {
  std::vector<std::string> argv = {MemdBinary(), "--listen", address_, "--instance", instance_,
                                   "--log-level", "warn"};
  for (const auto& pool : options_.pools) {
    argv.push_back("--pool");
    argv.push_back(pool);
  }
  argv.insert(argv.end(), options_.extra_args.begin(), options_.extra_args.end());
  process_ = std::make_unique<Subprocess>(argv);
  // A channel that fails to connect sits in gRPC's reconnect backoff (1 s and
  // growing), and the socket file may be a killed predecessor's: wait until
  // the socket accepts, then make the channel.
  if (!WaitFor([&] { return SocketAccepts(socket_path_); }, std::chrono::seconds(10))) {
    ReportStartFailure("its socket did not accept a connection within 10 s");
    return false;
  }
  admin_ = v1::Admin::NewStub(
      grpc::CreateChannel("unix:" + socket_path_, grpc::InsecureChannelCredentials()));
  bool answers = WaitFor(
      [&] {
        grpc::ClientContext ctx;
        ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::milliseconds(200));
        v1::GetStatsResponse r;
        return admin_->GetStats(&ctx, v1::GetStatsRequest(), &r).ok();
      },
      std::chrono::seconds(10));
  if (!answers) ReportStartFailure("it accepted connections but did not answer GetStats within 10 s");
  return answers;
}

void DaemonEnv::ReportStartFailure(const std::string& what) {
  // The daemon logs to its stdout, a pipe nobody reads while it runs: a test
  // that could not start it shows why here (its log, its exit or its stacks).
  std::optional<int> status = process_->Wait(std::chrono::milliseconds(0));
  if (!status) process_->PrintStacks();
  std::string log = process_->ReadAll(std::chrono::milliseconds(300));
  std::fprintf(stderr, "memd (pid %d) did not start: %s; %s; its log:\n%s\n", process_->pid(),
               what.c_str(),
               status ? ("it exited with " + std::to_string(ExitCode(status))).c_str()
                      : "it still runs (stacks above)",
               log.c_str());
}

v1::ListSessionsResponse DaemonEnv::Sessions() const {
  grpc::ClientContext ctx;
  ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(5));
  v1::ListSessionsResponse sessions;
  admin_->ListSessions(&ctx, v1::ListSessionsRequest(), &sessions).ok();
  return sessions;
}

bool DaemonEnv::Restart() {
  ok_ = Start();
  return ok_;
}

std::optional<int> DaemonEnv::Stop(int signal) {
  if (!process_) return std::nullopt;
  process_->Kill(signal);
  std::optional<int> status = process_->Wait(std::chrono::seconds(10));
  if (!status) {
    process_->Kill(SIGKILL);
    status = process_->Wait();
  }
  process_.reset();
  return status;
}

std::string DaemonEnv::StopAndReadOutput(int signal, int* exit_code) {
  if (!process_) return "";
  process_->Kill(signal);
  std::string out = process_->ReadAll(std::chrono::seconds(10));
  *exit_code = ExitCode(Stop(SIGKILL));  // already exited: only reaps it
  return out;
}

std::map<std::string, std::string> DaemonEnv::ClientEnv(const std::string& pool) const {
  return {{"MEMD_ADDRESS", address_}, {"MEMD_POOL", pool}};
}

v1::GetStatsResponse DaemonEnv::Stats() const {
  grpc::ClientContext ctx;
  ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(5));
  v1::GetStatsResponse response;
  grpc::Status status = admin_->GetStats(&ctx, v1::GetStatsRequest(), &response);
  if (!status.ok()) return v1::GetStatsResponse();
  return response;
}

v1::ChannelStats DaemonEnv::ChannelStats(const std::string& channel, const std::string& pool) const {
  v1::PoolStats stats = PoolStats(pool);
  for (const v1::ChannelStats& c : stats.channels()) {
    if (c.name() == channel) return c;
  }
  return v1::ChannelStats();
}

v1::PoolStats DaemonEnv::PoolStats(const std::string& pool) const {
  v1::GetStatsResponse stats = Stats();
  for (const auto& p : stats.pools()) {
    if (p.name() == pool) return p;
  }
  v1::PoolStats missing;
  missing.set_name("<missing: daemon unreachable or no such pool>");
  missing.set_used_bytes(UINT64_MAX);
  missing.set_live_buffers(UINT64_MAX);
  return missing;
}

grpc::Status DaemonEnv::DrainChannel(const std::string& channel,
                                     v1::DrainChannelResponse* drained,
                                     const std::string& pool) const {
  grpc::ClientContext ctx;
  ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(5));
  v1::DrainChannelRequest request;
  request.set_pool(pool);
  request.set_channel(channel);
  return admin_->DrainChannel(&ctx, request, drained);
}

std::pair<int, std::string> RunMemctl(const DaemonEnv& daemon, std::vector<std::string> args,
                                      std::optional<int> uid) {
  std::vector<std::string> argv = {"/bin/sh", "-c", "exec \"$0\" \"$@\" 2>&1", MemctlBinary(),
                                   "--address", daemon.address()};
  argv.insert(argv.end(), args.begin(), args.end());
  return RunCommand(uid ? AsUid(*uid, argv) : argv);
}

std::string DaemonEnv::CheckPools() const {
  grpc::ClientContext ctx;
  ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(5));
  v1::CheckPoolsResponse response;
  grpc::Status status = admin_->CheckPools(&ctx, v1::CheckPoolsRequest(), &response);
  if (!status.ok()) return "CheckPools RPC failed: " + status.error_message();
  std::string errors;
  for (const auto& p : response.pools()) {
    if (!p.ok()) errors += p.name() + ": " + p.error() + "\n";
  }
  return errors;
}

}  // namespace memd::testing
