// FrameWire: an AVFrame's description survives the trip, and every
// malformed message is refused naming the field.
#include "frame_wire.h"

#include <gtest/gtest.h>

#include <cstring>
#include <string>

#include <xxhash.h>

#include "memd/ffmpeg.h"
#include "raw_frame_cases.h"

extern "C" {
#include <libavutil/imgutils.h>
}

namespace memd::ffmpeg {
namespace {

FramePtr VideoFrame(int width, int height, int align) {
  FramePtr frame(av_frame_alloc());
  frame->format = AV_PIX_FMT_YUV420P;
  frame->width = width;
  frame->height = height;
  EXPECT_EQ(av_frame_get_buffer(frame.get(), align), 0);
  return frame;
}

std::vector<uint64_t> BufferSizes(const AVFrame* frame) {
  std::vector<uint64_t> sizes;
  for (int b = 0; b < AV_NUM_DATA_POINTERS && frame->buf[b] != nullptr; ++b)
    sizes.push_back(frame->buf[b]->size);
  return sizes;
}

TEST(FrameWireTest, DescriptionRoundTrips) {
  FramePtr frame = VideoFrame(64, 48, 64);
  frame->pts = 1234;
  frame->time_base = AVRational{1, 1000};
  frame->color_range = AVCOL_RANGE_JPEG;
  frame->key_frame = 1;
  AVFrameSideData* sd = av_frame_new_side_data(frame.get(), AV_FRAME_DATA_A53_CC, 5);
  std::memcpy(sd->data, "cc608", 5);
  absl::StatusOr<std::string> wire = EncodeFrame(frame.get(), FramePool::kMaxSideDataBytes);
  ASSERT_TRUE(wire.ok()) << wire.status();
  absl::StatusOr<DecodedFrame> back = DecodeFrame(*wire, BufferSizes(frame.get()));
  ASSERT_TRUE(back.ok()) << back.status();
  const WireFrame& h = back->header;
  EXPECT_EQ(h.width, 64);
  EXPECT_EQ(h.height, 48);
  EXPECT_EQ(h.pts, 1234);
  EXPECT_EQ(h.plane_count, 3u);
  for (int p = 0; p < 3; ++p) {
    EXPECT_EQ(h.planes[p].linesize, frame->linesize[p]);
    const uint8_t* data = frame->buf[h.planes[p].buffer]->data + h.planes[p].offset_bytes;
    EXPECT_EQ(data, frame->data[p]) << "plane " << p;
  }
  ASSERT_EQ(back->side_data.size(), 1u);
  EXPECT_EQ(back->side_data[0].type, AV_FRAME_DATA_A53_CC);
  EXPECT_EQ(back->side_data[0].bytes, "cc608");
  FramePtr rebuilt(av_frame_alloc());
  ApplyProperties(h, rebuilt.get());
  EXPECT_EQ(rebuilt->time_base.den, 1000);
  EXPECT_EQ(rebuilt->color_range, AVCOL_RANGE_JPEG);
  EXPECT_EQ(rebuilt->key_frame, 1);
}

TEST(FrameWireTest, MalformedMessagesAreRefusedNamingTheField) {
  FramePtr frame = VideoFrame(64, 48, 64);
  std::string good = *EncodeFrame(frame.get(), FramePool::kMaxSideDataBytes);
  std::vector<uint64_t> sizes = BufferSizes(frame.get());
  auto with = [&](const std::function<void(RawWireHeader&)>& change) {
    return testing::WithHeader(good, change);
  };
  // The raw-frame codec checks every field (tests/unit/client/raw_frame_test.cc);
  // these are the ones a broken FFmpeg sender would get wrong.
  std::vector<testing::RefusalCase> cases = {
      {"short", sizes, "metadata of 5 bytes is not a memd raw frame"},
      {with([](RawWireHeader& h) { h.magic = 1; }), sizes, "field magic"},
      {with([](RawWireHeader& h) { h.version = 9; }), sizes,
       "field version is 9; this library reads 1"},
      {good, {}, "field buffer_count is 1; the message carries 0 buffers"},
      {with([](RawWireHeader& h) { h.plane_count = 9; }), sizes, "field plane_count is 9"},
      {with([](RawWireHeader& h) { h.planes[1].buffer_index = 5; }), sizes,
       "field planes[1].buffer_index is 5"},
      {with([](RawWireHeader& h) { h.planes[2].offset_bytes = 1u << 30; }), sizes,
       "field planes[2].offset_bytes"},
      {with([](RawWireHeader& h) { h.height = 100000; }), sizes, "field height is 100000"},
      {with([](RawWireHeader& h) { h.format = 9999; }), sizes, "field format is 9999"},
      {with([](RawWireHeader& h) { h.extension_bytes += 8; }), sizes, "field extension_bytes"},
  };
  // An FFmpeg properties entry of the wrong size.
  std::string short_props =
      good.substr(0, sizeof(RawWireHeader)) + good.substr(sizeof(RawWireHeader));
  uint32_t wrong_size = 20;
  std::memcpy(&short_props[sizeof(RawWireHeader) + 4], &wrong_size, 4);
  RawWireHeader h;
  std::memcpy(&h, short_props.data(), sizeof(h));
  h.extension_bytes = 8 + 20;
  std::memcpy(short_props.data(), &h, sizeof(h));
  short_props.resize(sizeof(RawWireHeader) + 8 + 20);
  cases.push_back({short_props, sizes, "FFmpeg properties entry of 20 bytes; version 1 has 56"});
  testing::ExpectAllRefused(cases, DecodeFrame);
}

TEST(FrameWireTest, FormatsWithoutARawFormatAreRefused) {
  FramePtr frame(av_frame_alloc());
  frame->format = AV_PIX_FMT_PAL8;
  frame->width = 16;
  frame->height = 16;
  ASSERT_EQ(av_frame_get_buffer(frame.get(), 64), 0);
  absl::StatusOr<std::string> wire = EncodeFrame(frame.get(), FramePool::kMaxSideDataBytes);
  EXPECT_EQ(wire.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(wire.status().message().find("pixel format pal8 (11) has no memd raw format"),
            std::string::npos)
      << wire.status();
}

// Every row of the FFmpeg column maps both ways, and each memd format has one.
TEST(FrameWireTest, FormatTableMapsBothWays) {
  for (const RawFormatInfo& info : RawFormats()) {
    int av = ToAvFormat(info.format);
    ASSERT_GE(av, 0) << info.name;
    EXPECT_EQ(info.audio ? FromAvSampleFormat(av) : FromAvPixelFormat(av), info.format)
        << info.name;
    if (!info.audio) {
      // memd's plane geometry is FFmpeg's: av_image_get_buffer_size packs rows.
      RawFrame raw;
      raw.format = info.format;
      raw.width = 33;
      raw.height = 17;
      EXPECT_EQ(LayoutRawFrame(raw, 1), static_cast<uint64_t>(av_image_get_buffer_size(
                                            static_cast<AVPixelFormat>(av), 33, 17, 1)))
          << info.name;
    }
  }
}

// A frame from a sender without FFmpeg properties (memdsink, Python): its
// timestamps arrive in a 1/framerate time base.
TEST(FrameWireTest, ForeignFramesGetAFrameRateTimeBase) {
  RawFrame raw;
  raw.format = RawFormat::kNv12;
  raw.width = 64;
  raw.height = 48;
  raw.fps_num = 30;
  raw.fps_den = 1;
  raw.pts_ns = 100'000'000;  // frame 3 at 30/s
  raw.duration_ns = 33'333'333;
  raw.flags = kRawFrameKeyframe;
  uint64_t bytes = LayoutRawFrame(raw, 64);
  absl::StatusOr<DecodedFrame> got = DecodeFrame(*EncodeRawFrame(raw), {bytes});
  ASSERT_TRUE(got.ok()) << got.status();
  EXPECT_EQ(got->header.format, AV_PIX_FMT_NV12);
  EXPECT_EQ(got->header.time_base_num, 1);
  EXPECT_EQ(got->header.time_base_den, 30);
  EXPECT_EQ(got->header.pts, 3);
  EXPECT_EQ(got->header.pkt_duration, 1);
  EXPECT_EQ(got->header.key_frame, 1);
  EXPECT_EQ(got->header.plane_count, 2u);
  EXPECT_EQ(got->header.planes[1].offset_bytes, 64u * 48);
}

TEST(FrameWireTest, OversizedSideDataIsRefused) {
  FramePtr frame = VideoFrame(16, 16, 64);
  av_frame_new_side_data(frame.get(), AV_FRAME_DATA_SEI_UNREGISTERED, 4000);
  absl::StatusOr<std::string> wire = EncodeFrame(frame.get(), FramePool::kMaxSideDataBytes);
  EXPECT_EQ(wire.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(
      wire.status().message().find("side data takes 4008 bytes (1 entries); the limit is 3072"),
      std::string::npos)
      << wire.status();
}

TEST(FrameChecksumTest, DependsOnThePictureNotTheLayout) {
  FramePtr a = VideoFrame(100, 50, 64);
  FramePtr b = VideoFrame(100, 50, 1);  // other linesizes
  ASSERT_NE(a->linesize[0], b->linesize[0]);
  for (int p = 0; p < 3; ++p) {
    int rows = p == 0 ? 50 : 25, cols = p == 0 ? 100 : 50;
    for (int y = 0; y < rows; ++y) {
      for (int x = 0; x < cols; ++x) {
        a->data[p][y * a->linesize[p] + x] = b->data[p][y * b->linesize[p] + x] =
            static_cast<uint8_t>(x * 7 + y * 13 + p);
      }
      // Padding differs and must not count.
      for (int x = cols; x < a->linesize[p]; ++x) a->data[p][y * a->linesize[p] + x] = 0xEE;
    }
  }
  EXPECT_EQ(FrameChecksum(a.get()), FrameChecksum(b.get()));
  b->data[2][24 * b->linesize[2] + 49] ^= 1;  // last visible byte of the last plane
  EXPECT_NE(FrameChecksum(a.get()), FrameChecksum(b.get()));
}

// Issue 27: the checksum was a hand-rolled "xxHash64-style" hash. It is
// XXH3-64 of the visible bytes laid end to end, as its name says.
TEST(FrameChecksumTest, IsXxh3OfTheVisibleBytes) {
  FramePtr frame = VideoFrame(100, 50, 64);  // padded rows: linesize 128
  ASSERT_GT(frame->linesize[0], 100);
  std::string visible;
  for (int p = 0; p < 3; ++p) {
    int rows = p == 0 ? 50 : 25, cols = p == 0 ? 100 : 50;
    for (int y = 0; y < rows; ++y) {
      for (int x = 0; x < frame->linesize[p]; ++x) {
        frame->data[p][y * frame->linesize[p] + x] = static_cast<uint8_t>(x * 3 + y + p);
      }
      visible.append(reinterpret_cast<const char*>(frame->data[p] + y * frame->linesize[p]),
                     static_cast<size_t>(cols));
    }
  }
  EXPECT_EQ(FrameChecksum(frame.get()), XXH3_64bits(visible.data(), visible.size()));
}

}  // namespace
}  // namespace memd::ffmpeg
