// Test helpers for malformed raw-frame messages, shared by the raw-frame
// codec's tests and memd::ffmpeg's (which decodes through it).
#ifndef MEMD_TESTS_UNIT_CLIENT_RAW_FRAME_CASES_H_
#define MEMD_TESTS_UNIT_CLIENT_RAW_FRAME_CASES_H_

#include <cstring>
#include <functional>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "memd/raw_frame.h"

namespace memd::testing {

// `metadata` with its header changed by `change` (the extension block kept).
inline std::string WithHeader(const std::string& metadata,
                              const std::function<void(RawWireHeader&)>& change) {
  RawWireHeader h;
  std::memcpy(&h, metadata.data(), sizeof(h));
  change(h);
  return std::string(reinterpret_cast<const char*>(&h), sizeof(h)) + metadata.substr(sizeof(h));
}

// Planar f32 stereo, 1024 samples per channel at 48 kHz, no planes yet
// (LayoutRawFrame lays them out).
inline RawFrame PlanarF32Stereo() {
  RawFrame frame;
  frame.format = RawFormat::kF32Planar;
  frame.samples = 1024;
  frame.sample_rate_hz = 48000;
  frame.channels = 2;
  return frame;
}

// A message a decoder must refuse with INVALID_ARGUMENT whose text has `text`.
struct RefusalCase {
  std::string metadata;
  std::vector<uint64_t> sizes;  // the message's buffers
  std::string text;
};

// `decode(metadata, sizes)` returns an absl::StatusOr of anything.
template <typename Decode>
void ExpectAllRefused(const std::vector<RefusalCase>& cases, Decode decode) {
  for (const RefusalCase& c : cases) {
    auto got = decode(c.metadata, c.sizes);
    EXPECT_EQ(got.status().code(), absl::StatusCode::kInvalidArgument) << c.text;
    EXPECT_NE(got.status().message().find(c.text), std::string::npos)
        << "want: " << c.text << "\ngot:  " << got.status();
  }
}

}  // namespace memd::testing

#endif  // MEMD_TESTS_UNIT_CLIENT_RAW_FRAME_CASES_H_
