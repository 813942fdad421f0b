// FrameWire: an AVFrame's description survives the trip, and every
// malformed message is refused naming the field.
#include "frame_wire.h"

#include <cstring>

#include <gtest/gtest.h>

#include "memd/ffmpeg.h"

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
  for (int b = 0; b < AV_NUM_DATA_POINTERS && frame->buf[b] != nullptr; ++b) sizes.push_back(frame->buf[b]->size);
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
  auto with = [&](auto change) {
    WireFrame h;
    std::memcpy(&h, good.data(), sizeof(h));
    change(h);
    return std::string(reinterpret_cast<const char*>(&h), sizeof(h)) + good.substr(sizeof(h));
  };
  struct Case {
    std::string metadata;
    std::vector<uint64_t> sizes;
    std::string text;
  };
  std::vector<Case> cases = {
      {"short", sizes, "5 bytes of metadata is not a memd frame"},
      {with([](WireFrame& h) { h.magic = 1; }), sizes, "field magic"},
      {with([](WireFrame& h) { h.version = 9; }), sizes, "field version is 9; this library reads 1"},
      {with([](WireFrame& h) { h.kind = 7; }), sizes, "field kind is 7"},
      {good, {}, "field buffer_count is 1; the message carries 0 buffers"},
      {with([](WireFrame& h) { h.plane_count = 9; }), sizes, "field plane_count is 9"},
      {with([](WireFrame& h) { h.planes[1].buffer = 5; }), sizes, "field planes[].buffer is 5"},
      {with([](WireFrame& h) { h.planes[0].linesize = -64; }), sizes, "field planes[].linesize is -64"},
      {with([](WireFrame& h) { h.planes[2].offset_bytes = 1u << 30; }), sizes,
       "field planes[].offset_bytes"},
      {with([](WireFrame& h) { h.height = 100000; }), sizes, "does not fit buffer"},
      {with([](WireFrame& h) { h.format = 9999; }), sizes, "field format is 9999"},
      {with([](WireFrame& h) { h.side_data_count = 2; }), sizes, "field side_data_count is 2"},
  };
  for (const Case& c : cases) {
    absl::StatusOr<DecodedFrame> got = DecodeFrame(c.metadata, c.sizes);
    EXPECT_EQ(got.status().code(), absl::StatusCode::kInvalidArgument) << c.text;
    EXPECT_NE(got.status().message().find(c.text), std::string::npos) << got.status();
  }
}

TEST(FrameWireTest, OversizedSideDataIsRefused) {
  FramePtr frame = VideoFrame(16, 16, 64);
  av_frame_new_side_data(frame.get(), AV_FRAME_DATA_SEI_UNREGISTERED, 4000);
  absl::StatusOr<std::string> wire = EncodeFrame(frame.get(), FramePool::kMaxSideDataBytes);
  EXPECT_EQ(wire.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(wire.status().message().find("side data takes 4008 bytes (1 entries); the limit is 3072"),
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

}  // namespace
}  // namespace memd::ffmpeg
