// Integrity: what a client, another local user or a stop could do to memd
// before pool and lane memory were sealed memfds passed over the socket
// (issue 13, cases 1, 2, 3, 5, 10, 11 and the clean-stop loss). Each test is
// the attack, run against a real daemon, and what must hold after it.
#include <fcntl.h>
#include <signal.h>
#include <sys/file.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <string>

#include <gtest/gtest.h>

#include "absl/strings/match.h"
#include "daemon_env.h"
#include "memd/client.h"
#include "memd/shared/lane.h"
#include "raw_session.h"
#include "subprocess.h"

namespace memd::testing {
namespace {

constexpr int kOutsider = 52001;  // a local user with no business with memd

// Opens, read-write, the memory object this process maps under `label`
// (/proc/self/maps shows "/memfd:<label> (deleted)"), as a client that kept
// or recovered the descriptor would hold it. -1 when not mapped.
int OpenMappedMemfd(const std::string& label) {
  std::ifstream maps("/proc/self/maps");
  std::string line;
  while (std::getline(maps, line)) {
    if (line.find("/memfd:" + label + " ") == std::string::npos) continue;
    std::string range = line.substr(0, line.find(' '));
    return ::open(("/proc/self/map_files/" + range).c_str(), O_RDWR | O_CLOEXEC);
  }
  return -1;
}

// Case 1: a client truncating its own lane killed the daemon's lane thread
// with SIGBUS. Case 2: truncating the pool killed the daemon and every client.
TEST(IntegrityTest, NoClientCanResizeThePoolOrItsLane) {
  DaemonEnv daemon;
  ASSERT_TRUE(daemon.ok());
  auto other = Client::Connect({.address = daemon.address()});
  ASSERT_TRUE(other.ok()) << other.status();
  auto kept = (*other)->Allocate(4096);
  ASSERT_TRUE(kept.ok());
  std::memset(kept->data(), 0x5a, 4096);

  auto attacker = Client::Connect({.address = daemon.address()});
  ASSERT_TRUE(attacker.ok()) << attacker.status();
  int pool = OpenMappedMemfd("memd." + daemon.instance() + ".default");
  int lane = OpenMappedMemfd(lane::LaneObjectName(daemon.instance(), (*attacker)->session_id())
                                 .substr(1));
  ASSERT_GE(pool, 0) << "the pool is a memfd the client maps";
  ASSERT_GE(lane, 0) << "the lane is a memfd the client maps";
  for (int fd : {pool, lane}) {
    EXPECT_EQ(::ftruncate(fd, 0), -1);
    EXPECT_EQ(errno, EPERM) << "sealed against shrinking";
    EXPECT_EQ(::ftruncate(fd, 1ll << 32), -1);
    EXPECT_EQ(errno, EPERM) << "sealed against growing";
    EXPECT_EQ(::fcntl(fd, F_ADD_SEALS, 0), -1) << "and the seals are final (F_SEAL_SEAL)";
    ::close(fd);
  }
  // The daemon serves the attacker (through its lane) and everyone else.
  auto zeroed = (*attacker)->Allocate(1 << 20, /*zero=*/true);
  ASSERT_TRUE(zeroed.ok()) << zeroed.status();
  EXPECT_EQ(static_cast<const uint8_t*>(zeroed->data())[(1 << 20) - 1], 0);
  EXPECT_TRUE((*other)->Allocate(100, /*zero=*/true).ok());
  EXPECT_EQ(static_cast<const uint8_t*>(kept->data())[4095], 0x5a);
  EXPECT_EQ(daemon.CheckPools(), "");
}

// Case 3: with /dev/shm full, a new lane's header write faulted and killed
// the daemon. Memory objects no longer live in /dev/shm at all.
TEST(IntegrityTest, AFullDevShmChangesNothing) {
  std::string dir = std::filesystem::temp_directory_path() /
                    ("memd-fullshm-" + std::to_string(getpid()));
  std::filesystem::create_directories(dir);
  std::string instance = UniqueInstanceName();
  std::string address = "unix://" + dir + "/memd.sock";
  // The daemon in a mount namespace of its own whose /dev/shm is a 64 KiB
  // tmpfs filled to the last byte.
  Subprocess memd({"/usr/bin/unshare", "-m", "--propagation", "private", "/bin/sh", "-c",
                   "mount -t tmpfs -o size=64k tmpfs /dev/shm && "
                   "head -c 1048576 /dev/zero > /dev/shm/fill 2>/dev/null; exec \"$0\" \"$@\"",
                   MemdBinary(), "--listen", address, "--instance", instance, "--pool",
                   "default=8MiB", "--state-dir", dir + "/state"});
  ASSERT_TRUE(WaitFor([&] { return SocketAccepts(dir + "/memd.sock"); },
                      std::chrono::seconds(10)));
  for (int i = 0; i < 20; ++i) {  // each with a lane of its own
    auto client = Client::Connect({.address = address});
    ASSERT_TRUE(client.ok()) << client.status();
    auto buffer = (*client)->Allocate(64 << 10, /*zero=*/true);
    ASSERT_TRUE(buffer.ok()) << buffer.status();
  }
  EXPECT_EQ(::kill(memd.pid(), 0), 0) << "the daemon is alive";
  memd.Kill(SIGTERM);
  EXPECT_EQ(ExitCode(memd.Wait()), 0);
  std::filesystem::remove_all(dir);
}

// Case 5: objects another uid planted under the pool's old names were
// adopted, and that uid read every frame. Case 11: the same uid flocking the
// old lock name kept memd from starting.
TEST(IntegrityTest, ObjectsPlantedInDevShmAreNeverAdoptedAndCannotBlockTheStart) {
  std::string instance = UniqueInstanceName();
  std::string planted = "/dev/shm/memd." + instance + ".default";
  std::string lock_name = "/dev/shm/memd." + instance + ".daemon.lock";
  // The outsider plants the pool, its state and the lock, and holds the lock.
  const std::string script =
      "import fcntl, os, sys, time\n"
      "os.umask(0)\n"
      "open(sys.argv[1], 'wb').write(bytes(8 << 20))\n"
      "open(sys.argv[1] + '.state', 'wb').close()\n"
      "lock = open(sys.argv[2], 'w')\n"
      "fcntl.flock(lock, fcntl.LOCK_EX)\n"
      "print('held', flush=True)\n"
      "time.sleep(60)\n";
  Subprocess squatter(AsUid(kOutsider, {"/usr/bin/python3", "-c", script, planted, lock_name}));
  ASSERT_EQ(squatter.ReadLine().value_or(""), "held");
  ASSERT_TRUE(WaitFor([&] { return std::filesystem::exists(lock_name); }));
  DaemonEnv daemon({.pools = {"default=8MiB"}, .instance = instance});
  ASSERT_TRUE(daemon.ok()) << "a lock another uid holds in /dev/shm is not memd's";
  auto client = Client::Connect({.address = daemon.address()});
  ASSERT_TRUE(client.ok()) << client.status();
  auto frame = (*client)->Allocate(1 << 20);
  ASSERT_TRUE(frame.ok());
  std::memset(frame->data(), 0xab, 1 << 20);
  // What the outsider maps is its own file: no frame byte ever lands there.
  auto [code, out] =
      RunCommand(AsUid(kOutsider, {"/bin/sh", "-c", "tr -d '\\000' < " + planted + " | wc -c"}));
  EXPECT_EQ(code, 0);
  EXPECT_EQ(std::stoi(out), 0) << "the planted object holds only its own zeros";
  struct stat st {};
  ASSERT_EQ(::stat(planted.c_str(), &st), 0);
  EXPECT_EQ(st.st_uid, static_cast<uid_t>(kOutsider)) << "untouched";
  squatter.Kill(SIGKILL);
  squatter.Wait();
  std::filesystem::remove(planted);
  std::filesystem::remove(planted + ".state");
  std::filesystem::remove(lock_name);
}

// The private state directory: another uid's directory (or one others may
// write) is refused, never used.
TEST(IntegrityTest, AStateDirectoryOfAnotherUserIsRefusedNamingIt) {
  std::string root = std::filesystem::temp_directory_path() /
                     ("memd-squat-" + std::to_string(getpid()));
  std::string instance = UniqueInstanceName();
  std::filesystem::create_directories(root + "/" + instance);
  ASSERT_EQ(::chown((root + "/" + instance).c_str(), kOutsider, kOutsider), 0);
  auto [code, out] = RunCommand({MemdBinary(), "--listen", "unix://" + root + "/memd.sock",
                                 "--instance", instance, "--pool", "default=1MiB", "--state-dir",
                                 root});
  EXPECT_EQ(code, 1) << out;
  EXPECT_TRUE(absl::StrContains(out, "belongs to uid 52001")) << out;
  EXPECT_TRUE(absl::StrContains(out, root + "/" + instance)) << out;
  ASSERT_EQ(::chown((root + "/" + instance).c_str(), 0, 0), 0);
  ASSERT_EQ(::chmod((root + "/" + instance).c_str(), 0777), 0);
  std::tie(code, out) = RunCommand({MemdBinary(), "--listen", "unix://" + root + "/memd.sock",
                                    "--instance", instance, "--pool", "default=1MiB",
                                    "--state-dir", root});
  EXPECT_EQ(code, 1) << out;
  EXPECT_TRUE(absl::StrContains(out, "others may write in it")) << out;
  std::filesystem::remove_all(root);
}

// Case 10: 300 connections that never send a byte exhausted the daemon's
// descriptors and `memctl health` failed. Silent connections are closed after
// the handshake timeout, one uid's open connections are bounded, and root's
// health check gets through meanwhile.
TEST(IntegrityTest, IdleConnectionsAreClosedAndCannotStarveHealth) {
  DaemonEnv daemon({.extra_args = {"--socket-mode", "0666"}});
  ASSERT_TRUE(daemon.ok());
  const std::string script =
      "import socket, sys, time\n"
      "socks = []\n"
      "for _ in range(300):\n"
      "    s = socket.socket(socket.AF_UNIX); s.connect(sys.argv[1]); socks.append(s)\n"
      "print('opened', flush=True)\n"
      "time.sleep(8)\n"
      "closed = 0\n"
      "for s in socks:\n"
      "    s.settimeout(0.5)\n"
      "    try:\n"
      "        closed += s.recv(1) == b''\n"
      "    except (socket.timeout, OSError) as e:\n"
      "        closed += not isinstance(e, socket.timeout)\n"
      "print('closed', closed, flush=True)\n";
  Subprocess idle(AsUid(kOutsider, {"/usr/bin/python3", "-c", script, daemon.socket_path()}));
  std::string line = idle.ReadLine(std::chrono::seconds(10)).value_or("<nothing>");
  ASSERT_EQ(line, "opened");
  auto [code, out] = RunCommand({MemctlBinary(), "--address", daemon.address(), "health"});
  EXPECT_EQ(code, 0) << "health while 300 idle connections are open: " << out;
  line = idle.ReadLine(std::chrono::seconds(20)).value_or("<nothing>");
  EXPECT_EQ(line, "closed 300") << "every silent connection is closed by the daemon";
  EXPECT_EQ(ExitCode(idle.Wait()), 0);
  auto client = Client::Connect({.address = daemon.address()});
  ASSERT_TRUE(client.ok()) << client.status();
}

// The clean-stop loss: SIGTERM (systemctl restart, a rolling update) removed
// every pool. Now a stop and a start, of this build or a newer one, keep
// every buffer: its bytes, its handle, and its holders.
TEST(IntegrityTest, ACleanStopAndStartKeepsEveryBuffer) {
  DaemonEnv daemon({.pools = {"default=8MiB"}, .instance = UniqueInstanceName()});
  ASSERT_TRUE(daemon.ok());
  Subprocess holder({TestClientBinary(), "hold", "3", "65536", "77"}, daemon.ClientEnv());
  std::vector<uint64_t> handles = ReadHandles(holder);
  ASSERT_EQ(handles.size(), 3u);
  std::optional<int> stopped = daemon.Stop(SIGTERM);
  EXPECT_EQ(ExitCode(stopped), 0);
  ASSERT_TRUE(daemon.Restart());
  // The holder reconnects, hands the memory back and reclaims its references.
  ASSERT_TRUE(WaitFor([&] {
    v1::PoolStats s = daemon.PoolStats();
    return s.sessions() == 1 && s.unclaimed_references() == 0 && s.live_buffers() == 3;
  }, std::chrono::seconds(15))) << daemon.PoolStats().DebugString();
  for (uint64_t handle : handles) {
    auto [code, out] = RunCommand({TestClientBinary(), "check", std::to_string(handle), "65536",
                                   "77", "78"}, daemon.ClientEnv());
    EXPECT_EQ(code, 0) << out;
  }
  EXPECT_EQ(daemon.CheckPools(), "");
}

// Case 6: after a restart, any uid could reclaim another's unclaimed
// reference by its handle (which `memctl buffers` shows) and so take it from
// its holder. Now a reference goes back only to a session proving the
// ticket of the session that held it, which only that session's stream got.
TEST(IntegrityTest, AfterARestartAReferenceGoesBackOnlyToTheProcessThatHeldIt) {
  DaemonEnv daemon({.pools = {"default=8MiB"}, .extra_args = {"--reclaim-grace", "60s"},
                    .instance = UniqueInstanceName()});
  ASSERT_TRUE(daemon.ok());
  Subprocess victim({TestClientBinary(), "hold", "1", "4096", "55"}, daemon.ClientEnv());
  std::vector<uint64_t> handles = ReadHandles(victim);
  ASSERT_EQ(handles.size(), 1u);
  // Another client of the pool: it hands the memory back after the restart.
  auto giver = Client::Connect({.address = daemon.address(), .outage_wait_ms = 10000});
  ASSERT_TRUE(giver.ok()) << giver.status();
  auto own = (*giver)->Allocate(64);
  ASSERT_TRUE(own.ok()) << own.status();
  victim.Kill(SIGSTOP);  // it comes back once the thief has tried
  daemon.Stop(SIGKILL);
  ASSERT_TRUE(daemon.Restart());
  auto after = (*giver)->Allocate(64);  // reconnects, hands the memory back, reclaims its own
  ASSERT_TRUE(after.ok()) << after.status();
  ASSERT_EQ(daemon.PoolStats().unclaimed_references(), 1u) << "the victim's reference";

  RawSession thief(daemon.address());
  ASSERT_EQ(thief.Attach("default").status_code(), 0);
  for (const std::string& ticket : {std::string(), std::string(16, '\0'), std::string(16, 'x')}) {
    v1::SessionRequest steal;
    steal.mutable_reclaim()->set_ticket(ticket);
    steal.mutable_reclaim()->set_last_batch(true);
    v1::HeldReference* held = steal.mutable_reclaim()->add_held();
    held->set_handle(handles[0]);
    held->set_references(1);
    v1::SessionResponse r = thief.Call(steal);
    EXPECT_EQ(r.status_code(), 0) << r.status_message();
    EXPECT_EQ(r.reclaim().reclaimed_size(), 0) << "nothing granted to a ticket of size "
                                               << ticket.size();
  }
  EXPECT_EQ(daemon.PoolStats().unclaimed_references(), 1u) << "still the victim's";

  victim.Kill(SIGCONT);
  ASSERT_TRUE(WaitFor([&] { return daemon.PoolStats().unclaimed_references() == 0; },
                      std::chrono::seconds(20)))
      << daemon.PoolStats().DebugString();
  auto [code, out] = RunCommand({TestClientBinary(), "check", std::to_string(handles[0]), "4096",
                                 "55", "56"}, daemon.ClientEnv());
  EXPECT_EQ(code, 0) << out;
  EXPECT_EQ(daemon.CheckPools(), "");
}

// A restarted daemon whose pool held no live buffer starts it in new memory
// at once; a client that held nothing continues in it at the same address
// rather than being lost for good.
TEST(IntegrityTest, AClientHoldingNothingContinuesInThePoolsNewMemory) {
  DaemonEnv daemon({.pools = {"default=8MiB"}, .instance = UniqueInstanceName()});
  ASSERT_TRUE(daemon.ok());
  auto idle = Client::Connect({.address = daemon.address(), .outage_wait_ms = 10000});
  ASSERT_TRUE(idle.ok()) << idle.status();
  {
    auto passing = (*idle)->Allocate(4096);
    ASSERT_TRUE(passing.ok());
  }  // released: the process holds nothing
  daemon.Stop(SIGKILL);
  ASSERT_TRUE(daemon.Restart());
  auto buffer = (*idle)->Allocate(4096, /*zero=*/true);
  ASSERT_TRUE(buffer.ok()) << buffer.status();
  std::memset(buffer->data(), 0x6b, 4096);
  // Another process sees the bytes: the idle client writes into the pool's
  // new memory, not into the old one.
  auto [code, out] = RunCommand({TestClientBinary(), "check", std::to_string(buffer->handle()),
                                 "4096", "107", "108"}, daemon.ClientEnv());
  EXPECT_EQ(code, 0) << out;
  EXPECT_EQ(static_cast<const uint8_t*>(buffer->data())[0], 108);
}

}  // namespace
}  // namespace memd::testing
