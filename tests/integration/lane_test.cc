// Lanes: the shared-memory transport of a session (memd/shared/lane.h). Every
// other integration test runs over lanes too (clients ask for one by default);
// these check what is particular to them: that sessions get one and leave no
// object behind, that the stream alone still serves, the daemon's limit, and
// that a client scribbling over its lane ends only its own session.
#include <fcntl.h>
#include <signal.h>
#include <sys/mman.h>
#include <unistd.h>

#include <atomic>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <thread>

#include <gtest/gtest.h>

#include "absl/strings/match.h"
#include "daemon_env.h"
#include "memd/client.h"
#include "memd/shared/lane.h"
#include "sessions.h"

namespace memd::testing {
namespace {

// Lane objects of `instance` still named in /dev/shm.
int LaneObjects(const std::string& instance) {
  int n = 0;
  for (const auto& entry : std::filesystem::directory_iterator("/dev/shm")) {
    if (absl::StartsWith(entry.path().filename().string(), lane::LaneObjectPrefix(instance))) ++n;
  }
  return n;
}

// The session's lane as this process maps it (the client's own mapping of
// the memfd the daemon passed: /proc/self/maps shows "/memfd:<label> (deleted)").
lane::Header* MappedLane(const std::string& instance, uint64_t session_id) {
  std::ifstream maps("/proc/self/maps");
  std::string line;
  std::string name = "/memfd:" + lane::LaneObjectName(instance, session_id).substr(1) + " ";
  while (std::getline(maps, line)) {
    if (line.find(name) == std::string::npos) continue;
    return reinterpret_cast<lane::Header*>(std::stoull(line.substr(0, line.find('-')), nullptr, 16));
  }
  return nullptr;
}

TEST(LaneTest, SessionsGetALaneThatHasNoName) {
  DaemonEnv daemon;
  ASSERT_TRUE(daemon.ok());
  auto client = Client::Connect({.address = daemon.address()});
  ASSERT_TRUE(client.ok()) << client.status();
  v1::ListSessionsResponse sessions = daemon.Sessions();
  const v1::SessionInfo* info = FindSession(sessions, (*client)->session_id());
  ASSERT_NE(info, nullptr);
  EXPECT_TRUE(info->lane());
  EXPECT_NE(MappedLane(daemon.instance(), (*client)->session_id()), nullptr);
  EXPECT_EQ(LaneObjects(daemon.instance()), 0) << "a lane is a memfd passed over the socket";

  // Operations through the lane, including a blocking receive answered later.
  auto buffer = (*client)->Allocate(4096, /*zero=*/true);
  ASSERT_TRUE(buffer.ok()) << buffer.status();
  std::memset(buffer->data(), 0x5a, 4096);
  std::thread consumer([&] {
    auto receiver = Client::Connect({.address = daemon.address()});
    ASSERT_TRUE(receiver.ok());
    auto message = (*receiver)->Receive("lane-test", 5000);
    ASSERT_TRUE(message.ok()) << message.status();
    ASSERT_EQ(message->buffers.size(), 1u);
    EXPECT_EQ((*receiver)->Pointer(message->buffers[0].offset_bytes)[4095], 0x5a);
    EXPECT_TRUE((*receiver)->ReleaseRef(message->buffers[0].handle).ok());
  });
  std::this_thread::sleep_for(std::chrono::milliseconds(50));  // let the receive wait
  uint64_t handle = buffer->Detach();
  ASSERT_TRUE((*client)->Send("lane-test", {handle}, "meta").ok());
  consumer.join();
  EXPECT_TRUE(WaitFor([&] { return daemon.PoolStats().live_buffers() == 0; },
                      std::chrono::seconds(5)));
}

// CPU seconds (user + system) process `pid` has used, from /proc/<pid>/stat.
double CpuSeconds(pid_t pid) {
  std::ifstream stat("/proc/" + std::to_string(pid) + "/stat");
  std::string text((std::istreambuf_iterator<char>(stat)), std::istreambuf_iterator<char>());
  // Fields after the command name (which may hold spaces) in parentheses.
  std::istringstream rest(text.substr(text.rfind(')') + 2));
  std::string field;
  unsigned long long utime = 0, stime = 0;
  for (int i = 3; i <= 15 && rest >> field; ++i) {
    if (i == 14) utime = std::stoull(field);
    if (i == 15) stime = std::stoull(field);
  }
  return static_cast<double>(utime + stime) / static_cast<double>(::sysconf(_SC_CLK_TCK));
}

// Both ends of a lane poll for a little while before they sleep
// (memd/shared/spin.h); a session that goes quiet must cost no CPU.
TEST(LaneTest, AnIdleSessionCostsNeitherSideCpuAfterBusyPolling) {
  DaemonEnv daemon;
  ASSERT_TRUE(daemon.ok());
  auto client = Client::Connect({.address = daemon.address()});
  ASSERT_TRUE(client.ok()) << client.status();
  ASSERT_TRUE(FindSession(daemon.Sessions(), (*client)->session_id())->lane());
  for (int i = 0; i < 2000; ++i) {  // a busy loop: both sides learn to poll
    auto ref = (*client)->AllocateRef(64, false);
    ASSERT_TRUE(ref.ok()) << ref.status();
    ASSERT_TRUE((*client)->ReleaseRef(ref->handle).ok());
  }
  // The client's reader waits for an answer that will not come for a while:
  // a receive on an empty channel, 600 ms.
  double daemon_before = CpuSeconds(daemon.pid());
  double self_before = CpuSeconds(::getpid());
  auto received = (*client)->Receive("nobody-sends", 600);
  EXPECT_FALSE(received.ok());
  std::this_thread::sleep_for(std::chrono::milliseconds(400));
  double daemon_used = CpuSeconds(daemon.pid()) - daemon_before;
  double self_used = CpuSeconds(::getpid()) - self_before;
  // A side that kept polling would have used about the whole second.
  EXPECT_LT(daemon_used, 0.25) << "the daemon kept polling an idle lane";
  EXPECT_LT(self_used, 0.25) << "the client kept polling while it waited";
}

// A release deferred after a posted send of the same buffer reaches the
// daemon after that send. The client's monitor sends queued releases on the
// stream at its tick; while the daemon had not served the lane yet, that
// release could overtake the send, which then found the reference gone
// ("this session holds no reference to handle ..."; PipelineTest's
// restarted filter under TSan, issue 24 defect 12). Here the daemon is
// stopped across several ticks, so the release is queued before the lane is
// served in every round, and both arrive together when it continues.
TEST(LaneTest, AReleaseDeferredAfterAPostedSendNeverOvertakesIt) {
  DaemonEnv daemon;
  ASSERT_TRUE(daemon.ok());
  auto producer = Client::Connect({.address = daemon.address()});
  auto consumer = Client::Connect({.address = daemon.address()});
  ASSERT_TRUE(producer.ok() && consumer.ok());
  for (int round = 0; round < 30; ++round) {
    auto ref = (*producer)->AllocateRef(4096, false);
    ASSERT_TRUE(ref.ok()) << ref.status();
    ASSERT_EQ(::kill(daemon.pid(), SIGSTOP), 0);
    absl::Status posted = (*producer)->Post("frames", {ref->handle}, "f", 0, 64, SendMode::kShare,
                                            PostWake::kWithNextCall);
    (*producer)->ReleaseRefsLater({ref->handle});
    std::this_thread::sleep_for(std::chrono::milliseconds(80));  // three monitor ticks
    ASSERT_EQ(::kill(daemon.pid(), SIGCONT), 0);
    ASSERT_TRUE(posted.ok()) << posted;
    absl::Status sent = (*producer)->CollectPosted();
    ASSERT_TRUE(sent.ok()) << "round " << round << ": " << sent;
    auto message = (*consumer)->Receive("frames", 5000);
    ASSERT_TRUE(message.ok()) << message.status();
    ASSERT_EQ(message->buffers.size(), 1u);
    EXPECT_EQ(message->buffers[0].handle, ref->handle);
    ASSERT_TRUE((*consumer)->ReleaseRefs({message->buffers[0].handle}).ok());
  }
  EXPECT_TRUE(WaitFor([&] { return daemon.PoolStats().used_bytes() == 0; }))
      << "every deferred release arrived: " << daemon.PoolStats().DebugString();
  EXPECT_EQ(daemon.CheckPools(), "");
}

TEST(LaneTest, WithoutALaneTheStreamServesAlike) {
  DaemonEnv daemon;
  ASSERT_TRUE(daemon.ok());
  auto client = Client::Connect({.address = daemon.address(), .lane = false});
  ASSERT_TRUE(client.ok()) << client.status();
  const v1::ListSessionsResponse sessions = daemon.Sessions();
  const v1::SessionInfo* info = FindSession(sessions, (*client)->session_id());
  ASSERT_NE(info, nullptr);
  EXPECT_FALSE(info->lane());
  EXPECT_EQ(MappedLane(daemon.instance(), (*client)->session_id()), nullptr);
  auto buffer = (*client)->Allocate(100);
  ASSERT_TRUE(buffer.ok()) << buffer.status();
  EXPECT_EQ(daemon.PoolStats().live_buffers(), 1u);
}

TEST(LaneTest, TheDaemonsLaneLimitLeavesFurtherSessionsOnTheirStreams) {
  DaemonEnv daemon({.extra_args = {"--max-lanes", "1"}});
  ASSERT_TRUE(daemon.ok());
  auto first = Client::Connect({.address = daemon.address()});
  auto second = Client::Connect({.address = daemon.address()});
  ASSERT_TRUE(first.ok() && second.ok());
  const v1::ListSessionsResponse sessions = daemon.Sessions();
  const v1::SessionInfo* a = FindSession(sessions, (*first)->session_id());
  const v1::SessionInfo* b = FindSession(sessions, (*second)->session_id());
  ASSERT_TRUE(a != nullptr && b != nullptr);
  EXPECT_TRUE(a->lane());
  EXPECT_FALSE(b->lane());
  EXPECT_TRUE((*second)->Allocate(64).ok());
  // The place comes back when the session with the lane ends.
  first->reset();
  EXPECT_TRUE(WaitFor([&] { return daemon.Sessions().sessions_size() == 1; },
                      std::chrono::seconds(5)));
  auto third = Client::Connect({.address = daemon.address()});
  ASSERT_TRUE(third.ok());
  const v1::ListSessionsResponse later = daemon.Sessions();
  const v1::SessionInfo* c = FindSession(later, (*third)->session_id());
  ASSERT_NE(c, nullptr);
  EXPECT_TRUE(c->lane());
}

// What a buggy or hostile client can do to its own lane.
enum class Scribble { kTailPastTheRing, kEntryOverTheLimit, kGarbageEntry, kHeadBackwards };

class LaneScribbleTest : public ::testing::TestWithParam<Scribble> {};

TEST_P(LaneScribbleTest, EndsOnlyThatSessionAndChangesNothingElse) {
  DaemonEnv daemon;
  ASSERT_TRUE(daemon.ok());
  // A bystander with data in the pool.
  auto bystander = Client::Connect({.address = daemon.address()});
  ASSERT_TRUE(bystander.ok());
  auto kept = (*bystander)->Allocate(1 << 16);
  ASSERT_TRUE(kept.ok());
  std::memset(kept->data(), 0x33, 1 << 16);

  auto client = Client::Connect({.address = daemon.address(), .outage_wait_ms = 5000});
  ASSERT_TRUE(client.ok());
  uint64_t session = (*client)->session_id();
  auto held = (*client)->Allocate(4096);
  ASSERT_TRUE(held.ok());
  ASSERT_EQ(daemon.PoolStats().live_buffers(), 2u);
  lane::Header* header = MappedLane(daemon.instance(), session);
  ASSERT_NE(header, nullptr);
  uint8_t* ring = lane::SubmissionRing(header);
  uint32_t tail = header->sub_tail.load();
  switch (GetParam()) {
    case Scribble::kTailPastTheRing:
      header->sub_tail.store(tail + lane::kRingBytes + 8);
      break;
    case Scribble::kEntryOverTheLimit: {
      uint32_t length = lane::kMaxPayloadBytes + 1;
      lane::RingWrite(ring, tail, &length, 4);
      header->sub_tail.store(tail + 8);
      break;
    }
    case Scribble::kGarbageEntry: {
      uint32_t length = 8;
      const uint8_t garbage[8] = {0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff};
      lane::RingWrite(ring, tail, &length, 4);
      lane::RingWrite(ring, tail + 4, garbage, 8);
      header->sub_tail.store(tail + lane::EntryBytes(8));
      break;
    }
    case Scribble::kHeadBackwards:
      header->comp_head.store(header->comp_tail.load() + 64);
      break;
  }
  header->doorbell.fetch_add(1);
  lane::FutexWakeAll(&header->doorbell);
  // kHeadBackwards is noticed when the daemon next writes a completion.
  if (GetParam() == Scribble::kHeadBackwards) (*client)->Allocate(1).IgnoreError();

  // The daemon ends that session. Its process lives, so its buffer stays its
  // own (it reclaims it on its new session); what it never learnt of (the
  // allocation whose answer the broken lane lost) is released then.
  EXPECT_TRUE(WaitFor([&] { return FindSession(daemon.Sessions(), session) == nullptr; },
                      std::chrono::seconds(5)));
  EXPECT_TRUE(WaitFor([&] { return daemon.PoolStats().live_buffers() <= 2; },
                      std::chrono::seconds(5)));
  // The daemon stays up and the bystander's bytes are untouched.
  EXPECT_TRUE(daemon.CheckPools().empty()) << daemon.CheckPools();
  for (int i = 0; i < (1 << 16); ++i) ASSERT_EQ(kept->data()[i], 0x33) << i;
  auto more = (*bystander)->Allocate(128);
  EXPECT_TRUE(more.ok()) << more.status();
  // The scribbling client gets a new session (and a new lane) and goes on.
  EXPECT_TRUE(WaitFor([&] { return (*client)->session_id() != session && (*client)->connected(); },
                      std::chrono::seconds(10)));
  auto after = (*client)->Allocate(256);
  EXPECT_TRUE(after.ok()) << after.status();
  auto again = (*client)->Retain(held->handle());
  EXPECT_TRUE(again.ok()) << "the buffer it held is still its own: " << again.status();
}

INSTANTIATE_TEST_SUITE_P(Corruptions, LaneScribbleTest,
                         ::testing::Values(Scribble::kTailPastTheRing, Scribble::kEntryOverTheLimit,
                                           Scribble::kGarbageEntry, Scribble::kHeadBackwards));

TEST(LaneTest, ADaemonKilledWithLanesOpenLeavesNoLaneObjectAndTheClientGetsANewLane) {
  DaemonEnv daemon;
  ASSERT_TRUE(daemon.ok());
  auto client = Client::Connect({.address = daemon.address(), .outage_wait_ms = 10000});
  ASSERT_TRUE(client.ok());
  auto buffer = (*client)->Allocate(4096);
  ASSERT_TRUE(buffer.ok());
  std::memset(buffer->data(), 7, 4096);
  daemon.Stop(SIGKILL);
  ASSERT_TRUE(daemon.Restart());
  EXPECT_EQ(LaneObjects(daemon.instance()), 0) << "lanes never had a name to leave behind";
  EXPECT_TRUE(WaitFor([&] { return (*client)->reconnects() >= 1 && (*client)->connected(); },
                      std::chrono::seconds(10)));
  auto retained = (*client)->Retain(buffer->handle());
  ASSERT_TRUE(retained.ok()) << retained.status();
  EXPECT_EQ(retained->data()[4095], 7);
  const v1::ListSessionsResponse sessions = daemon.Sessions();
  const v1::SessionInfo* info = FindSession(sessions, (*client)->session_id());
  ASSERT_NE(info, nullptr);
  EXPECT_TRUE(info->lane()) << "the new session has a lane of its own";
}

}  // namespace
}  // namespace memd::testing
