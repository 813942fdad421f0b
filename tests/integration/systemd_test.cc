// memd under systemd, tested without a running systemd: the installed units
// verify, memd serves on a socket systemd-socket-activate passes and leaves it
// in place, a NOTIFY_SOCKET listener sees READY/RELOADING/STOPPING and the
// pool memfds memd stores (FDSTORE=1), a restart given those memfds back keeps
// a buffer with no client to hand the memory over, and memd runs under the
// unit's hardening (every syscall in its filter, no W+X memory, no other
// socket family, no capability, its own uid).
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <regex>
#include <set>
#include <sstream>

#include <gtest/gtest.h>

#include "daemon_env.h"
#include "memd/client.h"
#include "memd/shared/unique_fd.h"
#include "net.h"
#include "unit_file.h"
#include "status_text.h"

namespace memd::testing {
namespace {

using ::memd::testing_support::Has;

namespace fs = std::filesystem;

// The configured units, as `cmake --install` installs them.
std::string ConfiguredUnit(const std::string& name) {
  return ReadText(std::string(MEMD_BINARY_DIR) + "/deploy/systemd/" + name);
}

// A temporary directory, removed at scope end.
struct TempDir {
  std::string path;
  TempDir() {
    char tmpl[] = "/tmp/memd-systemd-XXXXXX";
    path = ::mkdtemp(tmpl);
  }
  ~TempDir() {
    std::error_code ignored;
    fs::remove_all(path, ignored);
  }
};

// A NOTIFY_SOCKET: the datagrams memd sends, with the descriptors they carry.
class NotifyListener {
 public:
  struct Message {
    std::string text;
    std::vector<UniqueFd> fds;
  };
  explicit NotifyListener(const std::string& path) : path_(path) {
    fd_ = UniqueFd(::socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0));
    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    std::snprintf(addr.sun_path, sizeof(addr.sun_path), "%s", path.c_str());
    ok_ = ::bind(fd_.get(), reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) == 0;
  }
  bool ok() const { return ok_; }
  // The next datagram whose text contains `part` (earlier ones are kept in
  // seen()); nullopt after 10 s without one.
  std::optional<Message> WaitFor(const std::string& part) {
    auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
    while (std::chrono::steady_clock::now() < deadline) {
      pollfd p{fd_.get(), POLLIN, 0};
      if (::poll(&p, 1, 100) <= 0) continue;
      char data[4096];
      alignas(cmsghdr) char control[CMSG_SPACE(sizeof(int) * 16)];
      iovec iov{data, sizeof(data)};
      msghdr msg{};
      msg.msg_iov = &iov;
      msg.msg_iovlen = 1;
      msg.msg_control = control;
      msg.msg_controllen = sizeof(control);
      ssize_t n = ::recvmsg(fd_.get(), &msg, MSG_CMSG_CLOEXEC);
      if (n < 0) continue;
      Message m{std::string(data, static_cast<size_t>(n)), {}};
      for (cmsghdr* c = CMSG_FIRSTHDR(&msg); c != nullptr; c = CMSG_NXTHDR(&msg, c)) {
        if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS) continue;
        size_t count = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
        for (size_t i = 0; i < count; ++i) {
          int fd;
          std::memcpy(&fd, CMSG_DATA(c) + i * sizeof(int), sizeof(int));
          m.fds.emplace_back(fd);
        }
      }
      seen_.push_back(m.text);
      if (Has(m.text, part)) return m;
    }
    return std::nullopt;
  }
  std::string seen() const {
    std::string all;
    for (const auto& t : seen_) all += "[" + t + "] ";
    return all;
  }

 private:
  std::string path_;
  UniqueFd fd_;
  bool ok_ = false;
  std::vector<std::string> seen_;
};

std::vector<std::string> MemdArgs(const std::string& socket, const std::string& instance) {
  return {MemdBinary(), "--listen", "unix://" + socket, "--instance", instance, "--pool",
          "default=8MiB", "--log-level", "warn"};
}

// Removes an instance's private state (root's default state directory).
struct StateRemovedAtEnd {
  std::string instance;
  ~StateRemovedAtEnd() {
    std::error_code ignored;
    fs::remove_all(StateDirectoryOf(instance), ignored);
  }
};

TEST(SystemdTest, InstalledUnitsVerifyAndFollowTheInstallPrefix) {
  std::string service = ConfiguredUnit("memd.service");
  std::string socket = ConfiguredUnit("memd.socket");
  ASSERT_FALSE(service.empty() || socket.empty()) << "configured units in " << MEMD_BINARY_DIR;
  std::string exec = UnitSetting(service, "ExecStart");
  std::string installed_memd = std::string(MEMD_INSTALL_BINDIR) + "/memd ";
  ASSERT_EQ(exec.rfind(installed_memd, 0), 0u) << exec << " does not start " << installed_memd;
  EXPECT_EQ(UnitSetting(service, "Type"), "notify");
  EXPECT_EQ(UnitSetting(service, "ExecReload"), "/bin/kill -HUP $MAINPID");
  EXPECT_EQ(UnitSetting(service, "User"), "memd");
  EXPECT_NE(UnitSetting(service, "FileDescriptorStoreMax"), "");
  EXPECT_EQ(UnitSetting(service, "Requires"), "memd.socket");
  // memd takes the socket whose path is its --listen address.
  EXPECT_TRUE(Has(exec, "--listen unix://" + UnitSetting(socket, "ListenStream") + " ")) << exec;

  TempDir dir;
  std::string unit = service;
  unit.replace(unit.find(installed_memd), installed_memd.size() - 1, MemdBinary());
  std::ofstream(dir.path + "/memd.service") << unit;
  std::ofstream(dir.path + "/memd.socket") << socket;
  auto [code, out] = RunCommand({"/bin/sh", "-c", "systemd-analyze verify " + dir.path +
                                                      "/memd.socket " + dir.path +
                                                      "/memd.service 2>&1"});
  EXPECT_EQ(code, 0) << out;
  EXPECT_EQ(out, "") << "no warnings either";
  // The check can fail: an unknown key is reported.
  std::ofstream(dir.path + "/memd.service", std::ios::app) << "NoSuchKey=1\n";
  auto [bad_code, bad_out] = RunCommand(
      {"/bin/sh", "-c", "systemd-analyze verify " + dir.path + "/memd.service 2>&1"});
  EXPECT_TRUE(Has(bad_out, "NoSuchKey")) << bad_out;

  // The sysusers.d entry makes the unit's user and group.
  fs::create_directories(dir.path + "/etc");
  auto [users_code, users_out] = RunCommand(
      {"/bin/sh", "-c", "systemd-sysusers --root=" + dir.path + " " + MEMD_SOURCE_DIR +
                            "/deploy/systemd/memd.sysusers 2>&1"});
  EXPECT_EQ(users_code, 0) << users_out;
  EXPECT_TRUE(Has(ReadText(dir.path + "/etc/passwd"), "\nmemd:") ||
              ReadText(dir.path + "/etc/passwd").rfind("memd:", 0) == 0)
      << ReadText(dir.path + "/etc/passwd");
  EXPECT_TRUE(Has(ReadText(dir.path + "/etc/group"), "memd:")) << ReadText(dir.path + "/etc/group");
}

TEST(SystemdTest, MemdServesOnTheSocketSystemdPassesAndLeavesItThere) {
  TempDir dir;
  std::string socket = dir.path + "/memd.sock";
  std::string instance = UniqueInstanceName();
  StateRemovedAtEnd state{instance};
  std::vector<std::string> argv = {"/usr/bin/systemd-socket-activate", "-l", socket};
  for (const std::string& arg : MemdArgs(socket, instance)) argv.push_back(arg);
  Subprocess daemon(argv);
  ASSERT_TRUE(WaitFor([&] { return fs::exists(socket); }));
  struct stat before {};
  ASSERT_EQ(::stat(socket.c_str(), &before), 0);

  auto client = Client::Connect({.address = "unix://" + socket, .connect_timeout_ms = 10'000});
  ASSERT_TRUE(client.ok()) << client.status();
  ASSERT_TRUE((*client)->Allocate(4096).ok());
  client->reset();

  daemon.Kill(SIGTERM);
  EXPECT_EQ(ExitCode(daemon.Wait()), 0);
  struct stat after {};
  ASSERT_EQ(::stat(socket.c_str(), &after), 0) << "memd unlinked the socket systemd owns";
  EXPECT_EQ(after.st_ino, before.st_ino) << "the very socket systemd bound";
}

// Starts memd with `fd` as systemd passes a stored descriptor: fd 3,
// $LISTEN_FDS=1, $LISTEN_FDNAMES=`name`, $LISTEN_PID its own pid.
pid_t StartWithStoredFd(const std::vector<std::string>& memd, int fd, const std::string& name,
                        const std::string& notify_socket) {
  std::string command = "LISTEN_PID=$$ LISTEN_FDS=1 LISTEN_FDNAMES=" + name +
                        " NOTIFY_SOCKET=" + notify_socket + " exec";
  for (const std::string& arg : memd) command += " " + arg;
  pid_t pid = ::fork();
  if (pid == 0) {
    ::dup2(fd, 3);  // dup2 clears close-on-exec
    ::execl("/bin/sh", "sh", "-c", command.c_str(), nullptr);
    ::_exit(127);
  }
  return pid;
}

TEST(SystemdTest, NotifyReportsEachStateAndTheStoredMemoryKeepsABufferWithNoClientToHandItBack) {
  TempDir dir;
  std::string socket = dir.path + "/memd.sock";
  std::string instance = UniqueInstanceName();
  StateRemovedAtEnd state{instance};
  NotifyListener notify(dir.path + "/notify");
  ASSERT_TRUE(notify.ok());
  std::vector<std::string> memd = MemdArgs(socket, instance);
  auto daemon = std::make_unique<Subprocess>(
      memd, std::map<std::string, std::string>{{"NOTIFY_SOCKET", dir.path + "/notify"}});

  std::optional<NotifyListener::Message> stored = notify.WaitFor("FDSTORE=1");
  ASSERT_TRUE(stored.has_value()) << notify.seen();
  EXPECT_TRUE(Has(stored->text, "FDNAME=pool.default")) << stored->text;
  ASSERT_EQ(stored->fds.size(), 1u);
  struct stat st {};
  ASSERT_EQ(::fstat(stored->fds[0].get(), &st), 0);
  EXPECT_EQ(st.st_size, 8 << 20) << "the pool's memfd";
  EXPECT_TRUE(::fcntl(stored->fds[0].get(), F_GET_SEALS) & F_SEAL_SHRINK);
  std::optional<NotifyListener::Message> ready = notify.WaitFor("READY=1");
  ASSERT_TRUE(ready.has_value()) << notify.seen();
  EXPECT_TRUE(Has(ready->text, "STATUS=instance '" + instance + "' serving on unix://" + socket))
      << ready->text;

  std::map<std::string, std::string> env = {{"MEMD_ADDRESS", "unix://" + socket}};
  Subprocess holder({TestClientBinary(), "hold", "1", "65536", "93"}, env);
  std::vector<uint64_t> handles = ReadHandles(holder);
  ASSERT_EQ(handles.size(), 1u);

  daemon->Kill(SIGHUP);
  EXPECT_TRUE(notify.WaitFor("RELOADING=1").has_value()) << notify.seen();
  EXPECT_TRUE(notify.WaitFor("READY=1").has_value()) << notify.seen();
  daemon->Kill(SIGTERM);
  EXPECT_TRUE(notify.WaitFor("STOPPING=1").has_value()) << notify.seen();
  EXPECT_EQ(ExitCode(daemon->Wait()), 0);

  // The holder cannot hand the memory back (stopped); only the store can.
  ::kill(holder.pid(), SIGSTOP);
  pid_t restarted =
      StartWithStoredFd(memd, stored->fds[0].get(), "pool.default", dir.path + "/notify");
  ASSERT_TRUE(notify.WaitFor("READY=1").has_value()) << notify.seen();
  env["MEMD_CONNECT_TIMEOUT"] = "0";  // a pending pool would answer UNAVAILABLE
  auto [code, out] = RunCommand(
      {TestClientBinary(), "check", std::to_string(handles[0]), "65536", "93", "94"}, env);
  EXPECT_EQ(code, 0) << out;
  EXPECT_TRUE(Has(out, "ok")) << "the buffer survived in the stored memory: " << out;

  ::kill(holder.pid(), SIGCONT);
  holder.CloseStdin();
  EXPECT_EQ(ExitCode(holder.Wait()), 0);
  ::kill(restarted, SIGTERM);
  int status = 0;
  ASSERT_EQ(::waitpid(restarted, &status, 0), restarted);
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << status;
}

// When stdout is the journal stream systemd connected ($JOURNAL_STREAM names
// its device and inode), each line starts with its syslog priority; a
// redirected stdout (the variable inherited, the inode another) keeps the
// usual timestamped lines.
TEST(SystemdTest, LogLinesCarryTheirPriorityWhenStdoutIsTheJournal) {
  TempDir dir;
  std::string log = dir.path + "/log";
  auto run = [&](bool journal) {
    // A start that fails (a pool far larger than memory; at 1 MiB alignment
    // the allocator's limit of 2^32 - 1 units does not refuse it first)
    // logs at critical.
    std::string command = "exec > \"$0\"; " +
                          std::string(journal ? "JOURNAL_STREAM=$(stat -c %d:%i \"$0\")"
                                              : "JOURNAL_STREAM=1:1") +
                          " exec \"$1\" --listen unix://\"$2\"/memd.sock --instance \"$3\""
                          " --pool default=1000TiB,alignment=1MiB";
    std::string instance = UniqueInstanceName();
    StateRemovedAtEnd state{instance};
    RunCommand({"/bin/sh", "-c", command, log, MemdBinary(), dir.path, instance});
    return ReadText(log);
  };
  std::string journal = run(true);
  EXPECT_EQ(journal.rfind("<2>[critical] cannot start: ", 0), 0u) << journal;
  std::string plain = run(false);
  EXPECT_EQ(plain.find("<2>"), std::string::npos) << plain;
  EXPECT_TRUE(Has(plain, "[critical] cannot start: ")) << plain;
}

// D13 (docs/errors.md): memory the descriptor store passes back that is not
// the object the pool's state table records (here another sealed memfd of the
// same size) is refused with a warning naming both objects and changes
// nothing: the foreign memory is neither used nor written, the pool stays
// pending (E36), and the client that holds the real memory hands it back.
TEST(SystemdTest, StoredMemoryThatIsNotThePoolsIsRefusedNamingBothObjects) {
  TempDir dir;
  std::string socket = dir.path + "/memd.sock", log = dir.path + "/memd.log";
  std::string instance = UniqueInstanceName();
  StateRemovedAtEnd state{instance};
  std::vector<std::string> memd = MemdArgs(socket, instance);
  auto daemon = std::make_unique<Subprocess>(memd);
  ASSERT_TRUE(WaitFor([&] { return SocketAccepts(socket); }, std::chrono::seconds(10)));
  std::map<std::string, std::string> env = {{"MEMD_ADDRESS", "unix://" + socket}};
  Subprocess holder({TestClientBinary(), "hold", "1", "65536", "95"}, env);
  std::vector<uint64_t> handles = ReadHandles(holder);
  ASSERT_EQ(handles.size(), 1u);
  daemon->Kill(SIGTERM);
  ASSERT_EQ(ExitCode(daemon->Wait()), 0);

  // Same size and seals as the pool's memfd, another object.
  constexpr size_t kPoolBytes = 8 << 20;
  UniqueFd foreign(::memfd_create("memd.foreign", MFD_CLOEXEC | MFD_ALLOW_SEALING));
  ASSERT_TRUE(foreign.valid());
  ASSERT_EQ(::ftruncate(foreign.get(), kPoolBytes), 0);
  auto* bytes = static_cast<uint8_t*>(
      ::mmap(nullptr, kPoolBytes, PROT_READ | PROT_WRITE, MAP_SHARED, foreign.get(), 0));
  ASSERT_NE(bytes, MAP_FAILED);
  std::memset(bytes, 0xee, kPoolBytes);
  ASSERT_EQ(::fcntl(foreign.get(), F_ADD_SEALS, F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_SEAL), 0);
  struct stat st {};
  ASSERT_EQ(::fstat(foreign.get(), &st), 0);

  ::kill(holder.pid(), SIGSTOP);  // it cannot hand the memory back yet
  NotifyListener notify(dir.path + "/notify");
  ASSERT_TRUE(notify.ok());
  std::vector<std::string> logged = memd;
  logged.insert(logged.end(), {">", log});  // StartWithStoredFd runs a shell command
  pid_t restarted = StartWithStoredFd(logged, foreign.get(), "pool.default", dir.path + "/notify");
  ASSERT_TRUE(notify.WaitFor("READY=1").has_value()) << notify.seen();
  std::string warning = ReadText(log);
  EXPECT_TRUE(Has(warning, "pool 'default': the memory systemd kept is not this pool's (the "
                           "descriptor offered for 'memd." + instance + ".default' is object " +
                           std::to_string(st.st_dev) + ":" + std::to_string(st.st_ino) + " of " +
                           std::to_string(kPoolBytes) + " bytes, not the pool's object "))
      << warning;
  EXPECT_TRUE(Has(warning, "waiting for clients to hand it back")) << warning;
  env["MEMD_CONNECT_TIMEOUT"] = "0";
  auto [pending, why] = RunCommand(
      {TestClientBinary(), "check", std::to_string(handles[0]), "65536", "95", "96"}, env);
  EXPECT_NE(pending, 0) << why;
  EXPECT_TRUE(Has(why, "to hand its memory back")) << "the pool stays pending (E36): " << why;
  for (size_t i = 0; i < kPoolBytes; ++i) {
    if (bytes[i] != 0xee) FAIL() << "memd wrote byte " << i << " of memory that is not its pool's";
  }

  ::kill(holder.pid(), SIGCONT);  // it reconnects and hands the pool's memory back
  env["MEMD_CONNECT_TIMEOUT"] = "10";
  auto [code, out] = RunCommand(
      {TestClientBinary(), "check", std::to_string(handles[0]), "65536", "95", "96"}, env);
  EXPECT_EQ(code, 0) << out;
  EXPECT_TRUE(Has(out, "ok")) << "the buffer came back with its client's memory: " << out;
  holder.CloseStdin();
  EXPECT_EQ(ExitCode(holder.Wait()), 0);
  ::munmap(bytes, kPoolBytes);
  ::kill(restarted, SIGTERM);
  int status = 0;
  ASSERT_EQ(::waitpid(restarted, &status, 0), restarted);
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << status;
}

}  // namespace
}  // namespace memd::testing
