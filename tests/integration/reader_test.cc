// Read-only consumers (issue 24): a session that attaches as a reader (asked
// for, or all the pool's owner, group and mode allow its uid) gets a
// read-only descriptor of the pool, so the kernel refuses it writes, and the
// daemon refuses it allocations. Real processes, real faults.
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <string>

#include <gtest/gtest.h>

#include "daemon_env.h"
#include "memd/client.h"
#include "sessions.h"
#include "subprocess.h"
#include "status_text.h"

namespace memd::testing {
namespace {

using ::memd::testing_support::Has;

std::string ReaderClientBinary() { return MEMD_READER_CLIENT_BINARY; }

constexpr int kReaderUid = 52011;
constexpr int kReaderGroup = 52110;

// A reader process that writes into a buffer dies of SIGSEGV, and the
// producer's bytes are unchanged.
TEST(ReaderTest, AReaderProcessThatWritesFaultsAndTheProducersBytesStay) {
  DaemonEnv daemon;
  ASSERT_TRUE(daemon.ok());
  auto producer = Client::Connect({.address = daemon.address()});
  ASSERT_TRUE(producer.ok()) << producer.status();
  auto frame = (*producer)->Allocate(8192);
  ASSERT_TRUE(frame.ok()) << frame.status();
  std::memset(frame->data(), 0x5A, frame->size());
  v1::PoolStats before = daemon.PoolStats();

  std::map<std::string, std::string> env = daemon.ClientEnv();
  // Under AddressSanitizer the fault is the kernel's to deliver, not ASan's
  // report-and-abort (the other builds ignore the variable).
  env["ASAN_OPTIONS"] = "handle_segv=0";
  Subprocess reader({ReaderClientBinary(), std::to_string(frame->handle()), "ask", "write"}, env);
  std::string out = reader.ReadAll(std::chrono::seconds(20));
  int status = reader.Wait(std::chrono::seconds(20)).value_or(-1);
  EXPECT_TRUE(Has(out, "reader 1")) << out;
  EXPECT_TRUE(Has(out, "read 0x5a")) << "a reader reads the bytes in place: " << out;
  EXPECT_TRUE(Has(out, "mprotect 13")) << "EACCES: the descriptor is read-only: " << out;
  EXPECT_TRUE(Has(out, "alloc 7")) << "PERMISSION_DENIED: " << out;
  EXPECT_FALSE(Has(out, "wrote")) << out;
  ASSERT_TRUE(WIFSIGNALED(status)) << "status " << status << ": " << out;
  EXPECT_EQ(WTERMSIG(status), SIGSEGV) << out;
  for (size_t i = 0; i < frame->size(); ++i) {
    ASSERT_EQ(frame->data()[i], 0x5A) << "byte " << i;
  }
  // The reader's retained reference went with its process; nothing else changed.
  EXPECT_TRUE(WaitFor([&] { return daemon.PoolStats().live_buffers() == before.live_buffers(); }));
  EXPECT_EQ(daemon.PoolStats().used_bytes(), before.used_bytes());
  EXPECT_EQ(daemon.CheckPools(), "");
}

// A reader receives, reads, forwards and releases, but cannot allocate; memctl
// (ListSessions) shows which sessions are readers.
TEST(ReaderTest, AReaderReceivesAndReleasesButCannotAllocateAndIsListedAsAReader) {
  DaemonEnv daemon;
  ASSERT_TRUE(daemon.ok());
  auto producer = Client::Connect({.address = daemon.address()});
  auto reader = Client::Connect({.address = daemon.address(), .read_only = true});
  ASSERT_TRUE(producer.ok() && reader.ok());
  EXPECT_FALSE((*producer)->read_only());
  EXPECT_TRUE((*reader)->read_only());
  v1::PoolStats before = daemon.PoolStats();

  auto refused = (*reader)->Allocate(4096);
  ASSERT_TRUE(absl::IsPermissionDenied(refused.status())) << refused.status();
  EXPECT_TRUE(Has(std::string(refused.status().message()),
                  "is a reader of pool 'default' (read-only access): allocate needs a writer"))
      << refused.status();
  auto batch = (*reader)->AllocateRefs(64, 4);
  EXPECT_TRUE(absl::IsPermissionDenied(batch.status())) << batch.status();
  EXPECT_EQ(daemon.PoolStats().live_buffers(), before.live_buffers()) << "refusals change nothing";

  auto frame = (*producer)->Allocate(4096);
  ASSERT_TRUE(frame.ok());
  std::memset(frame->data(), 0x33, frame->size());
  ASSERT_TRUE((*producer)->Send("frames", {frame->Detach()}, "f").ok());
  auto message = (*reader)->Receive("frames", 5000);
  ASSERT_TRUE(message.ok()) << message.status();
  ASSERT_EQ(message->buffers.size(), 1u);
  EXPECT_EQ((*reader)->base()[message->buffers[0].offset_bytes], 0x33);
  // A reader may pass on what it holds (it writes no byte doing so).
  ASSERT_TRUE((*reader)->Send("onward", {message->buffers[0].handle}, "g").ok());

  v1::ListSessionsResponse list = daemon.Sessions();
  const v1::SessionInfo* r = FindSession(list, (*reader)->session_id());
  const v1::SessionInfo* w = FindSession(list, (*producer)->session_id());
  ASSERT_TRUE(r != nullptr && w != nullptr);
  EXPECT_TRUE(r->read_only());
  EXPECT_FALSE(w->read_only());
  auto [code, out] = RunCommand({MemctlBinary(), "--address", daemon.address(), "clients"});
  EXPECT_EQ(code, 0) << out;
  EXPECT_TRUE(Has(out, "reader")) << out;
  EXPECT_TRUE(Has(out, "writer")) << out;

  auto onward = (*producer)->Receive("onward", 5000);
  ASSERT_TRUE(onward.ok()) << onward.status();
  ASSERT_TRUE((*producer)->ReleaseRefs({onward->buffers[0].handle}).ok());
  EXPECT_TRUE(WaitFor([&] { return daemon.PoolStats().used_bytes() == before.used_bytes(); }));
}

// A pool whose group may read but not write (mode 0640) makes its group's
// members readers without their asking; the owner (root here) stays a writer.
TEST(ReaderTest, APoolThatItsGroupMayOnlyReadMakesTheGroupsMembersReaders) {
  if (::geteuid() != 0) GTEST_SKIP() << "needs root to run a client as another uid";
  DaemonEnv daemon({.pools = {"default=4MiB,mode=0640,group=" + std::to_string(kReaderGroup)},
                    .extra_args = {"--socket-mode", "0666"}});
  ASSERT_TRUE(daemon.ok());
  auto producer = Client::Connect({.address = daemon.address()});
  ASSERT_TRUE(producer.ok());
  auto frame = (*producer)->Allocate(4096);
  ASSERT_TRUE(frame.ok());
  std::memset(frame->data(), 0x77, frame->size());
  auto [code, out] = RunCommand(
      {"/usr/bin/setpriv", "--reuid=" + std::to_string(kReaderUid),
       "--regid=" + std::to_string(kReaderUid), "--groups=" + std::to_string(kReaderGroup),
       "/bin/sh", "-c", "exec \"$0\" \"$@\" 2>&1", ReaderClientBinary(),
       std::to_string(frame->handle())},
      daemon.ClientEnv());
  EXPECT_EQ(code, 0) << out;
  EXPECT_TRUE(Has(out, "reader 1")) << out;
  EXPECT_TRUE(Has(out, "read 0x77")) << out;
  EXPECT_TRUE(Has(out, "mprotect 13")) << out;
  EXPECT_TRUE(Has(out, "alloc 7")) << out;
  EXPECT_EQ(frame->data()[0], 0x77);
}

}  // namespace
}  // namespace memd::testing
