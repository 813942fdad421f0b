// SessionLane and LaneRegistry without gRPC: this test is the lane's client
// (it maps the memfd and writes the rings as ClientLane would), and the
// lane serves its requests through a plain function.
#include "lane/lane_registry.h"
#include "lane/session_lane.h"

#include <sys/mman.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <mutex>
#include <string>

#include <gtest/gtest.h>

#include "absl/synchronization/notification.h"
#include "memd/shared/lane.h"

namespace memd {
namespace {

// The client's view of one lane object.
class LaneClient {
 public:
  explicit LaneClient(int fd)
      : base_(::mmap(nullptr, lane::kObjectBytes, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0)) {}
  ~LaneClient() {
    if (base_ != MAP_FAILED) ::munmap(base_, lane::kObjectBytes);
  }
  bool mapped() const { return base_ != MAP_FAILED; }
  lane::Header* header() { return static_cast<lane::Header*>(base_); }

  void Submit(std::string_view payload) {
    sub_tail_ = lane::WriteEntry(lane::SubmissionRing(base_), sub_tail_, payload);
    header()->sub_tail.store(sub_tail_);
    lane::RingDoorbell(header());
  }
  // The next completion, waiting for it (bounded: the test fails, not hangs).
  std::optional<v1::SessionResponse> Next() {
    for (int i = 0; i < 500 && header()->comp_tail.load() == comp_head_; ++i) {
      lane::FutexWait(&header()->comp_tail, comp_head_, absl::Milliseconds(20));
    }
    std::string payload, why;
    std::optional<uint32_t> next = lane::ReadEntry(lane::CompletionRing(base_), comp_head_,
                                                   header()->comp_tail.load(), &payload, &why);
    if (!next) return std::nullopt;
    comp_head_ = *next;
    header()->comp_head.store(comp_head_);
    v1::SessionResponse response;
    if (!response.ParseFromString(payload)) return std::nullopt;
    return response;
  }

 private:
  void* const base_;
  uint32_t sub_tail_ = 0;
  uint32_t comp_head_ = 0;
};

// Answers every request with its id and, in status_message, its size.
SessionLane::Serve Echo() {
  return [](SessionLane& lane, const v1::SessionRequest& request) {
    v1::SessionResponse r;
    r.set_request_id(request.request_id());
    r.set_status_message(std::to_string(request.allocate().size_bytes()));
    lane.Complete(r);
  };
}

TEST(SessionLaneTest, ServesSubmissionsInOrderAndAnswersOnTheCompletionRing) {
  LaneRegistry lanes("lanetest", 4);
  absl::StatusOr<std::unique_ptr<SessionLane>> lane =
      lanes.Open(7, Echo(), [](const std::string& why) { ADD_FAILURE() << why; });
  ASSERT_TRUE(lane.ok()) << lane.status();
  EXPECT_NE((*lane)->object_name().find("lanetest"), std::string::npos) << "named after the instance";
  LaneClient client((*lane)->fd());
  ASSERT_TRUE(client.mapped());
  EXPECT_EQ(client.header()->magic, lane::kMagic);
  EXPECT_EQ(client.header()->session_id, 7u);
  for (uint64_t id = 1; id <= 3; ++id) {
    v1::SessionRequest request;
    request.set_request_id(id);
    request.mutable_allocate()->set_size_bytes(100 * id);
    client.Submit(request.SerializeAsString());
  }
  for (uint64_t id = 1; id <= 3; ++id) {
    std::optional<v1::SessionResponse> r = client.Next();
    ASSERT_TRUE(r.has_value()) << "completion " << id;
    EXPECT_EQ(r->request_id(), id);
    EXPECT_EQ(r->status_message(), std::to_string(100 * id));
  }
  (*lane)->Stop();
  EXPECT_EQ(client.header()->closed.load(), 1u) << "a stopped lane tells its client";
  lanes.Closed();
}

TEST(SessionLaneTest, AnEntryThatCannotBeRightEndsTheLane) {
  LaneRegistry lanes("lanetest", 4);
  // std::mutex, not absl's: ThreadSanitizer sees pthread locks, not the
  // uninstrumented abseil of the system (its Notification included).
  std::mutex mu;
  std::condition_variable changed;
  std::string reason;
  absl::StatusOr<std::unique_ptr<SessionLane>> lane =
      lanes.Open(8, Echo(), [&](const std::string& why) {
        std::lock_guard<std::mutex> lock(mu);
        reason = why;
        changed.notify_all();
      });
  ASSERT_TRUE(lane.ok()) << lane.status();
  LaneClient client((*lane)->fd());
  ASSERT_TRUE(client.mapped());
  // A tail more than a whole ring ahead of what the daemon consumed.
  client.header()->sub_tail.store(lane::kRingBytes + 64);
  lane::RingDoorbell(client.header());
  {
    std::unique_lock<std::mutex> lock(mu);
    EXPECT_TRUE(changed.wait_for(lock, std::chrono::seconds(10), [&] { return !reason.empty(); }))
        << "the lane reports the entry that cannot be right";
  }
  (*lane)->Stop();
  lanes.Closed();
}

TEST(LaneRegistryTest, CountsLanesWithinTheLimit) {
  LaneRegistry off("lanetest", 0);
  absl::StatusOr<std::unique_ptr<SessionLane>> none = off.Open(1, Echo(), nullptr);
  EXPECT_TRUE(absl::IsFailedPrecondition(none.status())) << none.status();

  LaneRegistry lanes("lanetest", 1);
  absl::StatusOr<std::unique_ptr<SessionLane>> first = lanes.Open(1, Echo(), nullptr);
  ASSERT_TRUE(first.ok()) << first.status();
  EXPECT_EQ(lanes.open(), 1);
  absl::StatusOr<std::unique_ptr<SessionLane>> second = lanes.Open(2, Echo(), nullptr);
  EXPECT_TRUE(absl::IsResourceExhausted(second.status())) << second.status();
  EXPECT_NE(second.status().message().find("the limit is 1"), absl::string_view::npos)
      << second.status();
  EXPECT_EQ(lanes.open(), 1) << "a refused lane takes no place";
  (*first)->Stop();
  lanes.Closed();
  EXPECT_EQ(lanes.open(), 0);
  absl::StatusOr<std::unique_ptr<SessionLane>> again = lanes.Open(3, Echo(), nullptr);
  EXPECT_TRUE(again.ok()) << "a closed lane's place is free: " << again.status();
  (*again)->Stop();
  lanes.Closed();
}

}  // namespace
}  // namespace memd
