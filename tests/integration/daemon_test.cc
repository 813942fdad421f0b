// The memd process itself: flags, shared-memory objects, sockets, restarts.
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>

#include <filesystem>

#include "absl/strings/match.h"
#include <gtest/gtest.h>

#include "daemon_env.h"
#include "memd/client.h"

namespace memd::testing {
namespace {


TEST(DaemonTest, BadFlagsExitWithCode2AndAMessage) {
  const std::vector<std::vector<std::string>> bad = {
      {"--pool", "novalue"},          {"--pool", "x=12XB"},      {"--pool", "a.b=1MiB"},
      {"--alignment", "48"},          {"--alignment", "0"},      {"--pool", "p=1MiB", "--pool", "p=2MiB"},
      {"--listen", "nonsense"},       {"--unknown-flag"},        {"--instance", "bad/name"},
      {"--max-alloc", "0"},           {"--log-level", "loud"},   {"--socket-mode", "999"},
      {"--reclaim-grace", "soon"},    {"--reclaim-grace", "-1s"}, {"--reclaim-grace", "25h"},
      {"--pool", "p=1MiB,color=red"}, {"--pool", "p=1MiB,mode=999"}, {"--pool", "p=1MiB,session-bytes=x"},
      {"--user", "no-such-user-memd"}, {"--admin-group", "no-such-group-memd"},
      {"--listen", "127.0.0.1:5000"}, {"--tls-cert", "/x.pem"},
  };
  for (auto args : bad) {
    args.insert(args.begin(), MemdBinary());
    auto [code, out] = RunCommand(args);
    EXPECT_EQ(code, 2) << args[1] << " " << (args.size() > 2 ? args[2] : "");
  }
  auto [code, out] = RunCommand({MemdBinary(), "--help"});
  EXPECT_EQ(code, 0);
  for (const char* flag : {"--listen", "--pool", "--instance", "--alignment", "--max-alloc", "--log-level"}) {
    EXPECT_NE(out.find(flag), std::string::npos) << flag;
  }
}

TEST(DaemonTest, NamesNoObjectAnyoneCanOpenAndKeepsPrivateStateAcrossSigterm) {
  auto daemon = std::make_unique<DaemonEnv>(DaemonOptions{.pools = {"a=1MiB", "b=2MiB"}});
  ASSERT_TRUE(daemon->ok());
  std::string instance = daemon->instance();
  for (const auto& entry : std::filesystem::directory_iterator("/dev/shm")) {
    EXPECT_FALSE(absl::StartsWith(entry.path().filename().string(), "memd." + instance + "."))
        << "pool memory is a memfd passed over the socket, never a name: " << entry.path();
  }
  struct stat st {};
  // The private state: a 0700 directory of the daemon's user, 0600 tables.
  ASSERT_EQ(lstat(StateDirectoryOf(instance).c_str(), &st), 0);
  EXPECT_TRUE(S_ISDIR(st.st_mode));
  EXPECT_EQ(st.st_mode & 0777, 0700u);
  EXPECT_EQ(st.st_uid, geteuid());
  ASSERT_EQ(stat(StateFilePath(instance, "a").c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);
  ASSERT_EQ(stat(daemon->socket_path().c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0660u);
  std::optional<int> status = daemon->Stop(SIGTERM);
  ASSERT_TRUE(status && WIFEXITED(*status));
  EXPECT_EQ(WEXITSTATUS(*status), 0);
  EXPECT_TRUE(std::filesystem::exists(StateFilePath(instance, "a")))
      << "a clean stop keeps the state, so a restart re-adopts every buffer";
  EXPECT_TRUE(std::filesystem::exists(StateFilePath(instance, "b")));
  EXPECT_FALSE(std::filesystem::exists(daemon->socket_path()));
}

TEST(DaemonTest, RestartAfterKill9LeavesOtherInstancesAlone) {
  DaemonEnv other;  // another instance on the same machine
  ASSERT_TRUE(other.ok());
  auto other_client = Client::Connect({.address = other.address()});
  ASSERT_TRUE(other_client.ok());
  auto kept = (*other_client)->Allocate(100);
  ASSERT_TRUE(kept.ok());
  DaemonEnv daemon({.pools = {"default=1MiB"}, .instance = UniqueInstanceName()});
  ASSERT_TRUE(daemon.ok());
  daemon.Stop(SIGKILL);
  ASSERT_TRUE(std::filesystem::exists(StateFilePath(daemon.instance(), "default")))
      << "kill -9 leaves the state";
  ASSERT_TRUE(daemon.Restart()) << "a predecessor's state and socket must not block a restart";
  EXPECT_EQ(other.PoolStats().live_buffers(), 1u);
  EXPECT_TRUE((*other_client)->Allocate(100).ok());
}

TEST(DaemonTest, RefusesToStealALiveDaemonsSocket) {
  DaemonEnv daemon;
  ASSERT_TRUE(daemon.ok());
  auto [code, out] = RunCommand({MemdBinary(), "--listen", daemon.address(), "--instance",
                                 UniqueInstanceName(), "--pool", "p=1MiB"});
  EXPECT_EQ(code, 1);
  EXPECT_EQ(daemon.Stats().pools_size(), 1) << "the first daemon still serves";
}

TEST(DaemonTest, RefusesToStartWhenShmCannotHoldThePools) {
  auto [code, out] = RunCommand({MemdBinary(), "--listen", "unix:///tmp/memd-noroom-" +
                                 std::to_string(getpid()) + ".sock", "--instance",
                                 UniqueInstanceName(), "--pool", "huge=64TiB,alignment=1MiB"});
  EXPECT_EQ(code, 1);
}

TEST(DaemonTest, TwoInstancesCoexistWithTheSamePoolNames) {
  DaemonEnv first({.pools = {"video=1MiB"}});
  DaemonEnv second({.pools = {"video=2MiB"}});
  ASSERT_TRUE(first.ok() && second.ok());
  EXPECT_EQ(first.PoolStats("video").size_bytes(), 1u << 20);
  EXPECT_EQ(second.PoolStats("video").size_bytes(), 2u << 20);
}

TEST(DaemonTest, AttachToUnknownPoolIsNotFoundNamingThePools) {
  DaemonEnv daemon({.pools = {"video=1MiB", "audio=1MiB"}});
  ASSERT_TRUE(daemon.ok());
  auto client = Client::Connect({.address = daemon.address(), .pool = "nope"});
  ASSERT_FALSE(client.ok());
  EXPECT_EQ(client.status().code(), absl::StatusCode::kNotFound);
  EXPECT_NE(client.status().message().find("video, audio"), absl::string_view::npos);
}

}  // namespace
}  // namespace memd::testing
