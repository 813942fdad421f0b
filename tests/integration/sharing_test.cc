// Buffers shared between real processes through a real daemon.
#include <signal.h>
#include <sys/wait.h>

#include <gtest/gtest.h>

#include <algorithm>
#include <set>

#include "daemon_env.h"
#include "memd/client.h"

namespace memd::testing {
namespace {

TEST(SharingTest, BufferWrittenInOneProcessIsReadAndWrittenInAnother) {
  DaemonEnv daemon;
  ASSERT_TRUE(daemon.ok());
  Subprocess producer({TestClientBinary(), "hold", "1", "1000000", "171"}, daemon.ClientEnv());
  std::vector<uint64_t> handles = ReadHandles(producer);
  ASSERT_EQ(handles.size(), 1u);

  Subprocess consumer({TestClientBinary(), "check", std::to_string(handles[0]), "1000000", "171", "66"},
                      daemon.ClientEnv());
  EXPECT_EQ(consumer.ReadLine(), "ok");
  EXPECT_EQ(ExitCode(consumer.Wait()), 0);

  // The consumer's writes are visible to a third party through the handle.
  auto client = Client::Connect({.address = daemon.address()});
  ASSERT_TRUE(client.ok()) << client.status();
  auto view = (*client)->Retain(handles[0]);
  ASSERT_TRUE(view.ok()) << view.status();
  EXPECT_EQ(view->size(), 1000000u);
  EXPECT_EQ(view->data()[0], 66);
  EXPECT_EQ(view->data()[999999], 66);
  EXPECT_EQ(daemon.PoolStats().live_buffers(), 1u);

  producer.CloseStdin();  // producer exits without freeing: its session ends
  EXPECT_EQ(ExitCode(producer.Wait()), 0);
  EXPECT_EQ(view->data()[500], 66) << "our reference keeps the buffer alive";
  ASSERT_TRUE(view->Release().ok());
  EXPECT_TRUE(WaitFor([&] { return daemon.PoolStats().live_buffers() == 0; }));
  EXPECT_EQ(daemon.PoolStats().used_bytes(), 0u);
}

TEST(SharingTest, KilledClientsBuffersAreReleased) {
  DaemonEnv daemon;
  ASSERT_TRUE(daemon.ok());
  Subprocess holder({TestClientBinary(), "hold", "5", "3000000", "1"}, daemon.ClientEnv());
  ASSERT_EQ(ReadHandles(holder).size(), 5u);
  v1::PoolStats held = daemon.PoolStats();
  EXPECT_EQ(held.live_buffers(), 5u);
  EXPECT_GE(held.used_bytes(), 15000000u);
  EXPECT_EQ(held.sessions(), 1u);

  holder.Kill(SIGKILL);
  ASSERT_TRUE(holder.Wait());
  EXPECT_TRUE(WaitFor([&] {
    v1::PoolStats s = daemon.PoolStats();
    return s.used_bytes() == 0 && s.live_buffers() == 0 && s.sessions() == 0;
  })) << daemon.PoolStats().DebugString();
  EXPECT_EQ(daemon.CheckPools(), "");
}

TEST(SharingTest, BufferSurvivesItsAllocatorsDeathWhileRetained) {
  DaemonEnv daemon;
  ASSERT_TRUE(daemon.ok());
  Subprocess producer({TestClientBinary(), "hold", "1", "4096", "200"}, daemon.ClientEnv());
  std::vector<uint64_t> handles = ReadHandles(producer);
  ASSERT_EQ(handles.size(), 1u);
  Subprocess keeper({TestClientBinary(), "retain-hold", std::to_string(handles[0])}, daemon.ClientEnv());
  ASSERT_EQ(keeper.ReadLine(), "ready");

  producer.Kill(SIGKILL);
  producer.Wait();
  Subprocess checker({TestClientBinary(), "check", std::to_string(handles[0]), "4096", "200", "201"},
                     daemon.ClientEnv());
  EXPECT_EQ(checker.ReadLine(), "ok");
  EXPECT_EQ(daemon.PoolStats().live_buffers(), 1u);

  keeper.Kill(SIGKILL);
  keeper.Wait();
  EXPECT_TRUE(WaitFor([&] { return daemon.PoolStats().live_buffers() == 0; }));
  EXPECT_EQ(daemon.PoolStats().used_bytes(), 0u);
}

TEST(SharingTest, ClientOverwritingWholeSegmentCannotHurtDaemonOrAllocator) {
  DaemonEnv daemon({.pools = {"default=16MiB"}});
  ASSERT_TRUE(daemon.ok());
  Subprocess holder({TestClientBinary(), "hold", "3", "100000", "9"}, daemon.ClientEnv());
  std::vector<uint64_t> handles = ReadHandles(holder);
  ASSERT_EQ(handles.size(), 3u);

  for (int byte : {0xff, 0x00, 0xa5}) {
    Subprocess scribbler({TestClientBinary(), "scribble", std::to_string(byte)}, daemon.ClientEnv());
    EXPECT_EQ(scribbler.ReadLine(), "done");
    EXPECT_EQ(ExitCode(scribbler.Wait()), 0);
  }
  EXPECT_EQ(daemon.CheckPools(), "");
  v1::PoolStats s = daemon.PoolStats();
  EXPECT_EQ(s.live_buffers(), 3u);
  EXPECT_EQ(s.sessions(), 1u);

  // The allocator still hands out correct, zeroed, non-overlapping blocks.
  auto client = Client::Connect({.address = daemon.address()});
  ASSERT_TRUE(client.ok());
  std::vector<Buffer> buffers;
  for (int i = 0; i < 50; ++i) {
    auto b = (*client)->Allocate(200000, /*zero=*/true);
    ASSERT_TRUE(b.ok()) << b.status();
    for (size_t j = 0; j < b->size(); j += 4099) ASSERT_EQ(b->data()[j], 0);
    buffers.push_back(std::move(*b));
  }
  for (auto h : handles) {
    auto r = (*client)->Retain(h);
    EXPECT_TRUE(r.ok()) << r.status();
  }
  buffers.clear();
  holder.CloseStdin();
  holder.Wait();
  EXPECT_EQ(daemon.CheckPools(), "");
}

TEST(BatchTest, OneRoundTripAllocatesAndReleasesManyBuffers) {
  DaemonEnv daemon;
  ASSERT_TRUE(daemon.ok());
  auto client = Client::Connect({.address = daemon.address()});
  ASSERT_TRUE(client.ok());
  auto refs = (*client)->AllocateRefs(4000, 64, /*zero=*/true);
  ASSERT_TRUE(refs.ok()) << refs.status();
  ASSERT_EQ(refs->size(), 64u);
  std::vector<uint64_t> handles;
  std::vector<std::pair<uint64_t, uint64_t>> ranges;
  for (const BufferRef& r : *refs) {
    EXPECT_EQ(r.size_bytes, 4000u);
    EXPECT_EQ(r.offset_bytes % 64, 0u);
    uint8_t* p = (*client)->Pointer(r.offset_bytes);
    for (size_t i = 0; i < r.size_bytes; i += 997) ASSERT_EQ(p[i], 0) << "zeroed";
    handles.push_back(r.handle);
    ranges.emplace_back(r.offset_bytes, r.offset_bytes + r.capacity_bytes);
  }
  std::sort(ranges.begin(), ranges.end());
  for (size_t i = 1; i < ranges.size(); ++i) EXPECT_LE(ranges[i - 1].second, ranges[i].first);
  EXPECT_EQ(std::set<uint64_t>(handles.begin(), handles.end()).size(), 64u);
  EXPECT_EQ(daemon.PoolStats().live_buffers(), 64u);
  auto freed = (*client)->ReleaseRefs(handles);
  ASSERT_TRUE(freed.ok()) << freed.status();
  EXPECT_EQ(*freed, 64u);
  EXPECT_EQ(daemon.PoolStats().used_bytes(), 0u);
  EXPECT_EQ(daemon.CheckPools(), "");
}

}  // namespace
}  // namespace memd::testing
