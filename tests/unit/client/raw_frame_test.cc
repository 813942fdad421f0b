// Raw frames: a description survives Encode/Decode, the plane geometry is
// what GStreamer and FFmpeg compute, and every malformed message is refused
// naming the field, its value and the limit.
#include "memd/raw_frame.h"

#include "raw_frame_cases.h"

#include <gtest/gtest.h>

#include <cstring>
#include <functional>
#include <set>

#include "absl/strings/str_format.h"

namespace memd {
namespace {

RawFrame Nv12(uint32_t width, uint32_t height) {
  RawFrame frame;
  frame.format = RawFormat::kNv12;
  frame.width = width;
  frame.height = height;
  return frame;
}

TEST(RawFrameTest, VideoRoundTrips) {
  RawFrame frame = Nv12(1920, 1080);
  uint64_t bytes = LayoutRawFrame(frame, 64);
  EXPECT_EQ(bytes, 1920u * 1080 * 3 / 2);
  frame.flags = kRawFrameKeyframe | kRawFrameInterlaced;
  frame.pts_ns = 40'000'000;
  frame.duration_ns = 40'000'000;
  frame.par_num = frame.par_den = 1;
  frame.fps_num = 25;
  frame.fps_den = 1;
  frame.color = RawColor{1, 1, 1, 1, 1};  // BT.709 limited range, chroma left
  frame.extensions = {{kRawExtensionFfmpeg | 5, "abc"}, {kRawExtensionUser, ""}};
  absl::StatusOr<std::string> wire = EncodeRawFrame(frame);
  ASSERT_TRUE(wire.ok()) << wire.status();
  EXPECT_EQ(wire->size(), sizeof(RawWireHeader) + 8 + 3 + 8);
  EXPECT_TRUE(IsRawFrame(*wire));
  absl::StatusOr<RawFrame> back = DecodeRawFrame(*wire, {bytes});
  ASSERT_TRUE(back.ok()) << back.status();
  EXPECT_EQ(back->format, RawFormat::kNv12);
  EXPECT_EQ(back->width, 1920u);
  EXPECT_EQ(back->height, 1080u);
  EXPECT_EQ(back->flags, frame.flags);
  EXPECT_EQ(back->pts_ns, 40'000'000);
  EXPECT_EQ(back->fps_num, 25u);
  EXPECT_EQ(back->color.matrix, 1);
  EXPECT_EQ(back->color.chroma_location, 1);
  ASSERT_EQ(back->planes.size(), 2u);
  EXPECT_EQ(back->planes[1].offset_bytes, 1920u * 1080);
  EXPECT_EQ(back->planes[1].stride_bytes, 1920u);
  ASSERT_EQ(back->extensions.size(), 2u);
  EXPECT_EQ(back->extensions[0].type, kRawExtensionFfmpeg | 5);
  EXPECT_EQ(back->extensions[0].bytes, "abc");
  EXPECT_EQ(back->extensions[1].bytes, "");
}

TEST(RawFrameTest, AudioRoundTrips) {
  RawFrame frame = testing::PlanarF32Stereo();
  frame.channel_mask = 0x3;
  uint64_t bytes = LayoutRawFrame(frame, 64);
  EXPECT_EQ(bytes, 2u * 1024 * 4);
  absl::StatusOr<std::string> wire = EncodeRawFrame(frame);
  ASSERT_TRUE(wire.ok()) << wire.status();
  absl::StatusOr<RawFrame> back = DecodeRawFrame(*wire, {bytes});
  ASSERT_TRUE(back.ok()) << back.status();
  EXPECT_EQ(back->planes.size(), 2u);
  EXPECT_EQ(back->planes[1].offset_bytes, 4096u);
  EXPECT_EQ(back->channel_mask, 0x3u);
  EXPECT_EQ(back->pts_ns, kNoTimestamp);
  EXPECT_EQ(RawPlaneBytes(*back, 1), 4096u);
}

TEST(RawFrameTest, EndOfStreamHasNoPlanes) {
  absl::StatusOr<std::string> wire = EncodeRawFrame(RawFrame::EndOfStream());
  ASSERT_TRUE(wire.ok()) << wire.status();
  absl::StatusOr<RawFrame> back = DecodeRawFrame(*wire, {});
  ASSERT_TRUE(back.ok()) << back.status();
  EXPECT_TRUE(back->end_of_stream());
  EXPECT_TRUE(back->planes.empty());
}

// The sizes GStreamer's gst_video_info_set_format and FFmpeg's
// av_image_get_buffer_size(align 1) give for odd sizes.
TEST(RawFrameTest, PlaneGeometryMatchesTheFrameworks) {
  struct Case {
    RawFormat format;
    uint32_t width, height;
    uint64_t packed_bytes;  // all planes, stride = row bytes
  };
  for (const Case& c : std::vector<Case>{
           {RawFormat::kNv12, 33, 17, 33 * 17 + 34 * 9},
           {RawFormat::kI420, 33, 17, 33 * 17 + 2 * 17 * 9},
           {RawFormat::kP010, 33, 17, 66 * 17 + 68 * 9},
           {RawFormat::kYuy2, 33, 17, 68 * 17},
           {RawFormat::kRgb, 33, 17, 99 * 17},
           {RawFormat::kI422, 33, 17, 33 * 17 + 2 * 17 * 17},
       }) {
    RawFrame frame;
    frame.format = c.format;
    frame.width = c.width;
    frame.height = c.height;
    EXPECT_EQ(LayoutRawFrame(frame, 1), c.packed_bytes) << FindRawFormat(c.format)->name;
  }
}

TEST(RawFrameTest, FormatNumbersAreStableAndUnique) {
  std::set<uint16_t> numbers;
  std::set<std::string> names;
  for (const RawFormatInfo& info : RawFormats()) {
    EXPECT_TRUE(numbers.insert(static_cast<uint16_t>(info.format)).second) << info.name;
    EXPECT_TRUE(names.insert(info.name).second) << info.name;
    EXPECT_EQ(info.audio, static_cast<uint16_t>(info.format) >= 256) << info.name;
    EXPECT_EQ(FindRawFormat(info.format), &info);
  }
  // On the wire: these numbers never change.
  EXPECT_EQ(static_cast<int>(RawFormat::kNv12), 1);
  EXPECT_EQ(static_cast<int>(RawFormat::kYuy2), 8);
  EXPECT_EQ(static_cast<int>(RawFormat::kS16), 256);
  EXPECT_EQ(static_cast<int>(RawFormat::kF32Planar), 261);
  EXPECT_EQ(FindRawFormat(RawFormat::kUnknown), nullptr);
  EXPECT_EQ(FindRawFormat(static_cast<RawFormat>(999)), nullptr);
}

TEST(RawFrameTest, MalformedMessagesAreRefusedNamingTheField) {
  RawFrame good_frame = Nv12(64, 48);
  uint64_t bytes = LayoutRawFrame(good_frame, 64);
  good_frame.extensions = {{kRawExtensionUser, "xyz"}};
  std::string good = *EncodeRawFrame(good_frame);
  std::vector<uint64_t> sizes = {bytes};
  auto with = [&](const std::function<void(RawWireHeader&)>& change) {
    return testing::WithHeader(good, change);
  };
  std::vector<testing::RefusalCase> cases = {
      {"short", sizes, "metadata of 5 bytes is not a memd raw frame (its header has 224 bytes)"},
      {with([](RawWireHeader& h) { h.magic = 1; }), sizes, "field magic is 0x00000001"},
      {with([](RawWireHeader& h) { h.version = 9; }), sizes,
       "field version is 9; this library reads 1"},
      {with([](RawWireHeader& h) { h.header_bytes = 100; }), sizes, "field header_bytes is 100"},
      {with([](RawWireHeader& h) { h.reserved1 = 5; }), sizes, "field reserved1 is 5; must be 0"},
      {with([](RawWireHeader& h) { h.format = 999; }), sizes, "field format is 999; not a memd"},
      {with([](RawWireHeader& h) { h.format = 0; }), sizes, "field format is 0"},
      {with([](RawWireHeader& h) { h.flags = 0x100; }), sizes,
       "field flags is 0x100; only bits 0x3f are defined"},
      {with([](RawWireHeader& h) { h.width = 0; }), sizes,
       "field width is 0; from 1 to 32768 are allowed"},
      {with([](RawWireHeader& h) { h.height = 40000; }), sizes,
       "field height is 40000; from 1 to 32768 are allowed"},
      {with([](RawWireHeader& h) { h.plane_count = 3; }), sizes,
       "field plane_count is 3; format nv12 has 2 planes"},
      {with([](RawWireHeader& h) { h.plane_count = 9; }), sizes, "field plane_count is 9"},
      {good, {}, "field buffer_count is 1; the message carries 0 buffers"},
      {with([](RawWireHeader& h) { h.planes[1].buffer_index = 4; }), sizes,
       "field planes[1].buffer_index is 4; the frame has 1 buffers"},
      {with([](RawWireHeader& h) { h.planes[0].stride_bytes = 32; }), sizes,
       "field planes[0].stride_bytes is 32; nv12 row needs at least 64"},
      {with([](RawWireHeader& h) { h.planes[1].offset_bytes = 1u << 30; }), sizes,
       "field planes[1].offset_bytes is 1073741824; the plane's 1536 bytes do not fit buffer 0 "
       "of 4608 bytes"},
      {with([](RawWireHeader& h) { h.height = 100; }), sizes, "do not fit buffer 0 of 4608 bytes"},
      {with([](RawWireHeader& h) { h.planes[1].offset_bytes = 0; }), sizes,
       "field planes[1].offset_bytes is 0; the plane's 1536 bytes overlap planes[0] (3072 bytes "
       "at offset 0 of buffer 0); planes must not share bytes"},
      {with([](RawWireHeader& h) { h.duration_ns = -5; }), sizes, "field duration_ns is -5"},
      {with([](RawWireHeader& h) { h.extension_bytes = 4; }), sizes,
       "field extension_bytes is 4; the metadata holds 11 bytes after the header"},
      {good.substr(0, good.size() - 1), sizes, "field extension_bytes is 11"},
      {with([](RawWireHeader& h) { h.extension_bytes = 12; }) + "\x01", sizes,
       "field extension_bytes is 12; an entry header at byte 235 runs past the end"},
      {with([](RawWireHeader& h) { h.flags = kRawFrameEndOfStream; }), sizes,
       "field plane_count is 2; an end-of-stream message carries no planes"},
  };
  // An entry whose size runs past the block.
  std::string bad_entry = with([](RawWireHeader& h) { h.extension_bytes = 11; });
  bad_entry[sizeof(RawWireHeader) + 4] = 9;  // entry says 9 bytes, 3 follow
  cases.push_back({bad_entry, sizes, "field extensions[].size_bytes is 9; 3 bytes remain"});
  testing::ExpectAllRefused(cases, DecodeRawFrame);
}

// Issue 24, defect 10: planar f32 stereo with both channel planes at offset 0
// passed, and memdsrc pushed a buffer GStreamer could not give an audio meta.
// Planes of one buffer may touch but never share a byte, audio or video;
// planes in different buffers may sit at the same offsets.
TEST(RawFrameTest, OverlappingPlanesAreRefused) {
  RawFrame frame = testing::PlanarF32Stereo();
  uint64_t bytes = LayoutRawFrame(frame, 1);
  ASSERT_EQ(bytes, 8192u);
  std::string good = *EncodeRawFrame(frame);
  for (uint64_t offset : {uint64_t{0}, uint64_t{4095}, uint64_t{1}}) {
    std::string wire = testing::WithHeader(
        good, [&](RawWireHeader& h) { h.planes[1].offset_bytes = offset; });
    absl::StatusOr<RawFrame> back = DecodeRawFrame(wire, {bytes});
    EXPECT_EQ(back.status().code(), absl::StatusCode::kInvalidArgument) << offset;
    EXPECT_NE(back.status().message().find(
                  absl::StrFormat("field planes[1].offset_bytes is %u; the plane's 4096 bytes "
                                  "overlap planes[0] (4096 bytes at offset 0 of buffer 0)",
                                  offset)),
              std::string::npos)
        << back.status();
    RawFrame sent = frame;
    sent.planes[1].offset_bytes = offset;
    EXPECT_EQ(EncodeRawFrame(sent).status().code(), absl::StatusCode::kInvalidArgument) << offset;
  }
  // The first plane after the second one, also overlapping.
  std::string swapped = testing::WithHeader(good, [](RawWireHeader& h) {
    h.planes[0].offset_bytes = 4000;
    h.planes[1].offset_bytes = 100;
  });
  EXPECT_EQ(DecodeRawFrame(swapped, {bytes}).status().code(), absl::StatusCode::kInvalidArgument);
  // Touching planes, and planes at the same offset of different buffers.
  EXPECT_TRUE(DecodeRawFrame(good, {bytes}).ok());
  frame.buffer_count = 2;
  frame.planes[1] = RawPlane{1, 4096, 0};
  absl::StatusOr<std::string> two = EncodeRawFrame(frame);
  ASSERT_TRUE(two.ok()) << two.status();
  EXPECT_TRUE(DecodeRawFrame(*two, {4096, 4096}).ok());
  // Video too: NV12's chroma plane inside the luma plane.
  RawFrame video = Nv12(64, 48);
  LayoutRawFrame(video, 1);
  video.planes[1].offset_bytes = 64 * 47;
  EXPECT_NE(EncodeRawFrame(video).status().message().find("overlap planes[0]"), std::string::npos);
}

TEST(RawFrameTest, AudioLimitsAreNamed) {
  RawFrame frame;
  frame.format = RawFormat::kS16;
  frame.samples = 1024;
  frame.sample_rate_hz = 48000;
  frame.channels = 65;
  LayoutRawFrame(frame, 1);
  absl::StatusOr<std::string> wire = EncodeRawFrame(frame);
  EXPECT_EQ(wire.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(wire.status().message().find("field channels is 65; from 1 to 64 are allowed"),
            std::string::npos)
      << wire.status();
  frame.channels = 2;
  frame.sample_rate_hz = 0;
  LayoutRawFrame(frame, 1);
  wire = EncodeRawFrame(frame);
  EXPECT_NE(wire.status().message().find("field sample_rate_hz is 0; from 1 to 768000"),
            std::string::npos)
      << wire.status();
  frame.format = RawFormat::kF32Planar;
  frame.sample_rate_hz = 48000;
  frame.channels = 9;
  wire = EncodeRawFrame(frame);
  EXPECT_NE(wire.status().message().find("field channels is 9; from 1 to 8 are allowed"),
            std::string::npos)
      << wire.status();
}

}  // namespace
}  // namespace memd
