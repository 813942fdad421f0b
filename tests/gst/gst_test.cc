// The memd GStreamer plugin with real gst-launch-1.0 processes on a real
// memd (GST_PLUGIN_PATH of the build): frames cross processes by reference
// and arrive byte-identical to the same pipeline in one process; EOS and
// caps come from the stream; tee fan-out; SIGKILL of either side leaks
// nothing; bad properties are named; FFmpeg stages interoperate both ways.
#include <gtest/gtest.h>
#include <signal.h>

#include "gst_fixture.h"

namespace memd::testing {
namespace {

TEST_F(GstTest, Nv12In1080pArrivesByteIdenticalByReference) {
  const std::string source = "videotestsrc num-buffers=8 pattern=ball";
  std::string reference = Reference(source, k1080);
  ASSERT_EQ(reference.size(), 8u * 1920 * 1080 * 3 / 2);
  auto reader = Start("memdsrc channel=raw ! filesink location=" + Path("out.raw"));
  auto [code, out] = Run(source + " ! " + k1080 + " ! memdsink channel=raw");
  EXPECT_EQ(code, 0) << out;
  // Upstream wrote into pool memory (the ALLOCATION query): nothing copied.
  EXPECT_NE(out.find("frames-sent=(guint64)8, frames-copied=(guint64)0"), std::string::npos) << out;
  auto [reader_code, reader_out] = Finish(*reader);  // ends by the sender's EOS
  EXPECT_EQ(reader_code, 0) << reader_out;
  EXPECT_TRUE(ReadFile(Path("out.raw")) == reference) << "output differs from the reference";
  EXPECT_TRUE(PoolEmpty());
}

// The writer's pool parks sent buffers and reuses one only when the daemon
// says the reader released it: 60 moving frames through a short channel and
// a reader that holds several arrive intact.
TEST_F(GstTest, PoolReusesABufferOnlyAfterTheReaderReleasedIt) {
  const std::string source = "videotestsrc num-buffers=60 pattern=ball";
  std::string reference = Reference(source, kSmall);
  auto reader =
      Start("memdsrc channel=r ! queue max-size-buffers=8 ! filesink location=" + Path("out.raw"));
  auto [code, out] = Run(source + " ! " + kSmall + " ! memdsink channel=r capacity=2");
  EXPECT_EQ(code, 0) << out;
  EXPECT_NE(out.find("frames-sent=(guint64)60, frames-copied=(guint64)0"), std::string::npos)
      << out;
  EXPECT_EQ(Finish(*reader).first, 0);
  EXPECT_TRUE(ReadFile(Path("out.raw")) == reference) << "a frame was overwritten or lost";
  EXPECT_TRUE(PoolEmpty());
}

TEST_F(GstTest, CapsComeFromTheStream) {
  for (const std::string& caps :
       {std::string(kSmall),
        std::string("video/x-raw,format=RGBA,width=64,height=48,framerate=5/1"),
        std::string("audio/x-raw,format=S16LE,rate=48000,channels=2,layout=interleaved"),
        std::string("audio/x-raw,format=F32LE,rate=48000,channels=3,layout=non-interleaved")}) {
    bool audio = caps.rfind("audio", 0) == 0;
    std::string source = std::string(audio ? "audiotestsrc" : "videotestsrc") + " num-buffers=5";
    std::string reference = Reference(source, caps);
    auto reader = Start("-v memdsrc channel=c ! filesink location=" + Path("out.raw"));
    auto [code, out] = Run(source + " ! " + caps + " ! memdsink channel=c");
    EXPECT_EQ(code, 0) << out;
    auto [reader_code, reader_out] = Finish(*reader);
    EXPECT_EQ(reader_code, 0) << reader_out;
    // The reader's caps (gst-launch -v) are the sender's.
    std::string format = caps.substr(caps.find("format=") + 7);
    format = format.substr(0, format.find(','));
    EXPECT_NE(reader_out.find("format=(string)" + format), std::string::npos) << reader_out;
    EXPECT_TRUE(ReadFile(Path("out.raw")) == reference) << caps;
  }
  EXPECT_TRUE(PoolEmpty());
}

// Audio channel positions travel as the wire's channel_mask (WAVE bits): 5.1
// (the same bits in both orders) and quad with side channels (GStreamer's
// side bits 10/11 are WAVE's 9/10) come out with the sender's channel-mask.
TEST_F(GstTest, AudioChannelPositionsTravelWithTheFrames) {
  for (const char* mask : {"0x000000000000003f", "0x0000000000000c03"}) {
    int channels = std::string(mask) == "0x000000000000003f" ? 6 : 4;
    std::string caps = "audio/x-raw,format=F32LE,rate=48000,layout=interleaved,channels=" +
                       std::to_string(channels) + ",channel-mask=(bitmask)" + mask;
    auto reader = Start("-v memdsrc channel=pos ! fakesink");
    auto [code, out] = Run("audiotestsrc num-buffers=3 ! '" + caps + "' ! memdsink channel=pos");
    EXPECT_EQ(code, 0) << out;
    auto [reader_code, reader_out] = Finish(*reader);
    EXPECT_EQ(reader_code, 0) << reader_out;
    EXPECT_NE(reader_out.find(std::string("channel-mask=(bitmask)") + mask), std::string::npos)
        << "sent " << caps << "\n" << reader_out;
  }
  EXPECT_TRUE(PoolEmpty());
}

TEST_F(GstTest, TeeFanOutSharesOneBuffer) {
  std::string out = TeeIntoTwoReaders("");
  // Each frame is in pool memory once: both sinks send the same buffer
  // (whichever copied it, the other found the copy).
  size_t copies = 0;
  for (size_t at = out.find("frames-copied=(guint64)"); at != std::string::npos;
       at = out.find("frames-copied=(guint64)", at + 1)) {
    copies += std::stoul(out.substr(at + 23));
  }
  EXPECT_LE(copies, 10u) << out;  // at most once per frame, over both sinks
  EXPECT_TRUE(PoolEmpty());
}

// memdsrc read-only=true attaches as a reader (read-only mapping; issue 24):
// fan-out to two readers still arrives byte-identical, and the daemon lists
// both sessions as readers.
TEST_F(GstTest, ReadOnlySourcesAreReadersAndReceiveTheFramesIntact) {
  auto readers = [&] {
    int n = 0;
    v1::ListSessionsResponse list = daemon_->Sessions();  // outlives the loop
    for (const v1::SessionInfo& s : list.sessions()) n += s.read_only();
    return n;
  };
  TeeIntoTwoReaders("read-only=true", [&] {
    ASSERT_TRUE(WaitFor([&] { return readers() == 2; }, std::chrono::seconds(10)))
        << daemon_->Sessions().DebugString();
  });
  EXPECT_TRUE(PoolEmpty());
}

TEST_F(GstTest, KilledReaderLeaksNothingAndANewReaderResumes) {
  auto writer = Start("videotestsrc num-buffers=60 ! " + std::string(kSmall) +
                      " ! memdsink channel=k capacity=4");
  auto reader = Start("memdsrc channel=k ! fakesink");
  ASSERT_TRUE(WaitFor([&] { return daemon_->ChannelStats("k").received() >= 5; },
                      std::chrono::seconds(20)));
  reader->Kill(SIGKILL);
  reader->Wait();
  // The writer blocks on the full channel; a new reader takes it from there.
  auto again = Start("memdsrc channel=k ! fakesink");
  auto [code, out] = Finish(*writer);
  EXPECT_EQ(code, 0) << out;
  EXPECT_NE(out.find("frames-sent=(guint64)60"), std::string::npos) << out;
  EXPECT_EQ(Finish(*again).first, 0);
  EXPECT_TRUE(PoolEmpty()) << daemon_->PoolStats().DebugString();
}

TEST_F(GstTest, KilledWriterLeaksNothing) {
  auto reader = Start("memdsrc channel=w ! fakesink enable-last-sample=false");
  auto writer = Start("videotestsrc ! " + std::string(kSmall) + " ! memdsink channel=w capacity=4");
  ASSERT_TRUE(WaitFor([&] { return daemon_->ChannelStats("w").received() >= 5; },
                      std::chrono::seconds(20)));
  writer->Kill(SIGKILL);
  writer->Wait();
  // The reader drains what was queued; then it holds nothing, and the pool
  // holds only its session.
  EXPECT_TRUE(WaitFor(
      [&] {
        v1::PoolStats s = daemon_->PoolStats();
        return s.live_buffers() == 0 && s.sessions() == 1;
      },
      std::chrono::seconds(10)))
      << daemon_->PoolStats().DebugString();
  reader->Kill(SIGKILL);
  reader->Wait();
  EXPECT_TRUE(PoolEmpty());
}

// A daemon restart in mid-stream: both gst-launch processes wait for the
// daemon (libmemd reconnects and reclaims) and go on to EOS.
TEST_F(GstTest, BothSidesSurviveADaemonRestart) {
  auto reader = Start("memdsrc channel=d ! fakesink enable-last-sample=false");
  auto writer = Start("videotestsrc is-live=true num-buffers=90 ! " + std::string(kSmall) +
                      " ! memdsink channel=d");
  ASSERT_TRUE(WaitFor([&] { return daemon_->ChannelStats("d").received() >= 10; },
                      std::chrono::seconds(20)));
  ASSERT_TRUE(daemon_->Stop().has_value());
  ASSERT_TRUE(daemon_->Restart());
  auto [code, out] = Finish(*writer);
  EXPECT_EQ(code, 0) << out;
  // Every frame was sent: the ones during the outage waited for the daemon.
  EXPECT_NE(out.find("frames-sent=(guint64)90"), std::string::npos) << out;
  // The reader ends by the end-of-stream message sent after the restart.
  auto [reader_code, reader_out] = Finish(*reader);
  EXPECT_EQ(reader_code, 0) << reader_out;
  EXPECT_TRUE(PoolEmpty());
}

TEST_F(GstTest, BadPropertiesFailNamingTheValue) {
  struct Case {
    std::string element, text;
  };
  for (const Case& c : std::vector<Case>{
           {"memdsink", "property channel is empty; set channel=NAME"},
           {"memdsink channel=x pool=nosuchpool", "'nosuchpool'"},
           {"memdsink channel=x address=unix:///nonexistent/memd.sock",
            "unix:///nonexistent/memd.sock"},
           {"memdsink channel=x capacity=99999999", "capacity"},
       }) {
    // A missing daemon is reported after the connect timeout (30 s by
    // default, as long as RunCommand waits): 1 s here.
    std::map<std::string, std::string> env = Env();
    env["MEMD_CONNECT_TIMEOUT"] = "1s";
    auto [code, out] = RunCommand(Launch("videotestsrc num-buffers=1 ! " + c.element), env);
    EXPECT_NE(code, 0) << c.element << "\n" << out;
    EXPECT_NE(out.find(c.text), std::string::npos) << c.element << "\n" << out;
  }
  auto [code, out] = Run("memdsrc channel=x pool=nosuchpool ! fakesink");
  EXPECT_NE(code, 0) << out;
  EXPECT_NE(out.find("'nosuchpool'"), std::string::npos) << out;
  EXPECT_TRUE(PoolEmpty());
}

#if defined(MEMD_PIPELINE_DECODE) && defined(MEMD_PIPELINE_ENCODE)
// An FFmpeg decoder stage feeds memdsrc; memdsink feeds the FFmpeg encoder
// stage (rawvideo: the frames as they came). Both byte-identical to a
// one-process reference.
TEST_F(GstTest, FfmpegStagesInteroperateBothWays) {
  std::string input = Path("in.mkv");
  auto [made, made_out] = RunCommand({"/usr/bin/ffmpeg", "-v", "error", "-f", "lavfi", "-i",
                                      "testsrc2=size=320x240:rate=30", "-frames:v", "12", "-c:v",
                                      "mpeg4", "-q:v", "3", "-pix_fmt", "yuv420p", input});
  ASSERT_EQ(made, 0) << made_out;
  // FFmpeg -> GStreamer; the reference is ffmpeg's own decode in one process.
  auto [ref_code, ref_out] = RunCommand({"/usr/bin/ffmpeg", "-v", "error", "-i", input, "-f",
                                         "rawvideo", "-pix_fmt", "yuv420p", Path("ffref.yuv")});
  ASSERT_EQ(ref_code, 0) << ref_out;
  auto reader = Start("memdsrc channel=raw ! filesink location=" + Path("fromff.yuv"));
  auto [dec_code, dec_out] =
      RunCommand({MEMD_PIPELINE_DECODE, "--input", input, "--output", "raw"}, Env());
  EXPECT_EQ(dec_code, 0) << dec_out;
  auto [reader_code, reader_out] = Finish(*reader);
  EXPECT_EQ(reader_code, 0) << reader_out;
  std::string ffref = ReadFile(Path("ffref.yuv"));
  ASSERT_EQ(ffref.size(), 12u * 320 * 240 * 3 / 2);
  EXPECT_TRUE(ReadFile(Path("fromff.yuv")) == ffref) << "FFmpeg -> memdsrc differs";

  // GStreamer -> FFmpeg.
  const std::string source = "videotestsrc num-buffers=12 pattern=ball";
  std::string reference = Reference(source, kSmall);
  auto encoder = std::make_unique<Subprocess>(
      std::vector<std::string>{MEMD_PIPELINE_ENCODE, "--input", "fromgst", "--output",
                               Path("togst.yuv"), "--codec", "rawvideo"},
      Env());
  auto [code, out] = Run(source + " ! " + kSmall + " ! memdsink channel=fromgst");
  EXPECT_EQ(code, 0) << out;
  EXPECT_EQ(ExitCode(encoder->Wait(std::chrono::seconds(30))), 0);
  EXPECT_TRUE(ReadFile(Path("togst.yuv")) == reference) << "memdsink -> FFmpeg differs";
  EXPECT_TRUE(PoolEmpty());
}
#endif

}  // namespace
}  // namespace memd::testing
