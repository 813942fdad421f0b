// Sends an NV12 frame in pool memory to itself over a channel and checks
// that the received frame has the same pictures and timestamps: memd::ffmpeg
// from an installed prefix, on a running daemon ($MEMD_ADDRESS).
#include <cstdio>

#include "memd/ffmpeg.h"

int main() {
  auto client = memd::Client::Connect();
  if (!client.ok()) {
    std::fprintf(stderr, "connect: %s\n", client.status().ToString().c_str());
    return 1;
  }
  memd::ffmpeg::FramePool pool(**client);
  memd::ffmpeg::FramePtr frame(av_frame_alloc());
  frame->format = AV_PIX_FMT_NV12;
  frame->width = 64;
  frame->height = 48;
  if (absl::Status s = pool.AllocVideo(frame.get()); !s.ok()) {
    std::fprintf(stderr, "alloc: %s\n", s.ToString().c_str());
    return 1;
  }
  for (int p = 0; p < 2; ++p) {
    for (int y = 0; y < (p == 0 ? 48 : 24); ++y) {
      for (int x = 0; x < 64; ++x) frame->data[p][y * frame->linesize[p] + x] = uint8_t(x + y + p);
    }
  }
  frame->pts = 42;
  frame->time_base = AVRational{1, 25};
  if (absl::Status s = pool.Send("install", frame.get(), 1000); !s.ok()) {
    std::fprintf(stderr, "send: %s\n", s.ToString().c_str());
    return 1;
  }
  absl::StatusOr<memd::ffmpeg::FramePtr> got = pool.Receive("install", 1000);
  if (!got.ok() || *got == nullptr) {
    std::fprintf(stderr, "receive: %s\n", got.status().ToString().c_str());
    return 1;
  }
  bool same = memd::ffmpeg::FrameChecksum(got->get()) == memd::ffmpeg::FrameChecksum(frame.get()) &&
              (*got)->pts == 42 && (*got)->format == AV_PIX_FMT_NV12;
  std::printf("%s\n", same ? "frame received intact" : "frame differs");
  return same ? 0 : 1;
}
