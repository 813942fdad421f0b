// trace::Recorder: off costs nothing recorded, a recording keeps what its
// filters let through, stops when full or read with stop, pages, and frees
// its events once read to the end.
#include "trace/recorder.h"

#include <gtest/gtest.h>

namespace memd::trace {
namespace {

Options For(absl::Duration duration, uint32_t max_events) {
  Options options;
  options.duration = duration;
  options.max_events = max_events;
  return options;
}

TEST(RecorderTest, RecordsNothingWhileNoRecordingRuns) {
  Recorder recorder;
  EXPECT_FALSE(recorder.active());
  recorder.Record(Kind::kAllocate, 0, 1, 7, 64);
  EXPECT_TRUE(absl::IsNotFound(recorder.Read(1, 0, 10, true).status()));
}

TEST(RecorderTest, KeepsEventsInOrderWithTimesSinceTheStartAndTheSessions) {
  Recorder recorder;
  absl::StatusOr<uint64_t> id =
      recorder.Start(For(absl::Hours(1), 100), {SessionInfo{5, 1234, 0, "decoder", "dec"}});
  ASSERT_TRUE(id.ok());
  recorder.NoteSession(SessionInfo{6, 1235, 0, "encoder", ""});
  recorder.Record(Kind::kAllocate, 0, 5, 7, 64);
  recorder.Record(Kind::kSend, 0, 5, 7, 0, "raw", 1, true);
  recorder.Record(Kind::kReceive, 0, 6, 7, 64, "raw", 0);
  recorder.Record(Kind::kRelease, 0, 6, 7, 0);
  absl::StatusOr<Snapshot> got = recorder.Read(*id, 0, 100, /*stop=*/true);
  ASSERT_TRUE(got.ok()) << got.status();
  ASSERT_EQ(got->events.size(), 4u);
  EXPECT_EQ(got->events[1].kind, Kind::kSend);
  EXPECT_EQ(got->events[1].depth, 1u);
  EXPECT_TRUE(got->events[1].moved);
  EXPECT_EQ(got->channels, std::vector<std::string>{"raw"});
  EXPECT_EQ(got->events[2].channel, 0u);
  for (size_t i = 1; i < got->events.size(); ++i) {
    EXPECT_LE(got->events[i - 1].time_ns, got->events[i].time_ns);
  }
  EXPECT_GE(got->events[0].time_ns, 0);
  EXPECT_LE(got->events[3].time_ns, got->duration_ns);
  ASSERT_EQ(got->sessions.size(), 2u);
  EXPECT_EQ(got->sessions[0].process_name, "decoder");
  EXPECT_EQ(got->sessions[1].pid, 1235);
  EXPECT_FALSE(got->running);
  EXPECT_FALSE(recorder.active());
  // Read to the end: its events are gone.
  EXPECT_TRUE(absl::IsNotFound(recorder.Read(*id, 0, 100, false).status()));
}

TEST(RecorderTest, FiltersByPoolAndChannel) {
  Recorder recorder;
  Options options = For(absl::Hours(1), 100);
  options.pool_index = 1;
  options.channel = "out";
  absl::StatusOr<uint64_t> id = recorder.Start(options, {});
  ASSERT_TRUE(id.ok());
  recorder.Record(Kind::kAllocate, 0, 5, 7, 64);           // other pool
  recorder.Record(Kind::kAllocate, 1, 5, 8, 64);           // kept
  recorder.Record(Kind::kSend, 1, 5, 8, 0, "raw", 1, true);  // other channel
  recorder.Record(Kind::kSend, 1, 5, 8, 0, "out", 1, true);  // kept
  absl::StatusOr<Snapshot> got = recorder.Read(*id, 0, 100, true);
  ASSERT_TRUE(got.ok());
  ASSERT_EQ(got->events.size(), 2u);
  EXPECT_EQ(got->events[0].handle, 8u);
  EXPECT_EQ(got->events[1].kind, Kind::kSend);
  EXPECT_EQ(got->channels, std::vector<std::string>{"out"});
}

TEST(RecorderTest, StopsWhenFullCountingWhatItLost) {
  Recorder recorder;
  absl::StatusOr<uint64_t> id = recorder.Start(For(absl::Hours(1), 3), {});
  ASSERT_TRUE(id.ok());
  for (uint64_t h = 1; h <= 5; ++h) recorder.Record(Kind::kAllocate, 0, 5, h, 64);
  EXPECT_FALSE(recorder.active());  // the hot path is back to one load
  absl::StatusOr<Snapshot> got = recorder.Read(*id, 0, 100, false);
  ASSERT_TRUE(got.ok());
  EXPECT_EQ(got->events.size(), 3u);
  EXPECT_EQ(got->lost_events, 1u);  // the first one that did not fit stopped it
}

TEST(RecorderTest, EndsWhenItsTimePasses) {
  Recorder recorder;
  absl::StatusOr<uint64_t> id = recorder.Start(For(absl::Nanoseconds(1), 100), {});
  ASSERT_TRUE(id.ok());
  // The clock moves past the recording's end (1 ns after its start) first.
  const int64_t started = MonotonicNs();
  while (MonotonicNs() <= started + 1) {}
  recorder.Record(Kind::kAllocate, 0, 5, 1, 64);
  EXPECT_FALSE(recorder.active());
  absl::StatusOr<Snapshot> got = recorder.Read(*id, 0, 100, false);
  ASSERT_TRUE(got.ok());
  EXPECT_TRUE(got->events.empty());
  // Another recording may start now.
  EXPECT_TRUE(recorder.Start(For(absl::Hours(1), 10), {}).ok());
}

TEST(RecorderTest, OneRecordingAtATimeAndPagesReadInOrder) {
  Recorder recorder;
  absl::StatusOr<uint64_t> id = recorder.Start(For(absl::Hours(1), 100), {});
  ASSERT_TRUE(id.ok());
  absl::StatusOr<uint64_t> second = recorder.Start(For(absl::Hours(1), 100), {});
  EXPECT_TRUE(absl::IsFailedPrecondition(second.status()));
  EXPECT_NE(second.status().message().find("is running for another"), std::string::npos);
  for (uint64_t h = 1; h <= 5; ++h) recorder.Record(Kind::kAllocate, 0, 5, h, 64);
  absl::StatusOr<Snapshot> first = recorder.Read(*id, 0, 2, true);
  ASSERT_TRUE(first.ok());
  EXPECT_EQ(first->events.size(), 2u);
  EXPECT_EQ(first->next, 2u);
  absl::StatusOr<Snapshot> rest = recorder.Read(*id, first->next, 10, false);
  ASSERT_TRUE(rest.ok());
  ASSERT_EQ(rest->events.size(), 3u);
  EXPECT_EQ(rest->events[0].handle, 3u);
  EXPECT_EQ(rest->next, 0u);
  EXPECT_TRUE(absl::IsNotFound(recorder.Read(*id + 1, 0, 10, false).status()));
}

}  // namespace
}  // namespace memd::trace
