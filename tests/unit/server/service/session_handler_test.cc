// SessionHandler without gRPC: requests in, responses out, over a Pool on a
// heap buffer. The wire limits are memd/shared/limits.h's; every refusal
// names the value and the limit and changes nothing.
#include "service/session_handler.h"

#include <unistd.h>

#include <memory>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "memd/shared/limits.h"
#include "pool/pool_registry.h"
#include "service/session_registry.h"

namespace memd {
namespace {

constexpr uint64_t kHandlerPoolBytes = 4 << 20;

bool ResponseSays(const v1::SessionResponse& r, const std::string& part) {
  return r.status_message().find(part) != std::string::npos;
}

class SessionHandlerTest : public testing::Test {
 protected:
  SessionHandlerTest() : memory_(kHandlerPoolBytes) {
    auto pool = std::make_unique<Pool>(
        PoolConfig{.name = "video", .size_bytes = kHandlerPoolBytes, .alignment_bytes = 64,
                   .max_alloc_bytes = kHandlerPoolBytes,
                   .access = {.owner_uid = ::getuid(), .group_gid = ::getgid(), .mode = 0600}},
        0, memory_.data(), "/video");
    pool_ = pool.get();
    pools_.Add(std::move(pool));
  }
  void TearDown() override { EXPECT_TRUE(pool_->CheckInvariants().ok()) << pool_->CheckInvariants(); }

  std::unique_ptr<SessionHandler> NewHandler(uint64_t session_id) {
    return std::make_unique<SessionHandler>(
        pools_, sessions_, session_id,
        PeerCredentials{.pid = ::getpid(), .uid = ::getuid(), .gid = ::getgid()}, "test peer");
  }
  v1::SessionResponse Handle(SessionHandler& h, v1::SessionRequest request) {
    request.set_request_id(++next_id_);
    v1::SessionResponse response;
    EXPECT_TRUE(h.Handle(request, &response)) << "no channel operation waits here";
    EXPECT_EQ(response.request_id(), next_id_);
    return response;
  }
  v1::SessionResponse Attach(SessionHandler& h, const std::string& pool = "video") {
    v1::SessionRequest r;
    r.mutable_attach()->set_pool(pool);
    return Handle(h, r);
  }
  v1::SessionResponse Allocate(SessionHandler& h, uint64_t size) {
    v1::SessionRequest r;
    r.mutable_allocate()->set_size_bytes(size);
    return Handle(h, r);
  }
  uint64_t Live() const { return pool_->Stats().live_buffers; }

  std::vector<uint8_t> memory_;
  PoolRegistry pools_;
  SessionRegistry sessions_;
  Pool* pool_ = nullptr;
  uint64_t next_id_ = 0;
};

TEST_F(SessionHandlerTest, AttachComesFirstAndNamesThePools) {
  auto h = NewHandler(1);
  v1::SessionResponse early = Allocate(*h, 100);
  EXPECT_EQ(early.status_code(), static_cast<int>(absl::StatusCode::kFailedPrecondition));
  EXPECT_TRUE(ResponseSays(early, "must be attach")) << early.status_message();
  v1::SessionResponse unknown = Attach(*h, "audio");
  EXPECT_EQ(unknown.status_code(), static_cast<int>(absl::StatusCode::kNotFound));
  EXPECT_TRUE(ResponseSays(unknown, "video")) << "the refusal lists the daemon's pools";
  EXPECT_FALSE(h->attached());

  v1::SessionResponse attached = Attach(*h);
  ASSERT_EQ(attached.status_code(), 0) << attached.status_message();
  EXPECT_TRUE(h->attached());
  EXPECT_EQ(attached.attach().session_id(), 1u);
  EXPECT_EQ(attached.attach().pool().size_bytes(), kHandlerPoolBytes);
  EXPECT_EQ(attached.attach().ticket().size(), 16u);
  v1::SessionResponse again = Attach(*h);
  EXPECT_EQ(again.status_code(), static_cast<int>(absl::StatusCode::kFailedPrecondition));
}

TEST_F(SessionHandlerTest, ClientNameOverTheLimitIsRefused) {
  auto h = NewHandler(1);
  v1::SessionRequest r;
  r.mutable_attach()->set_pool("video");
  r.mutable_attach()->set_client_name(std::string(limits::kMaxClientNameBytes + 1, 'n'));
  v1::SessionResponse refused = Handle(*h, r);
  EXPECT_EQ(refused.status_code(), static_cast<int>(absl::StatusCode::kInvalidArgument));
  EXPECT_TRUE(ResponseSays(refused, std::to_string(limits::kMaxClientNameBytes))) << refused.status_message();
  EXPECT_FALSE(h->attached());
}

TEST_F(SessionHandlerTest, EachOperationAnswersInItsOwnField) {
  auto h = NewHandler(1);
  ASSERT_EQ(Attach(*h).status_code(), 0);
  v1::SessionResponse a = Allocate(*h, 1000);
  ASSERT_EQ(a.status_code(), 0) << a.status_message();
  ASSERT_TRUE(a.has_buffer());
  EXPECT_GE(a.buffer().capacity_bytes(), 1000u);
  const uint64_t handle = a.buffer().handle();

  v1::SessionRequest retain;
  retain.mutable_retain()->set_handle(handle);
  v1::SessionResponse retained = Handle(*h, retain);
  EXPECT_EQ(retained.buffer().offset_bytes(), a.buffer().offset_bytes());

  v1::SessionRequest query;
  query.mutable_query()->add_handles(handle);
  v1::SessionResponse counted = Handle(*h, query);
  ASSERT_EQ(counted.references().handles_size(), 1);
  EXPECT_EQ(counted.references().handles(0).references(), 2u);
  EXPECT_EQ(counted.references().handles(0).held(), 2u);

  v1::SessionRequest release;
  release.mutable_release()->set_handle(handle);
  EXPECT_FALSE(Handle(*h, release).release().freed()) << "one reference is left";
  EXPECT_TRUE(Handle(*h, release).release().freed());
  EXPECT_EQ(Live(), 0u);

  v1::SessionRequest batch;
  batch.mutable_allocate_batch()->set_size_bytes(64);
  batch.mutable_allocate_batch()->set_count(3);
  v1::SessionResponse three = Handle(*h, batch);
  ASSERT_EQ(three.buffers().buffers_size(), 3);
  v1::SessionRequest release_batch;
  for (const auto& b : three.buffers().buffers()) release_batch.mutable_release_batch()->add_handles(b.handle());
  EXPECT_EQ(Handle(*h, release_batch).release_batch().freed(), 3u);

  v1::SessionResponse empty = Handle(*h, v1::SessionRequest());
  EXPECT_EQ(empty.status_code(), static_cast<int>(absl::StatusCode::kInvalidArgument));
  EXPECT_TRUE(ResponseSays(empty, "carries no operation")) << empty.status_message();
}

TEST_F(SessionHandlerTest, BatchesOverTheWireLimitChangeNothing) {
  auto h = NewHandler(1);
  ASSERT_EQ(Attach(*h).status_code(), 0);
  v1::SessionResponse kept = Allocate(*h, 64);
  ASSERT_EQ(kept.status_code(), 0);
  const uint64_t handle = kept.buffer().handle();
  const std::string limit = std::to_string(limits::kMaxBatch);

  v1::SessionRequest batch;
  batch.mutable_allocate_batch()->set_size_bytes(64);
  batch.mutable_allocate_batch()->set_count(limits::kMaxBatch + 1);
  v1::SessionResponse r = Handle(*h, batch);
  EXPECT_EQ(r.status_code(), static_cast<int>(absl::StatusCode::kInvalidArgument));
  EXPECT_TRUE(ResponseSays(r, limit)) << r.status_message();
  batch.mutable_allocate_batch()->set_count(0);
  EXPECT_EQ(Handle(*h, batch).status_code(), static_cast<int>(absl::StatusCode::kInvalidArgument));

  v1::SessionRequest release_batch, query, release_first;
  for (uint32_t i = 0; i <= limits::kMaxBatch; ++i) {
    release_batch.mutable_release_batch()->add_handles(handle);
    query.mutable_query()->add_handles(handle);
    release_first.add_release_first(handle);
  }
  release_first.mutable_query()->add_handles(handle);
  for (const v1::SessionRequest& over : {release_batch, query, release_first}) {
    v1::SessionResponse refused = Handle(*h, over);
    EXPECT_EQ(refused.status_code(), static_cast<int>(absl::StatusCode::kInvalidArgument));
    EXPECT_TRUE(ResponseSays(refused, limit)) << refused.status_message();
  }
  v1::SessionRequest reclaim;
  for (uint32_t i = 0; i <= limits::kMaxReclaimEntries; ++i) {
    reclaim.mutable_reclaim()->add_held()->set_handle(handle);
  }
  v1::SessionResponse refused = Handle(*h, reclaim);
  EXPECT_EQ(refused.status_code(), static_cast<int>(absl::StatusCode::kInvalidArgument));
  EXPECT_TRUE(ResponseSays(refused, std::to_string(limits::kMaxReclaimEntries))) << refused.status_message();

  EXPECT_EQ(Live(), 1u) << "refused requests release nothing";
  EXPECT_EQ(pool_->Stats().allocs, 1u) << "refused requests allocate nothing";
}

TEST_F(SessionHandlerTest, ReleaseFirstGoesBeforeTheOperation) {
  auto h = NewHandler(1);
  ASSERT_EQ(Attach(*h).status_code(), 0);
  const uint64_t handle = Allocate(*h, 64).buffer().handle();
  v1::SessionRequest query;
  query.add_release_first(handle);
  query.mutable_query()->add_handles(handle);
  v1::SessionResponse r = Handle(*h, query);
  ASSERT_EQ(r.status_code(), 0) << r.status_message();
  EXPECT_EQ(r.references().handles(0).references(), 0u) << "released before the query ran";
  EXPECT_EQ(Live(), 0u);
}

TEST_F(SessionHandlerTest, CloseRequestReleasesEverythingAndEndsTheSession) {
  auto h = NewHandler(1);
  ASSERT_EQ(Attach(*h).status_code(), 0);
  Allocate(*h, 64);
  Allocate(*h, 64);
  v1::SessionRequest close;
  close.mutable_close();
  v1::SessionResponse closed = Handle(*h, close);
  EXPECT_EQ(closed.closed().released(), 2u);
  EXPECT_EQ(Live(), 0u);
  h->Close();
  v1::SessionResponse after = Allocate(*h, 64);
  EXPECT_EQ(after.status_code(), static_cast<int>(absl::StatusCode::kFailedPrecondition));
  EXPECT_TRUE(ResponseSays(after, "closed")) << after.status_message();
}

TEST_F(SessionHandlerTest, AStreamEndingUnderALiveProcessKeepsItsReferences) {
  auto h = NewHandler(1);
  ASSERT_EQ(Attach(*h).status_code(), 0);
  Allocate(*h, 64);
  h.reset();  // no close request, and this process (the peer) lives
  EXPECT_EQ(Live(), 1u) << "the process may still write to the buffer";
}

}  // namespace
}  // namespace memd
