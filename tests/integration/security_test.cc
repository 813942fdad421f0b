// Who may do what: pool access by the kernel's rule, quotas, admin rights,
// TLS on TCP and dropping privileges. Clients run as other uids through
// setpriv, so these tests need root (CI runs as root); they skip otherwise.
#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>

#include <grpcpp/grpcpp.h>
#include <gtest/gtest.h>

#include "daemon_env.h"
#include "net.h"
#include "memd/client.h"
#include "memd/v1/memory.grpc.pb.h"
#include "status_text.h"

namespace memd::testing {
namespace {

using ::memd::testing_support::Has;

constexpr int kOutsider = 52001;   // in no group of interest
constexpr int kInsider = 52002;    // member of the pipeline group
constexpr int kPipelineGroup = 52100;
constexpr int kOperator = 52003;   // member of the admin group
constexpr int kAdminGroup = 52200;
constexpr int kServiceUser = 52005;

#define REQUIRE_ROOT() \
  if (::geteuid() != 0) GTEST_SKIP() << "needs root to run clients as other uids"

// Runs argv with its stderr merged into the captured output.
std::pair<int, std::string> RunMerged(std::vector<std::string> argv,
                                      std::map<std::string, std::string> env = {}) {
  argv.insert(argv.begin(), {"/bin/sh", "-c", "exec \"$0\" \"$@\" 2>&1"});
  return RunCommand(std::move(argv), std::move(env));
}

// argv run as uid:gid with exactly `groups` as supplementary groups.
std::pair<int, std::string> RunAs(int uid, std::vector<int> groups, std::vector<std::string> argv,
                                  std::map<std::string, std::string> env = {}) {
  std::string group_list;
  for (int g : groups) group_list += (group_list.empty() ? "" : ",") + std::to_string(g);
  std::vector<std::string> full = {"/usr/bin/setpriv", "--reuid=" + std::to_string(uid),
                                   "--regid=" + std::to_string(uid)};
  full.push_back(groups.empty() ? "--clear-groups" : "--groups=" + group_list);
  full.insert(full.end(), argv.begin(), argv.end());
  return RunMerged(full, std::move(env));
}

TEST(SecurityTest, PoolAccessFollowsTheConfiguredOwnerGroupAndMode) {
  REQUIRE_ROOT();
  DaemonEnv daemon({.pools = {"private=4MiB", "shared=4MiB,mode=0660,group=" +
                                                  std::to_string(kPipelineGroup)},
                    .extra_args = {"--socket-mode", "0666"}});
  ASSERT_TRUE(daemon.ok());
  // The name the pool's object had before memfds: nothing by it exists now.
  std::string shared_object = "/memd." + daemon.instance() + ".shared";

  auto owner = Client::Connect({.address = daemon.address(), .pool = "shared"});
  ASSERT_TRUE(owner.ok()) << owner.status();
  auto buffer = (*owner)->Allocate(4096);
  ASSERT_TRUE(buffer.ok());
  std::string handle = std::to_string(buffer->handle());
  v1::PoolStats before = daemon.PoolStats("shared");

  // An outsider can neither map the pool nor get a session on it.
  auto [code, out] = RunAs(kOutsider, {}, {TestClientBinary(), "probe", shared_object, handle},
                           daemon.ClientEnv("shared"));
  EXPECT_EQ(code, 0) << out;
  EXPECT_TRUE(Has(out, "attach -13 pool 'shared' is not open to uid 52001")) << out;
  EXPECT_TRUE(Has(out, "shm 2")) << "no name to open (ENOENT): the memory is a passed memfd: "
                                  << out;
  EXPECT_FALSE(Has(out, "alloc")) << out;
  v1::PoolStats after = daemon.PoolStats("shared");
  EXPECT_EQ(after.live_buffers(), before.live_buffers()) << "nothing changed";
  EXPECT_EQ(after.used_bytes(), before.used_bytes());

  // A member of the pool's group maps it, allocates and retains.
  std::tie(code, out) = RunAs(kInsider, {kPipelineGroup},
                              {TestClientBinary(), "probe", shared_object, handle},
                              daemon.ClientEnv("shared"));
  EXPECT_TRUE(Has(out, "attach 0")) << out;
  EXPECT_TRUE(Has(out, "alloc ok")) << out;
  EXPECT_TRUE(Has(out, "retain ok")) << out;

  // ... but not the 0600 pool of the daemon's user.
  std::tie(code, out) = RunAs(kInsider, {kPipelineGroup},
                              {TestClientBinary(), "probe", "/memd." + daemon.instance() + ".private"},
                              daemon.ClientEnv("private"));
  EXPECT_TRUE(Has(out, "attach -13 pool 'private' is not open to uid 52002")) << out;
  EXPECT_TRUE(WaitFor([&] { return daemon.PoolStats("shared").used_bytes() == before.used_bytes(); }));
}

TEST(SecurityTest, QuotasPerSessionAndPerUidNameTheQuota) {
  DaemonEnv daemon({.pools = {"default=8MiB,session-buffers=2,session-bytes=1MiB,uid-buffers=3"}});
  ASSERT_TRUE(daemon.ok());
  auto a = Client::Connect({.address = daemon.address()});
  auto b = Client::Connect({.address = daemon.address()});
  ASSERT_TRUE(a.ok() && b.ok());
  auto a1 = (*a)->Allocate(1000);
  auto a2 = (*a)->Allocate(1000);
  ASSERT_TRUE(a1.ok() && a2.ok());
  auto a3 = (*a)->Allocate(1000);
  EXPECT_EQ(a3.status().code(), absl::StatusCode::kResourceExhausted);
  EXPECT_TRUE(Has(std::string(a3.status().message()), "per-session quota of 2 buffers")) << a3.status();
  auto b1 = (*b)->Allocate(1000);
  ASSERT_TRUE(b1.ok());
  auto b2 = (*b)->Allocate(1000);  // uid 0 now references 3 buffers
  EXPECT_EQ(b2.status().code(), absl::StatusCode::kResourceExhausted);
  EXPECT_TRUE(Has(std::string(b2.status().message()), "per-uid quota of 3 buffers for uid 0"))
      << b2.status();
  auto retained = (*a)->Retain(b1->handle());  // would be a's third buffer
  EXPECT_EQ(retained.status().code(), absl::StatusCode::kResourceExhausted) << retained.status();
  // memctl shows usage against the quota.
  auto [code, out] = RunCommand({MemctlBinary(), "--address", daemon.address(), "clients"});
  EXPECT_EQ(code, 0) << out;
  EXPECT_TRUE(Has(out, "2/2")) << out;
  EXPECT_TRUE(Has(out, "/1.0 MiB")) << out;
  // Releasing makes room; bytes are limited too.
  ASSERT_TRUE(a2->Release().ok());
  auto big = (*a)->Allocate(2 << 20);
  EXPECT_EQ(big.status().code(), absl::StatusCode::kResourceExhausted);
  EXPECT_TRUE(Has(std::string(big.status().message()), "per-session quota of 1.0 MiB")) << big.status();
  EXPECT_TRUE((*b)->Allocate(1000).ok()) << "the uid is below its quota again";
}

TEST(SecurityTest, AdminGroupMembersMayChangeTheDaemonOthersMayNot) {
  REQUIRE_ROOT();
  DaemonEnv daemon({.extra_args = {"--socket-mode", "0666", "--admin-group",
                                   std::to_string(kAdminGroup)}});
  ASSERT_TRUE(daemon.ok());
  auto [code, out] = RunAs(kOperator, {kAdminGroup},
                           {MemctlBinary(), "--address", daemon.address(), "set-max-alloc",
                            "default", "1MiB"});
  EXPECT_EQ(code, 0) << out;
  EXPECT_EQ(daemon.PoolStats().max_alloc_bytes(), 1u << 20);
  std::tie(code, out) = RunAs(kOutsider, {}, {MemctlBinary(), "--address", daemon.address(),
                                              "set-max-alloc", "default", "2MiB"});
  EXPECT_EQ(code, 1) << out;
  EXPECT_TRUE(Has(out, "members of group 52200")) << out;
  EXPECT_EQ(daemon.PoolStats().max_alloc_bytes(), 1u << 20) << "nothing changed";

  // Ending a session is an admin operation too. Its process lives and still
  // points into its buffers, so they stay its own: libmemd reconnects and
  // reclaims them with the session's ticket; they go when the process exits.
  Subprocess holder({TestClientBinary(), "hold", "3", "4096", "1"}, daemon.ClientEnv());
  ASSERT_EQ(ReadHandles(holder).size(), 3u);
  v1::ListSessionsResponse sessions;
  {
    auto admin = v1::Admin::NewStub(
        grpc::CreateChannel(daemon.address(), grpc::InsecureChannelCredentials()));
    grpc::ClientContext ctx;
    ASSERT_TRUE(admin->ListSessions(&ctx, v1::ListSessionsRequest(), &sessions).ok());
  }
  ASSERT_EQ(sessions.sessions_size(), 1);
  std::string id = std::to_string(sessions.sessions(0).session_id());
  std::tie(code, out) = RunAs(kOutsider, {}, {MemctlBinary(), "--address", daemon.address(),
                                              "end-session", id});
  EXPECT_EQ(code, 1) << out;
  EXPECT_EQ(daemon.PoolStats().live_buffers(), 3u);
  std::tie(code, out) = RunAs(kOperator, {kAdminGroup}, {MemctlBinary(), "--address",
                                                         daemon.address(), "end-session", id});
  EXPECT_EQ(code, 0) << out;
  std::tie(code, out) = RunMerged({MemctlBinary(), "--address", daemon.address(), "end-session", id});
  EXPECT_EQ(code, 1);
  EXPECT_TRUE(Has(out, "no session " + id)) << out;
  EXPECT_TRUE(WaitFor([&] {
    v1::PoolStats s = daemon.PoolStats();
    return s.sessions() == 1 && s.live_buffers() == 3;
  })) << "the holder is back on a new session with its buffers: " << daemon.PoolStats().DebugString();
  holder.CloseStdin();
  holder.Wait();
  EXPECT_TRUE(WaitFor([&] { return daemon.PoolStats().live_buffers() == 0; }))
      << "released when the process exits: " << daemon.PoolStats().DebugString();
}

// A CA, a server certificate for 127.0.0.1 and a client certificate, in `dir`.
bool MakeCertificates(const std::string& dir) {
  std::ofstream(dir + "/san.cnf") << "subjectAltName=IP:127.0.0.1,DNS:localhost\n";
  std::vector<std::vector<std::string>> steps = {
      {"/usr/bin/openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj",
       "/CN=memd-test-ca", "-keyout", dir + "/ca.key", "-out", dir + "/ca.pem"},
      {"/usr/bin/openssl", "req", "-newkey", "rsa:2048", "-nodes", "-subj", "/CN=localhost", "-keyout",
       dir + "/server.key", "-out", dir + "/server.csr"},
      {"/usr/bin/openssl", "x509", "-req", "-in", dir + "/server.csr", "-CA", dir + "/ca.pem", "-CAkey",
       dir + "/ca.key", "-CAcreateserial", "-days", "2", "-extfile", dir + "/san.cnf", "-out",
       dir + "/server.pem"},
      {"/usr/bin/openssl", "req", "-newkey", "rsa:2048", "-nodes", "-subj", "/CN=operator", "-keyout",
       dir + "/client.key", "-out", dir + "/client.csr"},
      {"/usr/bin/openssl", "x509", "-req", "-in", dir + "/client.csr", "-CA", dir + "/ca.pem", "-CAkey",
       dir + "/ca.key", "-CAcreateserial", "-days", "2", "-out", dir + "/client.pem"},
  };
  for (const auto& step : steps) {
    if (RunMerged(step).first != 0) return false;
  }
  return true;
}

std::string Slurp(const std::string& path) {
  std::ifstream in(path);
  return std::string((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
}

TEST(SecurityTest, TcpNeedsTlsServesAdminOnlyAndCanRequireClientCertificates) {
  char tmpl[] = "/tmp/memd-tls-XXXXXX";
  std::string dir = mkdtemp(tmpl);
  ASSERT_TRUE(MakeCertificates(dir));
  auto [code, out] = RunMerged({MemdBinary(), "--listen", "127.0.0.1:1", "--instance",
                                 UniqueInstanceName(), "--pool", "p=1MiB"});
  EXPECT_EQ(code, 2);
  EXPECT_TRUE(Has(out, "TCP requires TLS (--tls-cert and --tls-key)")) << out;

  std::string tcp = "127.0.0.1:" + std::to_string(FreePort());
  DaemonEnv daemon({.extra_args = {"--listen", tcp, "--tls-cert", dir + "/server.pem",
                                   "--tls-key", dir + "/server.key"}});
  ASSERT_TRUE(daemon.ok());
  std::tie(code, out) = RunCommand({MemctlBinary(), "--address", tcp, "--tls-ca", dir + "/ca.pem",
                                    "stats"});
  EXPECT_EQ(code, 0) << out;
  EXPECT_TRUE(Has(out, "default")) << out;

  // Plaintext gets nowhere.
  auto plain = v1::Admin::NewStub(grpc::CreateChannel(tcp, grpc::InsecureChannelCredentials()));
  grpc::ClientContext plain_ctx;
  plain_ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(2));
  v1::GetStatsResponse stats;
  EXPECT_FALSE(plain->GetStats(&plain_ctx, v1::GetStatsRequest(), &stats).ok());

  // Memory operations need the local socket and its credentials.
  grpc::SslCredentialsOptions ssl;
  ssl.pem_root_certs = Slurp(dir + "/ca.pem");
  auto memory = v1::Memory::NewStub(grpc::CreateChannel(tcp, grpc::SslCredentials(ssl)));
  grpc::ClientContext session_ctx;
  auto stream = memory->Session(&session_ctx);
  v1::SessionRequest attach;
  attach.mutable_attach()->set_pool("default");
  v1::SessionResponse response;
  ASSERT_TRUE(stream->Write(attach) && stream->Read(&response));
  EXPECT_EQ(response.status_code(), static_cast<int>(absl::StatusCode::kPermissionDenied));
  EXPECT_TRUE(Has(response.status_message(), "memory operations need the local Unix socket"))
      << response.status_message();
  stream->WritesDone();
  stream->Finish();

  // With --tls-client-ca, a client without a certificate is turned away.
  std::string tcp2 = "127.0.0.1:" + std::to_string(FreePort());
  DaemonEnv strict({.extra_args = {"--listen", tcp2, "--tls-cert", dir + "/server.pem", "--tls-key",
                                   dir + "/server.key", "--tls-client-ca", dir + "/ca.pem"}});
  ASSERT_TRUE(strict.ok());
  std::tie(code, out) = RunCommand({MemctlBinary(), "--address", tcp2, "--tls-ca", dir + "/ca.pem",
                                    "stats"});
  EXPECT_EQ(code, 3) << out;
  std::tie(code, out) = RunCommand({MemctlBinary(), "--address", tcp2, "--tls-ca", dir + "/ca.pem",
                                    "--tls-cert", dir + "/client.pem", "--tls-key",
                                    dir + "/client.key", "stats"});
  EXPECT_EQ(code, 0) << out;
  std::filesystem::remove_all(dir);
}

TEST(SecurityTest, OnlyRootCanStartAsAnotherUser) {
  REQUIRE_ROOT();
  std::string socket = "unix:///tmp/memd-user-" + std::to_string(getpid()) + ".sock";
  auto [code, out] = RunAs(kOutsider, {}, {MemdBinary(), "--listen", socket, "--instance",
                                           UniqueInstanceName(), "--pool", "p=1MiB", "--user",
                                           std::to_string(kInsider)});
  EXPECT_EQ(code, 1) << out;
  EXPECT_TRUE(Has(out, "as root")) << out;
}

TEST(SecurityTest, DropsPrivilegesOnceThePoolsAndSocketExist) {
  REQUIRE_ROOT();
  auto daemon = std::make_unique<DaemonEnv>(DaemonOptions{
      .extra_args = {"--user", std::to_string(kServiceUser)}, .socket_in_new_dir = true});
  ASSERT_TRUE(daemon->ok());
  std::string status = Slurp("/proc/" + std::to_string(daemon->pid()) + "/status");
  EXPECT_TRUE(Has(status, "Uid:\t52005\t52005\t52005\t52005")) << status;
  EXPECT_TRUE(Has(status, "Gid:\t52005\t52005\t52005\t52005")) << status;
  std::string state = StateFilePath(daemon->instance(), "default");
  struct stat st {};
  ASSERT_EQ(stat(StateDirectoryOf(daemon->instance()).c_str(), &st), 0);
  EXPECT_EQ(st.st_uid, static_cast<uid_t>(kServiceUser)) << "the state belongs to the --user";
  EXPECT_EQ(st.st_mode & 0777, 0700u);
  ASSERT_EQ(stat(state.c_str(), &st), 0);
  EXPECT_EQ(st.st_uid, static_cast<uid_t>(kServiceUser));
  EXPECT_EQ(st.st_mode & 0777, 0600u);
  ASSERT_EQ(stat(daemon->socket_path().c_str(), &st), 0);
  EXPECT_EQ(st.st_uid, static_cast<uid_t>(kServiceUser));
  auto client = Client::Connect({.address = daemon->address()});  // root may use every pool
  ASSERT_TRUE(client.ok()) << client.status();
  EXPECT_TRUE((*client)->Allocate(100).ok());
  client->reset();
  std::string instance = daemon->instance();
  std::string socket = daemon->socket_path();
  std::optional<int> stopped = daemon->Stop(SIGTERM);  // the unprivileged daemon stops cleanly
  EXPECT_EQ(ExitCode(stopped), 0);
  EXPECT_TRUE(std::filesystem::exists(state)) << "and keeps its state for the next start";
  EXPECT_FALSE(std::filesystem::exists(socket));
  daemon.reset();
}

}  // namespace
}  // namespace memd::testing
