// decode -> filter -> encode as three real processes on a real memd, with
// input made by the ffmpeg CLI's lavfi test source: frames decoded straight
// into pool memory reach the encoder by reference, the output decodes with
// every frame, and a filter killed mid-stream leaks nothing.
#include <signal.h>
#include <stdlib.h>

#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>
#include <sstream>

#include <gtest/gtest.h>

#include "daemon_env.h"
#include "memd/client.h"
#include "memd/ffmpeg.h"

namespace memd::testing {
namespace {

namespace fs = std::filesystem;

struct FrameLine {
  int64_t pts;
  std::string checksum;
};

std::vector<FrameLine> ReadChecksums(const std::string& path) {
  std::ifstream in(path);
  std::vector<FrameLine> lines;
  uint64_t index;
  FrameLine line;
  while (in >> index >> line.pts >> line.checksum) lines.push_back(line);
  return lines;
}

std::string ReadFile(const std::string& path) {
  std::ifstream in(path);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

// Frames a decoder finds in `path` (ffprobe -count_frames); -1 on failure.
int CountFrames(const std::string& path) {
  auto [code, out] = RunCommand({"/usr/bin/ffprobe", "-v", "error", "-count_frames", "-select_streams",
                                 "v:0", "-show_entries", "stream=nb_read_frames", "-of", "csv=p=0",
                                 path});
  return code == 0 && !out.empty() ? std::atoi(out.c_str()) : -1;
}

class PipelineTest : public ::testing::Test {
 protected:
  static constexpr int kFrames = 100;

  void SetUp() override {
    char pattern[] = "/tmp/memd-pipeline-XXXXXX";
    ASSERT_NE(mkdtemp(pattern), nullptr);
    dir_ = pattern;
    input_ = dir_ + "/in.mkv";
    auto [code, out] = RunCommand({"/usr/bin/ffmpeg", "-v", "error", "-f", "lavfi", "-i",
                                   "testsrc2=size=320x240:rate=25:duration=4", "-c:v", "mpeg4",
                                   "-q:v", "3", "-pix_fmt", "yuv420p", input_});
    ASSERT_EQ(code, 0) << "ffmpeg could not make the input: " << out;
  }
  void TearDown() override { fs::remove_all(dir_); }

  std::string Path(const std::string& name) const { return dir_ + "/" + name; }

  std::vector<std::string> Decode(int64_t timeout_ms = 10000) const {
    return {MEMD_PIPELINE_DECODE, "--input", input_, "--checksums", Path("dec.txt"), "--report",
            Path("dec.json"), "--timeout-ms", std::to_string(timeout_ms)};
  }
  std::vector<std::string> Filter(const std::string& mode, const std::string& tag,
                                  int delay_ms = 0) const {
    return {MEMD_PIPELINE_FILTER, "--mode", mode, "--checksums", Path("filt" + tag + ".txt"),
            "--report", Path("filt" + tag + ".json"), "--delay-ms", std::to_string(delay_ms),
            "--width", "160", "--height", "120"};
  }
  std::vector<std::string> Encode(int64_t timeout_ms = 10000) const {
    return {MEMD_PIPELINE_ENCODE, "--output", Path("out.mkv"), "--checksums", Path("enc.txt"),
            "--report", Path("enc.json"), "--timeout-ms", std::to_string(timeout_ms)};
  }

  // Runs decode -> filter (`mode`) -> encode to the end; each must exit 0.
  // `reader_encoder`: the encoder attaches as a reader ($MEMD_READ_ONLY=1).
  void RunToEnd(const DaemonEnv& daemon, const std::string& mode,
                bool reader_encoder = false) const {
    Subprocess decode(Decode(), daemon.ClientEnv());
    Subprocess filter(Filter(mode, ""), daemon.ClientEnv());
    std::map<std::string, std::string> encode_env = daemon.ClientEnv();
    if (reader_encoder) encode_env["MEMD_READ_ONLY"] = "1";
    Subprocess encode(Encode(), encode_env);
    ASSERT_EQ(ExitCode(decode.Wait(std::chrono::seconds(60))), 0) << ReadFile(Path("dec.json"));
    ASSERT_EQ(ExitCode(filter.Wait(std::chrono::seconds(60))), 0) << ReadFile(Path("filt.json"));
    ASSERT_EQ(ExitCode(encode.Wait(std::chrono::seconds(60))), 0) << ReadFile(Path("enc.json"));
  }

  std::string dir_, input_;
};

void ExpectPoolEmpty(const DaemonEnv& daemon) {
  EXPECT_TRUE(WaitFor([&] { return daemon.PoolStats().live_buffers() == 0; }))
      << daemon.PoolStats().DebugString();
  EXPECT_EQ(daemon.PoolStats().used_bytes(), 0u);
  EXPECT_EQ(daemon.CheckPools(), "");
}

TEST_F(PipelineTest, FramesReachTheEncoderByReferenceWithTheDecodersChecksums) {
  DaemonEnv daemon({.pools = {"default=128MiB"}});
  ASSERT_TRUE(daemon.ok());
  ASSERT_NO_FATAL_FAILURE(RunToEnd(daemon, "pass"));

  std::vector<FrameLine> decoded = ReadChecksums(Path("dec.txt"));
  std::vector<FrameLine> encoded = ReadChecksums(Path("enc.txt"));
  ASSERT_EQ(decoded.size(), static_cast<size_t>(kFrames));
  ASSERT_EQ(encoded.size(), decoded.size());
  for (size_t i = 0; i < decoded.size(); ++i) {
    EXPECT_EQ(encoded[i].pts, decoded[i].pts) << "frame " << i;
    EXPECT_EQ(encoded[i].checksum, decoded[i].checksum) << "frame " << i;
  }
  EXPECT_EQ(CountFrames(Path("out.mkv")), kFrames);
  // Pool buffers recycle locally: far fewer daemon allocations than planes.
  v1::PoolStats pool = daemon.PoolStats();
  EXPECT_LT(pool.allocs(), 3u * kFrames) << pool.DebugString();
  for (const v1::ChannelStats& c : pool.channels()) {
    EXPECT_EQ(c.sent(), kFrames + 1u) << c.name() << ": every frame and the end of stream";
    EXPECT_EQ(c.depth(), 0u) << c.name();
  }
  ExpectPoolEmpty(daemon);
}

// The FFmpeg consumer side as a reader (issue 24): the encoder maps the pool
// read-only and still encodes every frame with the decoder's checksums.
TEST_F(PipelineTest, AnEncoderAttachedAsAReaderEncodesEveryFrame) {
  DaemonEnv daemon({.pools = {"default=128MiB"}});
  ASSERT_TRUE(daemon.ok());
  ASSERT_NO_FATAL_FAILURE(RunToEnd(daemon, "pass", /*reader_encoder=*/true));
  std::vector<FrameLine> decoded = ReadChecksums(Path("dec.txt"));
  std::vector<FrameLine> encoded = ReadChecksums(Path("enc.txt"));
  ASSERT_EQ(encoded.size(), static_cast<size_t>(kFrames));
  ASSERT_EQ(decoded.size(), encoded.size());
  for (size_t i = 0; i < encoded.size(); ++i) {
    EXPECT_EQ(encoded[i].checksum, decoded[i].checksum) << "frame " << i;
  }
  EXPECT_EQ(CountFrames(Path("out.mkv")), kFrames);
  ExpectPoolEmpty(daemon);
}

TEST_F(PipelineTest, OverlayFilterWritesNewPoolFramesThatTheEncoderReceives) {
  DaemonEnv daemon({.pools = {"default=128MiB"}});
  ASSERT_TRUE(daemon.ok());
  ASSERT_NO_FATAL_FAILURE(RunToEnd(daemon, "overlay"));

  std::vector<FrameLine> decoded = ReadChecksums(Path("dec.txt"));
  std::vector<FrameLine> filtered = ReadChecksums(Path("filt.txt"));
  std::vector<FrameLine> encoded = ReadChecksums(Path("enc.txt"));
  ASSERT_EQ(filtered.size(), static_cast<size_t>(kFrames));
  ASSERT_EQ(encoded.size(), filtered.size());
  for (size_t i = 0; i < filtered.size(); ++i) {
    EXPECT_EQ(encoded[i].checksum, filtered[i].checksum) << "frame " << i;
    EXPECT_NE(filtered[i].checksum, decoded[i].checksum) << "frame " << i << " has the box";
  }
  EXPECT_EQ(CountFrames(Path("out.mkv")), kFrames);
  ExpectPoolEmpty(daemon);
}

TEST_F(PipelineTest, ScaleFilterConvertsWithSwscaleIntoNewPoolFrames) {
  DaemonEnv daemon({.pools = {"default=128MiB"}});
  ASSERT_TRUE(daemon.ok());
  ASSERT_NO_FATAL_FAILURE(RunToEnd(daemon, "scale"));
  EXPECT_EQ(CountFrames(Path("out.mkv")), kFrames);
  auto [code, size] = RunCommand({"/usr/bin/ffprobe", "-v", "error", "-select_streams", "v:0",
                                  "-show_entries", "stream=width,height", "-of", "csv=p=0",
                                  Path("out.mkv")});
  EXPECT_EQ(size, "160,120\n");
  ExpectPoolEmpty(daemon);
}

TEST_F(PipelineTest, KilledFilterLeaksNothingAndTheOtherStagesReportIt) {
  DaemonEnv daemon({.pools = {"default=128MiB"}});
  ASSERT_TRUE(daemon.ok());
  Subprocess decode(Decode(/*timeout_ms=*/1500), daemon.ClientEnv());
  Subprocess filter(Filter("overlay", "", /*delay_ms=*/20), daemon.ClientEnv());
  Subprocess encode(Encode(/*timeout_ms=*/1500), daemon.ClientEnv());
  ASSERT_TRUE(WaitFor([&] { return daemon.ChannelStats("filtered").sent() >= 10; }, std::chrono::seconds(30)));
  filter.Kill(SIGKILL);
  EXPECT_EQ(ExitCode(filter.Wait()), 128 + SIGKILL);

  EXPECT_EQ(ExitCode(decode.Wait(std::chrono::seconds(30))), 1);
  EXPECT_EQ(ExitCode(encode.Wait(std::chrono::seconds(30))), 1);
  EXPECT_NE(ReadFile(Path("dec.json")).find("channel 'raw' stayed full for 1500 ms"), std::string::npos)
      << ReadFile(Path("dec.json"));
  EXPECT_NE(ReadFile(Path("enc.json")).find("no frame on channel 'filtered' for 1500 ms"),
            std::string::npos)
      << ReadFile(Path("enc.json"));
  // The encoder finished its file with the frames it got.
  size_t encoded = ReadChecksums(Path("enc.txt")).size();
  EXPECT_GE(encoded, 10u);
  EXPECT_EQ(CountFrames(Path("out.mkv")), static_cast<int>(encoded));

  // What the dead filter held is gone; what the decoder queued is still
  // deliverable (the channel holds it) and is all that remains.
  uint64_t queued = daemon.ChannelStats("raw").depth();
  EXPECT_GT(queued, 0u);
  EXPECT_EQ(daemon.PoolStats().sessions(), 0u);
  auto drain = Client::Connect({.address = daemon.address()});
  ASSERT_TRUE(drain.ok()) << drain.status();
  for (uint64_t i = 0; i < queued; ++i) {
    auto message = (*drain)->Receive("raw");
    ASSERT_TRUE(message.ok()) << message.status();
    for (const BufferRef& b : message->buffers) ASSERT_TRUE((*drain)->ReleaseRef(b.handle).ok());
  }
  ExpectPoolEmpty(daemon);
}

TEST_F(PipelineTest, RestartedFilterResumesOnTheSameChannels) {
  DaemonEnv daemon({.pools = {"default=128MiB"}});
  ASSERT_TRUE(daemon.ok());
  Subprocess decode(Decode(), daemon.ClientEnv());
  auto first = std::make_unique<Subprocess>(Filter("pass", "1", /*delay_ms=*/15), daemon.ClientEnv());
  Subprocess encode(Encode(), daemon.ClientEnv());
  ASSERT_TRUE(WaitFor([&] { return daemon.ChannelStats("filtered").sent() >= 20; }, std::chrono::seconds(30)));
  first->Kill(SIGKILL);
  first->Wait();
  Subprocess second(Filter("pass", "2"), daemon.ClientEnv());
  ASSERT_EQ(ExitCode(second.Wait(std::chrono::seconds(60))), 0) << ReadFile(Path("filt2.json"));
  ASSERT_EQ(ExitCode(decode.Wait(std::chrono::seconds(60))), 0) << ReadFile(Path("dec.json"));
  ASSERT_EQ(ExitCode(encode.Wait(std::chrono::seconds(60))), 0) << ReadFile(Path("enc.json"));

  std::vector<FrameLine> decoded = ReadChecksums(Path("dec.txt"));
  std::vector<FrameLine> encoded = ReadChecksums(Path("enc.txt"));
  ASSERT_EQ(decoded.size(), static_cast<size_t>(kFrames));
  // At most the one frame the killed filter had taken and not passed on is lost.
  EXPECT_GE(encoded.size(), decoded.size() - 1);
  EXPECT_LE(encoded.size(), decoded.size());
  std::map<int64_t, std::string> by_pts;
  for (const FrameLine& f : decoded) by_pts[f.pts] = f.checksum;
  for (size_t i = 0; i < encoded.size(); ++i) {
    EXPECT_EQ(by_pts[encoded[i].pts], encoded[i].checksum) << "encoded frame " << i;
    if (i > 0) {
      EXPECT_GT(encoded[i].pts, encoded[i - 1].pts) << "in order";
    }
  }
  EXPECT_EQ(CountFrames(Path("out.mkv")), static_cast<int>(encoded.size()));
  ExpectPoolEmpty(daemon);
}

TEST(FramePoolTest, LentBuffersAreNotReusedUntilEveryOtherHolderReleasedThem) {
  DaemonEnv daemon;
  ASSERT_TRUE(daemon.ok());
  auto producer = Client::Connect({.address = daemon.address()});
  auto consumer = Client::Connect({.address = daemon.address()});
  ASSERT_TRUE(producer.ok() && consumer.ok());
  ffmpeg::FramePool frames(**producer);
  ffmpeg::FramePool received(**consumer);
  ffmpeg::FramePtr frame(av_frame_alloc());
  frame->format = AV_PIX_FMT_YUV420P;
  frame->width = 64;
  frame->height = 32;
  ASSERT_TRUE(frames.AllocVideo(frame.get()).ok());
  std::memset(frame->data[0], 0x5A, frame->linesize[0] * 32);
  const uint8_t* lent = frame->data[0];
  ASSERT_TRUE(frames.Send("c", frame.get(), 0).ok());
  av_frame_unref(frame.get());  // back to the producer's AVBufferPool, but lent

  absl::StatusOr<ffmpeg::FramePtr> got = received.Receive("c", 1000);
  ASSERT_TRUE(got.ok()) << got.status();
  ASSERT_NE(*got, nullptr);
  EXPECT_EQ((*got)->width, 64);
  EXPECT_EQ((*got)->data[0][0], 0x5A) << "same bytes, no copy";
  // While the consumer holds it, the producer never hands the block out again.
  std::vector<AVBufferRef*> taken;
  for (int i = 0; i < 12; ++i) {
    AVBufferRef* buf = frames.Get((*got)->buf[0]->size);
    ASSERT_NE(buf, nullptr);
    EXPECT_NE(buf->data, lent) << "get " << i;
    taken.push_back(buf);
  }
  for (AVBufferRef*& b : taken) av_buffer_unref(&b);
  taken.clear();
  EXPECT_EQ(frames.stats().lent_buffers, 3u) << "the frame's three planes";
  const size_t size = (*got)->buf[0]->size;
  got->reset();  // the consumer releases it (deferred: it rides on its next request)
  ASSERT_TRUE((*consumer)->FlushReleases().ok());
  // Now the next query (one per few parked buffers) puts it back in
  // circulation, and a later Get hands out the same block again.
  bool reused = false;
  for (int i = 0; i < 40 && !reused; ++i) {
    AVBufferRef* buf = frames.Get(size);
    ASSERT_NE(buf, nullptr);
    reused = buf->data == lent;
    taken.push_back(buf);
  }
  EXPECT_TRUE(reused) << "the block came back once nobody else held it";
  EXPECT_EQ(frames.stats().lent_buffers, 2u) << "the chroma planes are checked when their pool is used";
  EXPECT_GE(frames.stats().queries, 1u);
  for (AVBufferRef*& b : taken) av_buffer_unref(&b);
}

TEST(FramePoolTest, BadFramesAndMessagesAreRefusedAndLeakNothing) {
  DaemonEnv daemon;
  ASSERT_TRUE(daemon.ok());
  auto client = Client::Connect({.address = daemon.address()});
  ASSERT_TRUE(client.ok());
  {
    ffmpeg::FramePool frames(**client);
    ffmpeg::FramePtr heap(av_frame_alloc());
    heap->format = AV_PIX_FMT_YUV420P;
    heap->width = 16;
    heap->height = 16;
    ASSERT_EQ(av_frame_get_buffer(heap.get(), 64), 0);
    absl::Status s = frames.Send("c", heap.get(), 0);
    EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
    EXPECT_NE(s.message().find("buffer 0 of the frame is not memd memory of pool 'default'"),
              std::string::npos)
        << s;
    ffmpeg::FramePtr bare(av_frame_alloc());  // no buffers: not reference-counted
    s = frames.Send("c", bare.get(), 0);
    EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
    EXPECT_NE(s.message().find("the frame has no buffers"), std::string::npos) << s;
    // A message that is not a frame: refused, and its buffers released.
    auto raw = (*client)->AllocateRef(4096, false);
    ASSERT_TRUE(raw.ok());
    ASSERT_TRUE((*client)->Send("c", {raw->handle}, "not a frame").ok());
    absl::StatusOr<ffmpeg::FramePtr> got = frames.Receive("c", 1000);
    EXPECT_EQ(got.status().code(), absl::StatusCode::kInvalidArgument);
    EXPECT_NE(got.status().message().find(
                  "message on channel 'c': metadata of 11 bytes is not a memd raw frame"),
              std::string::npos)
        << got.status();
    ffmpeg::FramePtr bad(av_frame_alloc());
    bad->format = AV_PIX_FMT_YUV420P;
    bad->width = 0;
    bad->height = 16;
    EXPECT_EQ(frames.AllocVideo(bad.get()).code(), absl::StatusCode::kInvalidArgument);
    auto timeout = frames.Receive("empty", 10);
    EXPECT_EQ(timeout.status().code(), absl::StatusCode::kDeadlineExceeded) << timeout.status();
  }
  EXPECT_EQ(daemon.PoolStats().live_buffers(), 0u) << daemon.PoolStats().DebugString();
  EXPECT_EQ(daemon.CheckPools(), "");
}

}  // namespace
}  // namespace memd::testing
