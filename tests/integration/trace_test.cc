// `memctl trace` (issue 27) against a real memd and a real three-process
// pipeline (memd_trace_client: producer -> raw -> filter -> out -> consumer):
// the file parses as the Trace Event Format, each process's track carries
// its pid and name, every frame's flow starts at the producer, passes the
// filter and ends at the consumer; and the bounds of a recording refuse bad
// values naming the limit.
#include <unistd.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <map>
#include <set>
#include <string>
#include <vector>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "daemon_env.h"

namespace memd::testing {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;

std::string TraceClientBinary() { return MEMD_TRACE_CLIENT_BINARY; }

// A private file name for the trace, removed afterwards.
class TempFile {
 public:
  TempFile() : path_(fs::temp_directory_path() / ("memd-trace-" + UniqueInstanceName() + ".json")) {}
  ~TempFile() { fs::remove(path_); }
  std::string path() const { return path_.string(); }

 private:
  fs::path path_;
};

// Waits for "ready" from a pipeline stage.
void ExpectReady(Subprocess& stage, const char* role) {
  std::optional<std::string> line = stage.ReadLine(std::chrono::seconds(30));
  ASSERT_TRUE(line.has_value()) << role << " ended before it attached";
  ASSERT_EQ(*line, "ready") << role;
}

// memctl with its stderr in the output (RunCommand keeps stdout only).
std::pair<int, std::string> Memctl(const DaemonEnv& daemon, const std::string& args) {
  return RunCommand({"/bin/sh", "-c",
                     MemctlBinary() + " --address " + daemon.address() + " " + args + " 2>&1"});
}

// `memctl trace` for at most 600 s into `path` (plus `options`): the tests
// stop it with SIGINT once their traffic is done.
std::vector<std::string> TraceArgv(const DaemonEnv& daemon, const std::string& path,
                                   std::vector<std::string> options = {}) {
  std::vector<std::string> argv = {MemctlBinary(), "--address", daemon.address(), "trace",
                                   "--seconds", "600"};
  argv.insert(argv.end(), options.begin(), options.end());
  argv.insert(argv.end(), {"-o", path});
  return argv;
}

TEST(TraceTest, EveryFrameFlowsFromProducerThroughFilterToConsumer) {
  constexpr int kFrames = 24;
  DaemonEnv daemon;
  ASSERT_TRUE(daemon.ok());
  TempFile file;
  Subprocess memctl(TraceArgv(daemon, file.path()));
  std::optional<std::string> started = memctl.ReadLine(std::chrono::seconds(30));
  ASSERT_TRUE(started.has_value());
  ASSERT_EQ(started->rfind("tracing every pool for 600 s", 0), 0u) << *started;

  auto env = daemon.ClientEnv();
  Subprocess consumer({TraceClientBinary(), "consume", "out", std::to_string(kFrames)}, env);
  Subprocess filter({TraceClientBinary(), "forward", "raw", "out", std::to_string(kFrames)}, env);
  ExpectReady(consumer, "consumer");
  ExpectReady(filter, "filter");
  Subprocess producer({TraceClientBinary(), "produce", "raw", std::to_string(kFrames), "65536"},
                      env);
  ExpectReady(producer, "producer");
  for (Subprocess* stage : {&producer, &filter, &consumer}) {
    EXPECT_EQ(stage->ReadLine(std::chrono::seconds(60)), "done");
    EXPECT_EQ(ExitCode(stage->Wait(std::chrono::seconds(30))), 0);
  }
  // Ctrl-C ends the recording early; memctl still writes the file.
  memctl.Kill(SIGINT);
  std::string said = memctl.ReadAll(std::chrono::seconds(60));
  ASSERT_EQ(ExitCode(memctl.Wait(std::chrono::seconds(30))), 0) << said;
  EXPECT_NE(said.find("to " + file.path()), std::string::npos) << said;

  std::ifstream in(file.path());
  json doc = json::parse(in);  // throws (and fails the test) unless it parses
  ASSERT_TRUE(doc["traceEvents"].is_array());

  // Each process track is named after the process with that pid.
  std::map<int64_t, std::string> process_names;
  for (const json& e : doc["traceEvents"]) {
    if (e["ph"] == "M" && e["name"] == "process_name") {
      process_names[e["pid"].get<int64_t>()] = e["args"]["name"].get<std::string>();
    }
  }
  EXPECT_EQ(process_names[producer.pid()], "producer");
  EXPECT_EQ(process_names[filter.pid()], "filter");
  EXPECT_EQ(process_names[consumer.pid()], "consumer");
  EXPECT_EQ(process_names[daemon.pid()], "memd");

  // Operations sit on their process's track.
  std::map<std::string, std::set<int64_t>> slice_pids;
  std::map<std::string, int> slices;
  for (const json& e : doc["traceEvents"]) {
    if (e["ph"] != "X") continue;
    slice_pids[e["name"].get<std::string>()].insert(e["pid"].get<int64_t>());
    ++slices[e["name"].get<std::string>()];
  }
  EXPECT_EQ(slice_pids["allocate"], std::set<int64_t>{producer.pid()});
  EXPECT_EQ(slice_pids["send raw"], std::set<int64_t>{producer.pid()});
  EXPECT_EQ(slice_pids["receive raw"], std::set<int64_t>{filter.pid()});
  EXPECT_EQ(slice_pids["send out"], std::set<int64_t>{filter.pid()});
  EXPECT_EQ(slice_pids["receive out"], std::set<int64_t>{consumer.pid()});
  EXPECT_EQ(slice_pids["release"], std::set<int64_t>{consumer.pid()});
  EXPECT_EQ(slices["allocate"], kFrames);
  EXPECT_EQ(slices["receive out"], kFrames);
  EXPECT_EQ(slices["release"], kFrames);

  // Every frame's flow: starts at the producer, steps through the filter,
  // ends at the consumer, forward in time.
  std::map<uint64_t, std::vector<json>> flows;
  for (const json& e : doc["traceEvents"]) {
    if (e["ph"] == "s" || e["ph"] == "t" || e["ph"] == "f") flows[e["id"].get<uint64_t>()].push_back(e);
  }
  EXPECT_EQ(flows.size(), static_cast<size_t>(kFrames));
  for (const auto& [id, steps] : flows) {
    ASSERT_EQ(steps.size(), 4u) << "flow " << id;
    EXPECT_EQ(steps.front()["ph"], "s");
    EXPECT_EQ(steps.front()["pid"].get<int64_t>(), producer.pid()) << "flow " << id;
    EXPECT_EQ(steps[1]["pid"].get<int64_t>(), filter.pid()) << "flow " << id;
    EXPECT_EQ(steps[2]["pid"].get<int64_t>(), filter.pid()) << "flow " << id;
    EXPECT_EQ(steps.back()["ph"], "f");
    EXPECT_EQ(steps.back()["pid"].get<int64_t>(), consumer.pid()) << "flow " << id;
    for (size_t k = 1; k < steps.size(); ++k) {
      EXPECT_LE(steps[k - 1]["ts"].get<double>(), steps[k]["ts"].get<double>()) << "flow " << id;
    }
  }

  // The channels' depths are counters of the daemon's track, within capacity.
  int depth_samples = 0;
  for (const json& e : doc["traceEvents"]) {
    if (e["ph"] != "C") continue;
    EXPECT_EQ(e["pid"].get<int64_t>(), daemon.pid());
    EXPECT_LE(e["args"]["messages"].get<int>(), 4);
    ++depth_samples;
  }
  EXPECT_EQ(depth_samples, 4 * kFrames);  // a send and a receive on each of two channels
}

TEST(TraceTest, ChannelOptionKeepsOnlyBuffersThatWentThroughIt) {
  DaemonEnv daemon;
  ASSERT_TRUE(daemon.ok());
  TempFile file;
  Subprocess memctl(TraceArgv(daemon, file.path(), {"--channel", "out"}));
  ASSERT_TRUE(memctl.ReadLine(std::chrono::seconds(30)).has_value());
  auto env = daemon.ClientEnv();
  // Two frames go raw -> out; a third buffer stays in 'raw' (nobody forwards it).
  Subprocess consumer({TraceClientBinary(), "consume", "out", "2"}, env);
  Subprocess filter({TraceClientBinary(), "forward", "raw", "out", "2"}, env);
  ExpectReady(consumer, "consumer");
  ExpectReady(filter, "filter");
  Subprocess producer({TraceClientBinary(), "produce", "raw", "3", "4096"}, env);
  ExpectReady(producer, "producer");
  for (Subprocess* stage : {&producer, &filter, &consumer}) {
    EXPECT_EQ(stage->ReadLine(std::chrono::seconds(60)), "done");
  }
  memctl.Kill(SIGINT);
  memctl.ReadAll(std::chrono::seconds(60));
  ASSERT_EQ(ExitCode(memctl.Wait(std::chrono::seconds(30))), 0);

  std::ifstream in(file.path());
  json doc = json::parse(in);
  std::map<std::string, int> slices;
  for (const json& e : doc["traceEvents"]) {
    if (e["ph"] == "X") ++slices[e["name"].get<std::string>()];
  }
  EXPECT_EQ(slices["send out"], 2);
  EXPECT_EQ(slices["receive out"], 2);
  EXPECT_EQ(slices["send raw"], 0);     // channel events of other channels are not recorded
  EXPECT_EQ(slices["allocate"], 2);     // the third buffer never went through 'out'
}

// One buffer shared into a channel again and again (a pool recycling its
// buffers): each send starts a flow of its own, from producer to consumer,
// and the producer's hold lasts the whole recording.
TEST(TraceTest, ABufferSentAgainStartsAFlowPerSend) {
  constexpr int kSends = 5;
  DaemonEnv daemon;
  ASSERT_TRUE(daemon.ok());
  TempFile file;
  Subprocess memctl(TraceArgv(daemon, file.path()));
  ASSERT_TRUE(memctl.ReadLine(std::chrono::seconds(30)).has_value());
  auto env = daemon.ClientEnv();
  Subprocess consumer({TraceClientBinary(), "consume", "raw", std::to_string(kSends)}, env);
  ExpectReady(consumer, "consumer");
  Subprocess producer({TraceClientBinary(), "resend", "raw", std::to_string(kSends), "4096"}, env);
  ExpectReady(producer, "producer");
  EXPECT_EQ(producer.ReadLine(std::chrono::seconds(60)), "done");
  EXPECT_EQ(consumer.ReadLine(std::chrono::seconds(60)), "done");
  memctl.Kill(SIGINT);
  memctl.ReadAll(std::chrono::seconds(60));
  ASSERT_EQ(ExitCode(memctl.Wait(std::chrono::seconds(30))), 0);

  std::ifstream in(file.path());
  json doc = json::parse(in);
  std::map<uint64_t, std::vector<json>> flows;
  int producer_holds = 0, still_held = 0;
  for (const json& e : doc["traceEvents"]) {
    if (e["ph"] == "s" || e["ph"] == "t" || e["ph"] == "f") flows[e["id"].get<uint64_t>()].push_back(e);
    if (e["cat"] == "hold" && e["ph"] == "b" && e["pid"].get<int64_t>() == producer.pid()) {
      ++producer_holds;
    }
    if (e["cat"] == "hold" && e["ph"] == "e" && e.contains("args") && e["args"].contains("still_held")) {
      ++still_held;
    }
  }
  EXPECT_EQ(flows.size(), static_cast<size_t>(kSends));
  for (const auto& [id, steps] : flows) {
    ASSERT_EQ(steps.size(), 2u) << "flow " << id;
    EXPECT_EQ(steps.front()["pid"].get<int64_t>(), producer.pid()) << "flow " << id;
    EXPECT_EQ(steps.back()["pid"].get<int64_t>(), consumer.pid()) << "flow " << id;
  }
  EXPECT_EQ(producer_holds, 1);  // shared sends keep the producer's one reference
  EXPECT_EQ(still_held, 1);      // ... until the recording ended
}

// `memctl channel drain` releases what the queued messages held: each of
// those releases is in the recording (issue 24), on the daemon's track, and
// ends the buffer's "queued in" slice.
TEST(TraceTest, ADrainsReleasesAreRecordedLikeOtherReleases) {
  constexpr int kFrames = 6;
  DaemonEnv daemon;
  ASSERT_TRUE(daemon.ok());
  TempFile file;
  Subprocess memctl(TraceArgv(daemon, file.path()));
  ASSERT_TRUE(memctl.ReadLine(std::chrono::seconds(30)).has_value());
  Subprocess writer({TestClientBinary(), "send", "backlog", std::to_string(kFrames), "4096", "7"},
                    daemon.ClientEnv());
  ASSERT_EQ(writer.ReadLine(), "sent");
  auto [code, out] = RunMemctl(daemon, {"channel", "drain", "default/backlog"});
  ASSERT_EQ(code, 0) << out;
  EXPECT_EQ(daemon.PoolStats().live_buffers(), 0u) << "moved into the messages, then released";
  memctl.Kill(SIGINT);
  memctl.ReadAll(std::chrono::seconds(60));
  ASSERT_EQ(ExitCode(memctl.Wait(std::chrono::seconds(30))), 0);
  writer.CloseStdin();
  writer.Wait();

  std::ifstream in(file.path());
  json doc = json::parse(in);
  std::multiset<std::string> sent, drained;
  int queue_ends = 0, still_queued = 0;
  for (const json& e : doc["traceEvents"]) {
    if (e["ph"] == "X" && e["name"] == "send backlog") {
      EXPECT_EQ(e["pid"].get<int64_t>(), writer.pid());
      sent.insert(e["args"]["handle"].get<std::string>());
    }
    if (e["ph"] == "X" && e["name"] == "drain backlog") {
      EXPECT_EQ(e["pid"].get<int64_t>(), daemon.pid());
      EXPECT_EQ(e["args"]["channel"], "backlog");
      drained.insert(e["args"]["handle"].get<std::string>());
    }
    if (e["cat"] == "queue" && e["ph"] == "e") {
      ++queue_ends;
      if (e.contains("args") && e["args"].contains("still_queued")) ++still_queued;
    }
  }
  EXPECT_EQ(sent.size(), static_cast<size_t>(kFrames));
  EXPECT_EQ(drained, sent) << "each drained message's reference shows as released";
  EXPECT_EQ(queue_ends, kFrames);
  EXPECT_EQ(still_queued, 0) << "the drain ended every buffer's wait in the channel";
}

TEST(TraceTest, BadBoundsAreRefusedNamingTheLimitAndStartNothing) {
  DaemonEnv daemon;
  ASSERT_TRUE(daemon.ok());
  TempFile file;
  auto [events_code, events_out] =
      Memctl(daemon, "trace --seconds 1 --max-events 1000001 -o " + file.path());
  EXPECT_EQ(events_code, 1) << events_out;
  EXPECT_NE(events_out.find("1000001"), std::string::npos) << events_out;
  EXPECT_NE(events_out.find("the limit is 1000000"), std::string::npos) << events_out;

  auto [pool_code, pool_out] = Memctl(daemon, "trace --seconds 1 --pool nope -o " + file.path());
  EXPECT_EQ(pool_code, 1) << pool_out;
  EXPECT_NE(pool_out.find("no pool named 'nope'"), std::string::npos) << pool_out;

  auto [seconds_code, seconds_out] = Memctl(daemon, "trace --seconds 601 -o " + file.path());
  EXPECT_EQ(seconds_code, 2) << seconds_out;
  EXPECT_NE(seconds_out.find("601"), std::string::npos) << seconds_out;
  EXPECT_NE(seconds_out.find("600"), std::string::npos) << seconds_out;

  auto [file_code, file_out] = Memctl(daemon, "trace --seconds 1 -o /nonexistent-dir/t.json");
  EXPECT_EQ(file_code, 2) << file_out;
  EXPECT_NE(file_out.find("cannot write the trace to '/nonexistent-dir/t.json'"),
            std::string::npos) << file_out;

  // None of these started a recording: one may start now, and a second one
  // while it runs is refused, saying so.
  Subprocess running(TraceArgv(daemon, file.path()));
  ASSERT_TRUE(running.ReadLine(std::chrono::seconds(30)).has_value());
  TempFile other;
  auto [busy_code, busy_out] = Memctl(daemon, "trace --seconds 1 -o " + other.path());
  EXPECT_EQ(busy_code, 1) << busy_out;
  EXPECT_NE(busy_out.find("is running for another"), std::string::npos) << busy_out;
  running.Kill(SIGINT);
  running.ReadAll(std::chrono::seconds(60));
  EXPECT_EQ(ExitCode(running.Wait(std::chrono::seconds(30))), 0);
}

}  // namespace
}  // namespace memd::testing
