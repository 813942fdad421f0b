// The memd GStreamer plugin's stream rules (issues 24 and 27), with real
// gst-launch-1.0 processes on a real memd: memdsrc negotiates only from a
// received frame (never made-up caps), so audio goes into wavenc whichever
// side starts first; caps changes mid-stream are negotiated again; a frame
// whose planes overlap is an element error; a leaky memdsink with no reader
// still ends; a writer with no reader says so; backpressure is counted as
// waits, never as drops; and the
// docs' decode -> encode example runs with what setup-deps.sh installs.
#include <gtest/gtest.h>
#include <signal.h>

#include <cstdint>
#include <cstring>
#include <optional>
#include <string>

#include "../unit/client/raw_frame_cases.h"
#include "gst_fixture.h"
#include "memd/client.h"
#include "memd/raw_frame.h"

namespace memd::testing {
namespace {

// Caps GstBaseSrc's default negotiation made up before the fix (issue 27).
bool HasPlaceholderCaps(const std::string& out) {
  return out.find("width=(int)1,") != std::string::npos ||
         out.find("rate=(int)1,") != std::string::npos;
}

// The "fmt " and "data" chunks of a WAVE file, "" when it is not one: what
// the audio is (tags, a LIST chunk, do not cross memd).
std::string WaveAudio(const std::string& file) {
  if (file.size() < 12 || file.compare(0, 4, "RIFF") != 0 || file.compare(8, 4, "WAVE") != 0) {
    return "";
  }
  std::string fmt, data;
  for (size_t at = 12; at + 8 <= file.size();) {
    uint32_t size = 0;
    std::memcpy(&size, file.data() + at + 4, 4);
    std::string id = file.substr(at, 4), body = file.substr(at + 8, size);
    if (id == "fmt ") fmt = body;
    if (id == "data") data = body;
    at += 8 + size + (size & 1);
  }
  return fmt.empty() || data.empty() ? "" : "fmt " + fmt + "data" + data;
}

// Issue 27: memdsrc pushed placeholder caps (rate=1, F64LE, 1 channel)
// before the first frame, and wavenc, which cannot change caps once it wrote
// its header, failed not-negotiated even when the writer started first. The
// WAVE file's format and samples are now the one-process pipeline's, interleaved
// and planar (audioconvert interleaves for wavenc), writer first or reader first.
TEST_F(GstTest, AudioIntoWavencIsTheSameWhicheverSideStartsFirst) {
  for (const std::string caps :
       {"audio/x-raw,format=F32LE,rate=48000,channels=2,layout=interleaved",
        "audio/x-raw,format=S16LE,rate=44100,channels=2,layout=non-interleaved"}) {
    const std::string source = "audiotestsrc num-buffers=5 wave=ticks";
    const std::string to_wav = " ! audioconvert ! wavenc ! filesink location=";
    auto [ref_code, ref_out] = Run(source + " ! " + caps + to_wav + Path("ref.wav"));
    ASSERT_EQ(ref_code, 0) << ref_out;
    std::string reference = WaveAudio(ReadFile(Path("ref.wav")));
    ASSERT_GT(reference.size(), 5u * 1024 * 4) << caps;
    for (bool writer_first : {true, false}) {
      const std::string reader = "-v memdsrc channel=pcm" + to_wav + Path("out.wav");
      std::unique_ptr<Subprocess> started;
      if (!writer_first) started = Start(reader);
      auto [code, out] = Run(source + " ! " + caps + " ! memdsink channel=pcm");
      EXPECT_EQ(code, 0) << out;
      if (writer_first) started = Start(reader);  // 5 frames and EOS wait in the channel
      auto [reader_code, reader_out] = Finish(*started);
      EXPECT_EQ(reader_code, 0) << caps << (writer_first ? " writer first\n" : "\n") << reader_out;
      EXPECT_FALSE(HasPlaceholderCaps(reader_out)) << reader_out;
      EXPECT_TRUE(WaveAudio(ReadFile(Path("out.wav"))) == reference)
          << caps << ": the WAVE file's format or samples differ from the one-process reference";
    }
  }
  EXPECT_TRUE(PoolEmpty());
}

// memdsrc waits for its first frame before it negotiates; an EOS sent to the
// pipeline meanwhile (gst-launch -e and SIGINT) still ends it cleanly, not
// with not-negotiated.
TEST_F(GstTest, AnEndOfStreamBeforeTheFirstFrameEndsTheReaderCleanly) {
  auto reader = Start("-e memdsrc channel=idle ! fakesink");
  ASSERT_TRUE(WaitFor([&] { return daemon_->ChannelStats("idle").waiting_receivers() == 1; },
                      std::chrono::seconds(20)));
  reader->Kill(SIGINT);
  auto [code, out] = Finish(*reader);
  EXPECT_EQ(code, 0) << out;
  EXPECT_EQ(out.find("not-negotiated"), std::string::npos) << out;
  EXPECT_NE(out.find("Got EOS from element"), std::string::npos) << out;
  EXPECT_TRUE(PoolEmpty());
}

// Resolution changes mid-stream (concat plays a 320x240 stream, then a
// 160x120 one): memdsrc negotiates the new caps before the first frame that
// has them, and every byte arrives as in one process.
TEST_F(GstTest, ResolutionChangesMidStreamAreNegotiated) {
  const std::string sources =
      " videotestsrc num-buffers=3 pattern=ball ! "
      "video/x-raw,format=I420,width=320,height=240,framerate=30/1 ! c."
      " videotestsrc num-buffers=4 pattern=smpte ! "
      "video/x-raw,format=I420,width=160,height=120,framerate=30/1 ! c.";
  auto [ref_code, ref_out] =
      Run("concat name=c ! filesink location=" + Path("ref.raw") + sources);
  ASSERT_EQ(ref_code, 0) << ref_out;
  std::string reference = ReadFile(Path("ref.raw"));
  ASSERT_EQ(reference.size(), (3u * 320 * 240 + 4u * 160 * 120) * 3 / 2);
  auto reader = Start("-v memdsrc channel=res ! filesink location=" + Path("out.raw"));
  auto [code, out] = Run("concat name=c ! memdsink channel=res" + sources);
  EXPECT_EQ(code, 0) << out;
  auto [reader_code, reader_out] = Finish(*reader);
  EXPECT_EQ(reader_code, 0) << reader_out;
  EXPECT_NE(reader_out.find("width=(int)320, height=(int)240"), std::string::npos) << reader_out;
  EXPECT_NE(reader_out.find("width=(int)160, height=(int)120"), std::string::npos) << reader_out;
  EXPECT_FALSE(HasPlaceholderCaps(reader_out)) << reader_out;
  EXPECT_TRUE(ReadFile(Path("out.raw")) == reference) << "output differs from the reference";
  EXPECT_TRUE(PoolEmpty());
}

// Issue 24, defect 10: planar f32 stereo with both channel planes at offset
// 0 passed the raw-frame checks, and memdsrc printed a GStreamer-Audio
// CRITICAL and pushed the buffer without its audio meta. Now the decoder
// refuses it and memdsrc posts an element error naming the field.
TEST_F(GstTest, OverlappingAudioPlanesAreAnElementError) {
  auto client = Client::Connect({.address = daemon_->address()});
  ASSERT_TRUE(client.ok()) << client.status();
  RawFrame frame = PlanarF32Stereo();
  uint64_t bytes = LayoutRawFrame(frame, 1);
  absl::StatusOr<std::string> good = EncodeRawFrame(frame);
  ASSERT_TRUE(good.ok()) << good.status();
  // The sender's own bytes: planes[1] on top of planes[0].
  std::string wire = WithHeader(*good, [](RawWireHeader& h) { h.planes[1].offset_bytes = 0; });
  auto buffer = (*client)->AllocateRef(bytes, true);
  ASSERT_TRUE(buffer.ok()) << buffer.status();
  ASSERT_TRUE((*client)->Send("overlap", {buffer->handle}, wire, 1000).ok());
  // An end of stream after it: a reader that let the frame pass would end well.
  ASSERT_TRUE((*client)->Send("overlap", {}, *EncodeRawFrame(RawFrame::EndOfStream()), 1000).ok());
  client->reset();
  auto [code, out] = Run("memdsrc channel=overlap ! audioconvert ! fakesink");
  EXPECT_NE(code, 0) << out;
  EXPECT_NE(out.find("Message on memd channel 'overlap' is not a valid raw frame"),
            std::string::npos)
      << out;
  EXPECT_NE(out.find("field planes[1].offset_bytes is 0; the plane's 4096 bytes overlap "
                     "planes[0]"),
            std::string::npos)
      << out;
  EXPECT_EQ(out.find("CRITICAL"), std::string::npos) << out;
  EXPECT_TRUE(PoolEmpty());
}

// Issue 27: `memdsink leaky=true capacity=4` into a full channel with no
// reader retried its end-of-stream every 100 ms forever. Frames past the
// capacity are dropped (counted), and the end of stream waits 2 s for room,
// then is given up with a warning: the pipeline ends.
TEST_F(GstTest, LeakySinkWithNoReaderEndsAfterItsBoundedEndOfStreamWait) {
  auto [code, out] = Run("videotestsrc num-buffers=10 ! " + std::string(kSmall) +
                         " ! memdsink channel=l leaky=true capacity=4");
  EXPECT_EQ(code, 0) << out;
  EXPECT_NE(out.find("End of stream not delivered on memd channel 'l': it stayed full for 2000 "
                     "ms and the sink is leaky"),
            std::string::npos)
      << out;
  EXPECT_NE(out.find("frames-sent=(guint64)4, frames-copied=(guint64)0, "
                     "frames-dropped=(guint64)6"),
            std::string::npos)
      << out;
  v1::ChannelStats stats = daemon_->ChannelStats("l");
  EXPECT_EQ(stats.sent(), 4u);
  EXPECT_EQ(stats.depth(), 4u);
  EXPECT_EQ(stats.dropped(), 6u) << "the leaky frames, and only they, never went in";
  EXPECT_GE(stats.send_timeouts(), 1u) << "the end of stream's waits";
}

// Issue 27: a writer whose reader failed blocked forever without a message.
// It still waits (backpressure), but says so after 10 s; a reader that comes
// then takes every frame.
TEST_F(GstTest, AWriterWithNoReaderSaysSoAndGoesOnWhenOneComes) {
  auto writer = Start("videotestsrc num-buffers=3 ! " + std::string(kSmall) +
                      " ! memdsink channel=stall capacity=1");
  std::string seen;
  for (std::optional<std::string> line; (line = writer->ReadLine(std::chrono::seconds(30)));) {
    seen += *line + "\n";
    if (line->find("memd channel 'stall' has been full for 10 s: no reader takes its frames; "
                   "still waiting") != std::string::npos) {
      break;
    }
  }
  EXPECT_NE(seen.find("has been full for 10 s"), std::string::npos) << seen;
  auto [reader_code, reader_out] = Run("memdsrc channel=stall capacity=1 ! fakesink");
  EXPECT_EQ(reader_code, 0) << reader_out;
  auto [code, out] = Finish(*writer);
  EXPECT_EQ(code, 0) << out;
  EXPECT_NE(out.find("frames-sent=(guint64)3"), std::string::npos) << out;
  EXPECT_TRUE(PoolEmpty());
}

// Issue 27: memdsink's 100 ms waits for room were counted as dropped sends
// (5 and 5,873 for runs in which every frame arrived), so MemdChannelDropping
// fired on plain backpressure. A reader slower than the writer: every frame
// arrives, the waits show as waits and timeouts, nothing as dropped.
TEST_F(GstTest, BackpressureIsCountedAsWaitsNotDrops) {
  const std::string source = "videotestsrc num-buffers=8 pattern=ball";
  std::string reference = Reference(source, kSmall);
  // 250 ms per frame at the reader: a send waits longer than its 100 ms slice.
  auto reader = Start("memdsrc channel=slow capacity=1 ! identity sleep-time=250000 ! filesink location=" +
                      Path("out.raw"));
  auto [code, out] = Run(source + " ! " + kSmall + " ! memdsink channel=slow capacity=1");
  EXPECT_EQ(code, 0) << out;
  EXPECT_NE(out.find("frames-sent=(guint64)8"), std::string::npos) << out;
  v1::ChannelStats stats = daemon_->ChannelStats("slow");  // before the reader ends
  auto [reader_code, reader_out] = Finish(*reader);
  EXPECT_EQ(reader_code, 0) << reader_out;
  EXPECT_TRUE(ReadFile(Path("out.raw")) == reference) << "a frame was lost";
  EXPECT_EQ(stats.dropped(), 0u) << stats.DebugString();
  EXPECT_GE(stats.send_timeouts(), 1u) << stats.DebugString();
  EXPECT_GT(stats.send_waits(), stats.send_timeouts()) << "every timed-out wait was a wait";
  EXPECT_TRUE(PoolEmpty());
}

// docs/gstreamer.md's decode -> encode example, verbatim but for the file
// names: it used x264enc, which scripts/setup-deps.sh does not install (the
// reader failed and the writer then waited for it). openh264enc is in
// gstreamer1.0-plugins-bad, which it does; the output decodes to every frame.
TEST_F(GstTest, DocsDecodeThenEncodeExampleWritesAPlayableMp4) {
  const std::string h264 = " ! videoconvert ! openh264enc ! h264parse ! mp4mux ! filesink location=";
  const std::string decode = " ! decodebin ! videoconvert ! video/x-raw,format=I420";
  auto [made, made_out] =
      Run("videotestsrc num-buffers=30 ! video/x-raw,width=320,height=240,framerate=30/1" + h264 +
          Path("in.mp4"));
  ASSERT_EQ(made, 0) << made_out;
  auto reader = Start("-e memdsrc channel=raw" + h264 + Path("out.mp4"));
  auto [code, out] =
      Run("filesrc location=" + Path("in.mp4") + decode + " ! memdsink channel=raw");
  EXPECT_EQ(code, 0) << out;
  auto [reader_code, reader_out] = Finish(*reader);
  EXPECT_EQ(reader_code, 0) << reader_out;
  auto [dec_code, dec_out] =
      Run("filesrc location=" + Path("out.mp4") + decode + " ! filesink location=" +
          Path("out.yuv"));
  EXPECT_EQ(dec_code, 0) << dec_out;
  EXPECT_EQ(ReadFile(Path("out.yuv")).size(), 30u * 320 * 240 * 3 / 2);
  EXPECT_TRUE(PoolEmpty());
}

}  // namespace
}  // namespace memd::testing
