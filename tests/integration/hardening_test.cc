// memd runs under its unit's hardening (deploy/systemd/memd.service.in), shown
// without systemd: memd runs as its own uid with no capability and no new
// privileges (setpriv), under strace, while a client allocates over a lane,
// passes a buffer through a channel, an admin reads stats, Prometheus
// scrapes, and SIGHUP and SIGTERM come. Then every system call it made must
// be in the unit's SystemCallFilter (expanded by systemd-analyze), every
// socket of a family RestrictAddressFamilies allows, no mapping writable and
// executable (MemoryDenyWriteExecute), and only the devices PrivateDevices
// keeps opened.
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <map>
#include <regex>
#include <set>
#include <sstream>

#include <gtest/gtest.h>

#include "absl/strings/str_cat.h"
#include "daemon_env.h"
#include "memd/client.h"
#include "net.h"
#include "unit_file.h"
#include "status_text.h"

namespace memd::testing {
namespace {

using ::memd::testing_support::Has;

namespace fs = std::filesystem;

constexpr int kMemdUid = 10001;  // stands in for the unit's User=memd

// The system calls a SystemCallFilter= allow-list names, groups expanded
// with `systemd-analyze syscall-filter` (which knows this systemd's groups).
std::set<std::string> AllowedSyscalls(const std::vector<std::string>& filter) {
  auto [code, out] = RunCommand({"/usr/bin/systemd-analyze", "syscall-filter"});
  EXPECT_EQ(code, 0) << out;
  std::map<std::string, std::vector<std::string>> groups;
  std::string current;
  std::istringstream in(out);
  for (std::string line; std::getline(in, line);) {
    if (line.empty()) continue;
    if (line[0] == '@') {
      current = line;
      continue;
    }
    std::string entry = line.substr(line.find_first_not_of(' '));
    if (entry[0] != '#' && !current.empty()) groups[current].push_back(entry);
  }
  std::set<std::string> allowed;
  std::vector<std::string> todo = filter;
  std::set<std::string> expanded;
  while (!todo.empty()) {
    std::string name = todo.back();
    todo.pop_back();
    if (name[0] != '@') {
      allowed.insert(name);
    } else if (expanded.insert(name).second) {
      EXPECT_TRUE(groups.count(name)) << "systemd does not know " << name;
      for (const std::string& e : groups[name]) todo.push_back(e);
    }
  }
  return allowed;
}

TEST(HardeningTest, MemdRunsWithinTheUnitsSyscallFilterFamiliesAndMemoryRules) {
  if (::geteuid() != 0) GTEST_SKIP() << "needs root to run memd as another uid";
  std::string unit = ReadText(std::string(MEMD_BINARY_DIR) + "/deploy/systemd/memd.service");
  ASSERT_FALSE(unit.empty());
  ASSERT_EQ(UnitSetting(unit, "CapabilityBoundingSet"), "") << "the test runs memd with none";
  ASSERT_EQ(UnitSetting(unit, "NoNewPrivileges"), "yes");
  std::set<std::string> allowed = AllowedSyscalls(Words(UnitSetting(unit, "SystemCallFilter")));
  ASSERT_GT(allowed.size(), 100u);
  std::vector<std::string> families = Words(UnitSetting(unit, "RestrictAddressFamilies"));
  ASSERT_FALSE(families.empty());

  char tmpl[] = "/tmp/memd-hardening-XXXXXX";
  std::string dir = ::mkdtemp(tmpl);
  ASSERT_EQ(::chown(dir.c_str(), kMemdUid, kMemdUid), 0);
  std::string socket = dir + "/memd.sock", trace = dir + "/trace";
  int port = FreePort();
  std::vector<std::string> argv = {
      "/usr/bin/strace", "-f", "-qq", "-o", trace, "/usr/bin/setpriv",
      "--reuid", std::to_string(kMemdUid), "--regid", std::to_string(kMemdUid), "--clear-groups",
      "--bounding-set", "-all", "--inh-caps", "-all", "--no-new-privs",
      MemdBinary(), "--listen", "unix://" + socket, "--instance", UniqueInstanceName(),
      "--state-dir", dir + "/state", "--pool", "default=8MiB,mode=0666", "--log-level", "warn",
      "--metrics-listen", "127.0.0.1:" + std::to_string(port)};
  // The unit's Environment= (one NAME=VALUE here) applies to memd as well.
  std::map<std::string, std::string> env;
  if (std::string e = UnitSetting(unit, "Environment"); !e.empty()) {
    env[e.substr(0, e.find('='))] = e.substr(e.find('=') + 1);
  }
  Subprocess tracer(argv, env);
  ASSERT_TRUE(WaitFor([&] { return SocketAccepts(socket); }, std::chrono::seconds(20)));
  // strace's child: setpriv, which became memd. Signals go to memd itself
  // (strace does not pass them on).
  pid_t memd = 0;
  std::ifstream(absl::StrCat("/proc/", tracer.pid(), "/task/", tracer.pid(), "/children")) >> memd;
  ASSERT_GT(memd, 0);

  {  // A client's life: lane, allocations, a channel, the admin, a scrape.
    auto client = Client::Connect({.address = "unix://" + socket, .connect_timeout_ms = 10'000});
    ASSERT_TRUE(client.ok()) << client.status();
    auto buffer = (*client)->Allocate(4096);
    ASSERT_TRUE(buffer.ok()) << buffer.status();
    ASSERT_TRUE((*client)->Send("frames", {buffer->Detach()}, "meta", 1000).ok());
    auto message = (*client)->Receive("frames", 1000);
    ASSERT_TRUE(message.ok()) << message.status();
    auto [code, out] = RunCommand({MemctlBinary(), "--address", "unix://" + socket, "stats"});
    EXPECT_EQ(code, 0) << out;
    EXPECT_TRUE(HttpGet(port, "/metrics").has_value());
  }
  ASSERT_EQ(::kill(memd, SIGHUP), 0);
  ASSERT_TRUE(WaitFor([&] { return SocketAccepts(socket); }));
  ASSERT_EQ(::kill(memd, SIGTERM), 0);
  EXPECT_EQ(ExitCode(tracer.Wait(std::chrono::seconds(20))), 0) << "strace exits with memd's code";

  // Only what memd did: the lines after setpriv executed it.
  std::ifstream in(trace);
  std::string line;
  bool in_memd = false;
  std::set<std::string> used;
  std::vector<std::string> wx_maps, sockets, devices;
  const std::regex call(R"(^\d+\s+(?:<\.\.\. )?([a-z0-9_]+)[( ])");
  const std::regex family(R"(socket\((AF_[A-Z0-9]+))");
  const std::regex device(R"re(open(?:at)?\([^"]*"(/dev/[^"]*)")re");
  while (std::getline(in, line)) {
    if (!in_memd) {
      in_memd = line.find("execve(\"" + MemdBinary() + "\"") != std::string::npos;
      continue;
    }
    std::smatch m;
    if (std::regex_search(line, m, call)) used.insert(m[1]);
    if (std::regex_search(line, m, family)) sockets.push_back(m[1]);
    if (std::regex_search(line, m, device)) devices.push_back(m[1]);
    bool maps = Has(line, " mmap(") || Has(line, " mprotect(") || Has(line, " pkey_mprotect(");
    if (maps && Has(line, "PROT_EXEC") && (Has(line, "PROT_WRITE") || Has(line, "mprotect("))) {
      wx_maps.push_back(line);
    }
  }
  ASSERT_TRUE(in_memd) << "no execve of memd in " << trace;
  ASSERT_TRUE(used.count("memfd_create")) << "the trace covers memd's work";
  for (const std::string& name : used) {
    if (name == "exited" || name == "killed" || name == "resumed") continue;
    EXPECT_TRUE(allowed.count(name)) << "memd calls " << name << ", outside SystemCallFilter";
  }
  for (const std::string& f : sockets) {
    EXPECT_NE(std::find(families.begin(), families.end(), f), families.end())
        << "memd opens an " << f << " socket, outside RestrictAddressFamilies";
  }
  for (const std::string& line : wx_maps) ADD_FAILURE() << "W+X or exec mprotect: " << line;
  for (const std::string& d : devices) {
    EXPECT_TRUE(d == "/dev/null" || d == "/dev/zero" || d == "/dev/urandom" || d == "/dev/random" ||
                d == "/dev/full")
        << "memd opens " << d << ", which PrivateDevices=yes hides";
  }
  std::error_code ignored;
  fs::remove_all(dir, ignored);
}

}  // namespace
}  // namespace memd::testing
