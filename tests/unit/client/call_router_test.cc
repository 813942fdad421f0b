// CallRouter without a daemon: its transport is two functions, so these
// tests give it an in-process one that answers whatever was sent (in
// reverse order, so answers meet callers other than the reader).
#include "call_router.h"

#include <string>
#include <thread>
#include <vector>

#include <gtest/gtest.h>

#include "memd/shared/limits.h"

namespace memd {
namespace {

class Transport {
 public:
  CallRouter::Send Sender() {
    return [this](const v1::SessionRequest& request, bool wake) {
      MutexLock lock(&mu_);
      if (!send_error_.ok()) return send_error_;
      pending_.push_back(request);
      wakes_.push_back(wake);
      return absl::OkStatus();
    };
  }
  CallRouter::Read Reader() {
    return [this](std::vector<v1::SessionResponse>* out, bool any) {
      MutexLock lock(&mu_);
      any_seen_ |= any;
      if (!read_error_.ok()) return read_error_;
      for (auto it = pending_.rbegin(); it != pending_.rend(); ++it) {
        v1::SessionResponse r;
        r.set_request_id(it->request_id());
        r.mutable_release()->set_freed(it->posted());  // says what the daemon saw
        r.set_status_message(it->release_batch().handles_size() > 0 ? "batch" : "");
        out->push_back(std::move(r));
      }
      pending_.clear();
      return absl::OkStatus();
    };
  }
  void FailReads(absl::Status s) {
    MutexLock lock(&mu_);
    read_error_ = std::move(s);
  }
  std::vector<bool> wakes() {
    MutexLock lock(&mu_);
    return wakes_;
  }
  bool any_seen() {
    MutexLock lock(&mu_);
    return any_seen_;
  }

 private:
  Mutex mu_;
  std::vector<v1::SessionRequest> pending_ ABSL_GUARDED_BY(mu_);
  std::vector<bool> wakes_ ABSL_GUARDED_BY(mu_);
  absl::Status send_error_ ABSL_GUARDED_BY(mu_);
  absl::Status read_error_ ABSL_GUARDED_BY(mu_);
  bool any_seen_ ABSL_GUARDED_BY(mu_) = false;
};

v1::SessionRequest Release(uint64_t handle) {
  v1::SessionRequest r;
  r.mutable_release()->set_handle(handle);
  return r;
}

TEST(CallRouterTest, EachCallerGetsItsOwnAnswer) {
  Transport t;
  CallRouter router(t.Sender(), t.Reader());
  absl::StatusOr<v1::SessionResponse> one = router.Call(Release(1));
  ASSERT_TRUE(one.ok()) << one.status();
  EXPECT_EQ(one->request_id(), 1u) << "ids are assigned by the router, from 1";
  EXPECT_FALSE(one->release().freed()) << "a call is not posted";

  // Many threads at once: whoever reads hands the others their answers.
  constexpr int kThreads = 8, kCalls = 200;
  std::vector<std::thread> threads;
  std::atomic<int> mismatched{0};
  for (int i = 0; i < kThreads; ++i) {
    threads.emplace_back([&] {
      for (int c = 0; c < kCalls; ++c) {
        v1::SessionRequest request = Release(c);
        if (c % 2 == 0) request.mutable_release_batch()->add_handles(c);
        absl::StatusOr<v1::SessionResponse> r = router.Call(request);
        if (!r.ok() || (r->status_message() == "batch") != (c % 2 == 0)) ++mismatched;
      }
    });
  }
  for (std::thread& thread : threads) thread.join();
  EXPECT_EQ(mismatched.load(), 0) << "an answer reached the wrong caller";
}

TEST(CallRouterTest, PostedRequestsAreCollectedOnce) {
  Transport t;
  CallRouter router(t.Sender(), t.Reader());
  absl::StatusOr<uint64_t> id = router.Post(Release(5), /*wake=*/false);
  ASSERT_TRUE(id.ok()) << id.status();
  EXPECT_EQ(t.wakes(), std::vector<bool>{false}) << "the wake choice reaches the transport";
  absl::StatusOr<v1::SessionResponse> answer = router.Collect(*id);
  ASSERT_TRUE(answer.ok()) << answer.status();
  EXPECT_TRUE(answer->release().freed()) << "the request went out marked posted";
  EXPECT_TRUE(t.any_seen()) << "a collector asks the transport to wake for posted answers";
  absl::StatusOr<v1::SessionResponse> again = router.Collect(*id);
  EXPECT_TRUE(absl::IsInvalidArgument(again.status())) << again.status();
}

TEST(CallRouterTest, AReadErrorBreaksEveryCallWithItsReason) {
  Transport t;
  CallRouter router(t.Sender(), t.Reader());
  absl::StatusOr<uint64_t> posted = router.Post(Release(5));
  ASSERT_TRUE(posted.ok());
  t.FailReads(absl::UnavailableError("stream closed by the daemon"));
  absl::StatusOr<v1::SessionResponse> call = router.Call(Release(1));
  EXPECT_TRUE(absl::IsUnavailable(call.status())) << call.status();
  EXPECT_NE(call.status().message().find("stream closed"), absl::string_view::npos);
  EXPECT_TRUE(router.broken());
  absl::StatusOr<v1::SessionResponse> collected = router.Collect(*posted);
  EXPECT_TRUE(absl::IsUnavailable(collected.status())) << collected.status();
  router.Break("a later reason");
  absl::StatusOr<v1::SessionResponse> later = router.Call(Release(2));
  EXPECT_NE(later.status().message().find("stream closed"), absl::string_view::npos)
      << "the first reason stays: " << later.status();
}

// Issue 24, defect 9: a request past one session message reached the daemon,
// which ended the stream under every caller. The router refuses it itself.
TEST(CallRouterTest, ARequestLargerThanASessionMessageIsRefusedUnsentAndNothingBreaks) {
  Transport t;
  CallRouter router(t.Sender(), t.Reader());
  v1::SessionRequest huge;
  huge.mutable_send()->set_channel("c");
  huge.mutable_send()->set_metadata(std::string(limits::kMaxSessionRequestBytes, 'm'));
  absl::StatusOr<v1::SessionResponse> call = router.Call(huge);
  ASSERT_TRUE(call.ok()) << "an operation error, not a broken transport: " << call.status();
  EXPECT_EQ(call->status_code(), static_cast<int32_t>(absl::StatusCode::kResourceExhausted));
  EXPECT_NE(call->status_message().find("exceeds the limit of 65536 bytes of one session "
                                        "message (nothing was sent)"),
            std::string::npos)
      << call->status_message();
  absl::StatusOr<uint64_t> posted = router.Post(huge);
  ASSERT_TRUE(posted.ok()) << posted.status();
  absl::StatusOr<v1::SessionResponse> collected = router.Collect(*posted);
  ASSERT_TRUE(collected.ok()) << collected.status();
  EXPECT_EQ(collected->status_code(), static_cast<int32_t>(absl::StatusCode::kResourceExhausted));
  EXPECT_TRUE(t.wakes().empty()) << "nothing reached the transport";
  EXPECT_FALSE(router.broken());
  absl::StatusOr<v1::SessionResponse> next = router.Call(Release(1));
  ASSERT_TRUE(next.ok()) << next.status();
  EXPECT_EQ(next->status_code(), 0);
}

}  // namespace
}  // namespace memd
