// memctl's surface for people and shells: YAML as kubectl writes it, the
// completion scripts (bash, zsh, fish) and manual page made from the command
// line, table headers that say what they count. (memctl_test.cc: the commands.)
#include <unistd.h>

#include <cstdio>
#include <fstream>
#include <regex>
#include <string>

#include <gtest/gtest.h>

#include "daemon_env.h"
#include "memd/client.h"

namespace memd::testing {
namespace {

TEST(MemctlTest, BashCompletionAndTheManPageComeFromTheCommandLine) {
  std::string complete = "source <(\"$0\" completion bash); COMP_WORDS=($1); COMP_CWORD=$2; "
                         "_memctl; echo \"${COMPREPLY[*]}\"";
  auto [c1, commands] = RunCommand({"/bin/bash", "-c", complete, MemctlBinary(), "memctl ch", "1"});
  EXPECT_EQ(c1, 0) << commands;
  EXPECT_EQ(commands, "check channel\n");
  auto [c4, channel] = RunCommand({"/bin/bash", "-c", complete, MemctlBinary(), "memctl channel d",
                                   "2"});
  EXPECT_EQ(channel, "drain delete\n");
  auto [c2, flags] = RunCommand({"/bin/bash", "-c", complete, MemctlBinary(), "memctl buffers --",
                                 "2"});
  for (const char* flag : {"--pool", "--session", "--limit", "--output", "--timeout", "--json"}) {
    EXPECT_NE(flags.find(flag), std::string::npos) << flag << " in " << flags;
  }
  auto [c3, formats] = RunCommand({"/bin/bash", "-c", complete, MemctlBinary(), "memctl stats -o y",
                                   "3"});
  EXPECT_EQ(formats, "yaml\n");

  auto [mcode, page] = RunCommand({"/bin/sh", "-c", "\"$0\" man | groff -man -Tascii -ww -P-c -P-b -P-u 2>&1",
                                   MemctlBinary()});
  EXPECT_EQ(mcode, 0) << page;
  for (const char* part : {"MEMCTL(1)", "SYNOPSIS", "reload", "check", "watch", "--timeout",
                           "MEMD_ADDRESS", "EXIT STATUS"}) {
    EXPECT_NE(page.find(part), std::string::npos) << part << " in\n" << page;
  }
  EXPECT_EQ(page.find("warning"), std::string::npos) << page;
}

// Issue 27: `-o yaml` quoted every key. YAML as kubectl writes it: plain keys,
// and strings that a reader would take for numbers (handles) still quoted.
TEST(MemctlTest, YamlHasPlainKeysAndKeepsHandlesStrings) {
  DaemonEnv daemon;
  ASSERT_TRUE(daemon.ok());
  auto client = Client::Connect({.address = daemon.address()});
  ASSERT_TRUE(client.ok());
  auto buffer = (*client)->Allocate(100);
  ASSERT_TRUE(buffer.ok());
  auto [code, yaml] = RunCommand({MemctlBinary(), "--address", daemon.address(), "buffers", "-o",
                                  "yaml"});
  ASSERT_EQ(code, 0) << yaml;
  EXPECT_EQ(yaml.find("\"buffers\":"), std::string::npos) << yaml;
  EXPECT_NE(yaml.find("\nbuffers:\n"), std::string::npos) << yaml;
  EXPECT_NE(yaml.find("  - handle: \"" + std::to_string(buffer->handle()) + "\"\n"),
            std::string::npos) << yaml;
  EXPECT_NE(yaml.find("    pool: default\n"), std::string::npos) << yaml;
  EXPECT_NE(yaml.find("truncated: false"), std::string::npos) << yaml;
}

// Issue 27: completion for zsh and fish too, and bash offered `--help -h` twice.
TEST(MemctlTest, CompletionsForBashZshAndFishComeFromTheCommandLine) {
  std::string complete = "source <(\"$0\" completion bash); COMP_WORDS=($1); COMP_CWORD=$2; "
                         "_memctl; echo \"${COMPREPLY[*]}\"";
  auto [c1, flags] = RunCommand({"/bin/bash", "-c", complete, MemctlBinary(), "memctl buffers -",
                                 "2"});
  EXPECT_EQ(c1, 0) << flags;
  for (const char* once : {" --help ", " -h ", " --json ", " --pool "}) {
    std::string padded = " " + flags.substr(0, flags.size() - 1) + " ";
    size_t first = padded.find(once);
    EXPECT_NE(first, std::string::npos) << once << " in " << flags;
    EXPECT_EQ(padded.find(once, first + 1), std::string::npos) << once << " twice in " << flags;
  }
  auto [c2, subs] = RunCommand({"/bin/bash", "-c", complete, MemctlBinary(), "memctl bridge ",
                                "2"});
  EXPECT_NE(subs.find("list add remove"), std::string::npos) << subs;
  auto [c3, shells] = RunCommand({"/bin/bash", "-c", complete, MemctlBinary(),
                                  "memctl completion ", "2"});
  EXPECT_EQ(shells, "bash zsh fish\n");

  for (const char* shell : {"zsh", "fish"}) {
    auto [code, script] = RunCommand({MemctlBinary(), "completion", shell});
    ASSERT_EQ(code, 0) << shell;
    std::string file = "/tmp/memctl-completion-" + std::to_string(getpid()) + "." + shell;
    std::ofstream(file) << script;
    auto [syntax, why] = RunCommand({"/bin/sh", "-c", "\"$0\" -n \"$1\" 2>&1", shell, file});
    EXPECT_EQ(syntax, 0) << shell << ": " << why << script;
    std::remove(file.c_str());
  }
  // fish answers completion queries without a terminal: the real thing
  // (fish -c takes its arguments in $argv).
  std::string fish = "$argv[1] completion fish | source; complete -C $argv[2]";
  auto [f1, commands] = RunCommand({"/usr/bin/fish", "-c", fish, MemctlBinary(), "memctl che"});
  EXPECT_EQ(f1, 0) << commands;
  EXPECT_EQ(commands.rfind("check\t", 0), 0u) << commands;
  auto [f2, formats] = RunCommand({"/usr/bin/fish", "-c", fish, MemctlBinary(),
                                   "memctl stats -o y"});
  EXPECT_EQ(formats.rfind("yaml", 0), 0u) << formats;
  auto [f3, options] = RunCommand({"/usr/bin/fish", "-c", fish, MemctlBinary(),
                                   "memctl buffers --li"});
  EXPECT_EQ(options.rfind("--limit\t", 0), 0u) << options;
  // zsh: the script defines _memctl and registers it for memctl.
  auto [z, registered] = RunCommand(
      {"/usr/bin/zsh", "-c",
       "autoload -Uz compinit && compinit -u -D && source <(\"$0\" completion zsh) && "
       "print -r -- ${_comps[memctl]}",
       MemctlBinary()});
  EXPECT_EQ(registered, "_memctl\n") << z;
}

// Issue 27: the channel table's WAITING and RECEIVERS did not say what they count.
TEST(MemctlTest, TableHeadersSayWhatTheyCount) {
  DaemonEnv daemon;
  ASSERT_TRUE(daemon.ok());
  auto client = Client::Connect({.address = daemon.address()});
  ASSERT_TRUE(client.ok());
  ASSERT_TRUE((*client)->Send("ch", {}, "m").ok());
  auto [code, table] = RunCommand({MemctlBinary(), "--address", daemon.address(), "stats"});
  ASSERT_EQ(code, 0) << table;
  EXPECT_TRUE(std::regex_search(
      table, std::regex("CHANNEL +QUEUED/CAPACITY +MSGS SENT +MSGS RECEIVED +SENDERS WAITING "
                        "+RECEIVERS WAITING +SENDS THAT WAITED +SENDS DROPPED\n")))
      << table;
  EXPECT_TRUE(std::regex_search(table, std::regex("ch +1/16 +1 +0 +0 +0 +0 +0\n"))) << table;
  auto [ccode, clients] = RunCommand({MemctlBinary(), "--address", daemon.address(), "clients"});
  EXPECT_NE(clients.find("BYTES HELD"), std::string::npos) << clients;
  EXPECT_NE(clients.find("REQUESTS VIA"), std::string::npos) << clients;
}

}  // namespace
}  // namespace memd::testing
