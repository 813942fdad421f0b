// Arena blocks through channels (issue 15): memd_channel_send of a block
// that has no handle yet registers it in the send's own round trip
// (ChannelSendRequest.register_first), a failed send registers nothing, and a
// block sent away is reused by its sender once the receiver released it, so a
// loop of frames sent to another process runs in bounded memory.
#include <cstring>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "arena_session.h"
#include "daemon_env.h"
#include "memd/client.h"
#include "memd/memd.h"
#include "net.h"
#include "raw_session.h"

namespace memd::testing {
namespace {

double RpcCount(int port, const std::string& method) {
  std::optional<std::string> body = HttpGet(port, "/metrics");
  EXPECT_TRUE(body) << "no metrics on port " << port;
  if (!body) return -1;
  double v = MetricValue(*body, "memd_rpc_duration_seconds_count{method=\"" + method + "\"}");
  return v < 0 ? 0 : v;
}

TEST(ArenaSendTest, ASendRegistersItsBlocksInItsOwnRoundTripAndTheReceiverReadsThem) {
  int port = FreePort();
  DaemonEnv daemon({.pools = {"default=32MiB"},
                    .extra_args = {"--metrics-listen", "127.0.0.1:" + std::to_string(port)}});
  ASSERT_TRUE(daemon.ok());
  ArenaCSession session(daemon);
  ASSERT_TRUE(session.ok());
  std::unique_ptr<Client> receiver = ConnectPlain(daemon);
  ASSERT_NE(receiver, nullptr);

  // A small block, one of the largest class, and a large one (own chunk).
  const std::vector<size_t> sizes = {100, 65536, 1 << 20};
  std::vector<void*> blocks;
  for (size_t i = 0; i < sizes.size(); ++i) {
    blocks.push_back(memd_malloc(sizes[i]));
    ASSERT_NE(blocks.back(), nullptr) << memd_last_error();
    std::memset(blocks.back(), 0x40 + static_cast<int>(i), sizes[i]);
  }
  const double retains = RpcCount(port, "retain");  // an arena registration counts as one
  const double sends = RpcCount(port, "send");
  ASSERT_EQ(memd_channel_send("frames", blocks.data(), blocks.size(), "meta", 4, 1000), 0)
      << memd_last_error();
  EXPECT_EQ(RpcCount(port, "retain"), retains) << "a registration took a round trip of its own";
  EXPECT_EQ(RpcCount(port, "send"), sends + 1);

  absl::StatusOr<ChannelMessage> got = receiver->Receive("frames", 1000);
  ASSERT_TRUE(got.ok()) << got.status();
  EXPECT_EQ(got->metadata, "meta");
  ASSERT_EQ(got->buffers.size(), sizes.size());
  for (size_t i = 0; i < sizes.size(); ++i) {
    const BufferRef& ref = got->buffers[i];
    EXPECT_NE(ref.handle, 0u);
    EXPECT_EQ(ref.size_bytes, sizes[i]);
    const auto* bytes = static_cast<const uint8_t*>(receiver->Pointer(ref.offset_bytes));
    EXPECT_EQ(bytes[0], 0x40 + i);
    EXPECT_EQ(bytes[sizes[i] - 1], 0x40 + i);
  }
  // The moving send made the channel, then the receiver, the only holder;
  // once it lets go, the handles are gone for good.
  for (const BufferRef& ref : got->buffers) ASSERT_TRUE(receiver->ReleaseRef(ref.handle).ok());
  for (const BufferRef& ref : got->buffers) {
    absl::StatusOr<BufferRef> stale = receiver->RetainRef(ref.handle);
    EXPECT_EQ(stale.status().code(), absl::StatusCode::kNotFound) << stale.status();
  }
  EXPECT_EQ(daemon.CheckPools(), "");
}

TEST(ArenaSendTest, AFailedSendRegistersNothing) {
  DaemonEnv daemon({.pools = {"default=16MiB"}});
  ASSERT_TRUE(daemon.ok());
  ArenaCSession session(daemon);
  ASSERT_TRUE(session.ok());
  std::unique_ptr<Client> other = ConnectPlain(daemon);
  ASSERT_NE(other, nullptr);
  // A channel of one message, full.
  ASSERT_TRUE(other->Send("full", {}, "first", 0, /*capacity=*/1).ok());

  void* block = memd_malloc(4096);
  ASSERT_NE(block, nullptr) << memd_last_error();
  std::memset(block, 0x5a, 4096);
  const uint64_t buffers = daemon.PoolStats().live_buffers();
  // At once, and after waiting for room (the answer comes from the daemon's
  // timer, on another thread).
  for (int timeout_ms : {0, 200}) {
    EXPECT_EQ(memd_channel_send("full", &block, 1, nullptr, 0, timeout_ms), -EAGAIN)
        << timeout_ms << ": " << memd_last_error();
    EXPECT_EQ(daemon.PoolStats().live_buffers(), buffers)
        << "a failed send (timeout " << timeout_ms << " ms) left its registration behind";
  }
  // The block is still this process's, unregistered: a handle now is a
  // fresh registration another process can retain, with the bytes intact.
  uint64_t handle = memd_handle(block);
  ASSERT_NE(handle, 0u) << memd_last_error();
  absl::StatusOr<BufferRef> shared = other->RetainRef(handle);
  ASSERT_TRUE(shared.ok()) << shared.status();
  EXPECT_EQ(static_cast<const uint8_t*>(other->Pointer(shared->offset_bytes))[4095], 0x5a);
  ASSERT_TRUE(other->ReleaseRef(handle).ok());
  memd_free(block);
  EXPECT_EQ(daemon.CheckPools(), "");
}

TEST(ArenaSendTest, ALoopOfBlocksSentToAnotherProcessRunsInBoundedMemory) {
  // 400 sends of 60 KB are 24 MB through a 16 MiB pool: only if the sender
  // reuses what the receiver released.
  DaemonEnv daemon({.pools = {"default=16MiB"}});
  ASSERT_TRUE(daemon.ok());
  ArenaCSession session(daemon);
  ASSERT_TRUE(session.ok());
  std::unique_ptr<Client> receiver = ConnectPlain(daemon);
  ASSERT_NE(receiver, nullptr);
  constexpr size_t kBytes = 60000;
  for (int i = 0; i < 400; ++i) {
    void* block = memd_malloc(kBytes);
    ASSERT_NE(block, nullptr) << "frame " << i << ": " << memd_last_error();
    std::memset(block, i & 0xff, kBytes);
    // Every other frame gets its handle first (memd_handle), so both ways of
    // sending are reused: with a handle, and registered by the send.
    if (i % 2 == 1) {
      ASSERT_NE(memd_handle(block), 0u) << memd_last_error();
    }
    ASSERT_EQ(memd_channel_send("loop", &block, 1, nullptr, 0, 1000), 0)
        << "frame " << i << ": " << memd_last_error();
    absl::StatusOr<ChannelMessage> got = receiver->Receive("loop", 1000);
    ASSERT_TRUE(got.ok()) << got.status();
    ASSERT_EQ(got->buffers.size(), 1u);
    const auto* bytes = static_cast<const uint8_t*>(receiver->Pointer(got->buffers[0].offset_bytes));
    ASSERT_EQ(bytes[kBytes - 1], i & 0xff) << "frame " << i;
    ASSERT_TRUE(receiver->ReleaseRef(got->buffers[0].handle).ok());
  }
  EXPECT_EQ(daemon.CheckPools(), "");
}

TEST(ArenaSendTest, RangesThatDoNotMatchTheZeroHandlesAreRefusedNamingBoth) {
  DaemonEnv daemon({.pools = {"default=16MiB"}});
  ASSERT_TRUE(daemon.ok());
  RawSession raw(daemon.address());
  ASSERT_EQ(raw.Attach("default").status_code(), 0);
  v1::SessionResponse chunk = raw.Allocate(1 << 20);
  ASSERT_EQ(chunk.status_code(), 0) << chunk.status_message();
  const uint64_t buffers = daemon.PoolStats().live_buffers();

  v1::SessionRequest request;
  v1::ChannelSendRequest* send = request.mutable_send();
  send->set_channel("c");
  send->add_handles(0);
  send->add_handles(0);
  v1::ArenaRegisterRequest* range = send->add_register_first();
  range->set_chunk(chunk.buffer().handle());
  range->set_offset_bytes(chunk.buffer().offset_bytes());
  range->set_size_bytes(64);
  range->set_capacity_bytes(64);
  v1::SessionResponse answer = raw.Call(request);
  EXPECT_EQ(answer.status_code(), static_cast<int>(absl::StatusCode::kInvalidArgument));
  EXPECT_NE(answer.status_message().find("names 1 ranges to register for 2 zero handles"),
            std::string::npos)
      << answer.status_message();

  // The second range lies outside the chunk: the first one's registration
  // is undone with the refusal.
  send->mutable_handles()->Clear();
  send->add_handles(0);
  send->add_handles(0);
  v1::ArenaRegisterRequest* outside = send->add_register_first();
  *outside = *range;
  outside->set_offset_bytes(chunk.buffer().offset_bytes() + (2 << 20));
  answer = raw.Call(request);
  EXPECT_EQ(answer.status_code(), static_cast<int>(absl::StatusCode::kInvalidArgument));
  EXPECT_NE(answer.status_message().find("is not a"), std::string::npos) << answer.status_message();
  EXPECT_EQ(daemon.PoolStats().live_buffers(), buffers);

  // Both ranges good: one round trip registers and sends both.
  outside->set_offset_bytes(chunk.buffer().offset_bytes() + 4096);
  answer = raw.Call(request);
  ASSERT_EQ(answer.status_code(), 0) << answer.status_message();
  ASSERT_EQ(answer.sent().registered_size(), 2);
  EXPECT_EQ(answer.sent().registered(1).offset_bytes(), chunk.buffer().offset_bytes() + 4096);
  EXPECT_EQ(daemon.PoolStats().live_buffers(), buffers + 2);
  EXPECT_EQ(daemon.CheckPools(), "");
}

}  // namespace
}  // namespace memd::testing
