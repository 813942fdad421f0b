// Clients started before the daemon, or while it restarts, wait for it up to
// their connect timeout (ConnectOptions::connect_timeout_ms,
// $MEMD_CONNECT_TIMEOUT), and fail after it naming the address and timeout.
#include <filesystem>
#include <thread>

#include <gtest/gtest.h>

#include "daemon_env.h"
#include "memd/client.h"

namespace memd::testing {
namespace {

TEST(ConnectTest, AClientStartedBeforeTheDaemonWaitsForItAndAttaches) {
  DaemonEnv daemon;
  ASSERT_TRUE(daemon.ok());
  daemon.Stop();
  ASSERT_FALSE(std::filesystem::exists(daemon.socket_path())) << "no daemon, no socket";

  // A real client process through the C API, its timeout from the environment.
  auto env = daemon.ClientEnv();
  env["MEMD_CONNECT_TIMEOUT"] = "30s";
  Subprocess client({TestClientBinary(), "probe", "/memd-connect-test-none"}, env);
  std::this_thread::sleep_for(std::chrono::seconds(2));
  EXPECT_EQ(client.ReadLine(std::chrono::milliseconds(0)), std::nullopt)
      << "the client is still waiting, not failed";

  ASSERT_TRUE(daemon.Restart());
  EXPECT_EQ(client.ReadLine(std::chrono::seconds(30)), "attach 0 ");
  client.ReadLine();  // the shm_open probe: not this test's subject
  EXPECT_EQ(client.ReadLine(), "alloc ok");
  client.CloseStdin();
  EXPECT_EQ(ExitCode(client.Wait()), 0);
}

TEST(ConnectTest, WithoutADaemonConnectFailsAfterItsTimeoutNamingAddressAndTimeout) {
  std::string address = "unix:///tmp/memd-connect-test-" + UniqueInstanceName() + ".sock";
  auto client = Client::Connect({.address = address, .connect_timeout_ms = 1500});
  ASSERT_FALSE(client.ok());
  EXPECT_EQ(client.status().code(), absl::StatusCode::kUnavailable) << client.status();
  EXPECT_NE(client.status().message().find(address), std::string::npos) << client.status();
  EXPECT_NE(client.status().message().find("connect timeout of 1.5s"), std::string::npos)
      << client.status();
}

TEST(ConnectTest, TheEnvironmentTimeoutTakesUnitsAndABadOneIsRefusedNamingIt) {
  std::string address = "unix:///tmp/memd-connect-test-" + UniqueInstanceName() + ".sock";
  std::map<std::string, std::string> env = {{"MEMD_ADDRESS", address},
                                            {"MEMD_CONNECT_TIMEOUT", "300ms"}};
  Subprocess waited({TestClientBinary(), "probe", "/memd-connect-test-none"}, env);
  std::optional<std::string> line = waited.ReadLine(std::chrono::seconds(30));
  ASSERT_TRUE(line.has_value());
  EXPECT_EQ(line->rfind("attach -111 ", 0), 0u) << *line;  // -ECONNREFUSED
  EXPECT_NE(line->find("connect timeout of 300ms"), std::string::npos) << *line;
  EXPECT_NE(line->find(address), std::string::npos) << *line;
  waited.CloseStdin();
  waited.Wait();

  env["MEMD_CONNECT_TIMEOUT"] = "soon";
  Subprocess refused({TestClientBinary(), "probe", "/memd-connect-test-none"}, env);
  line = refused.ReadLine(std::chrono::seconds(30));
  ASSERT_TRUE(line.has_value());
  EXPECT_EQ(line->rfind("attach -22 ", 0), 0u) << *line;  // -EINVAL
  EXPECT_NE(line->find("MEMD_CONNECT_TIMEOUT 'soon'"), std::string::npos) << *line;
  refused.CloseStdin();
  refused.Wait();
}

TEST(ConnectTest, ABadLaneSpinIsRefusedNamingItAndTheLimit) {
  std::string address = "unix:///tmp/memd-connect-test-" + UniqueInstanceName() + ".sock";
  for (const char* bad : {"2ms", "fast"}) {
    Subprocess refused({TestClientBinary(), "probe", "/memd-connect-test-none"},
                       {{"MEMD_ADDRESS", address}, {"MEMD_LANE_SPIN", bad}});
    std::optional<std::string> line = refused.ReadLine(std::chrono::seconds(30));
    ASSERT_TRUE(line.has_value());
    EXPECT_EQ(line->rfind("attach -22 ", 0), 0u) << *line;  // -EINVAL, before any connection
    EXPECT_NE(line->find(std::string("MEMD_LANE_SPIN '") + bad + "'"), std::string::npos) << *line;
    EXPECT_NE(line->find("from 0s to 1ms"), std::string::npos) << *line;
    refused.CloseStdin();
    refused.Wait();
  }
}

}  // namespace
}  // namespace memd::testing
