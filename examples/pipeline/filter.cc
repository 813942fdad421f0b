// memd_pipeline_filter: takes frames from one channel and puts frames on
// another. Modes:
//   pass     forwards each frame as it is (by reference with memd)
//   overlay  writes a copy with a moving inverted box into a new pool frame
//   scale    converts to --width x --height with libswscale, into a new pool frame
#include <unistd.h>

#include <thread>

#include <CLI/CLI.hpp>

extern "C" {
#include <libswscale/swscale.h>
}

#include "absl/strings/str_format.h"
#include "stage.h"

namespace memd::pipeline {
namespace {

// Inverts the luma of a square that moves one step per frame.
void DrawBox(AVFrame* frame, int64_t index) {
  int side = std::max(8, frame->height / 8);
  int x0 = static_cast<int>((index * 8) % std::max(1, frame->width - side));
  int y0 = frame->height / 2 - side / 2;
  for (int y = y0; y < y0 + side && y < frame->height; ++y) {
    uint8_t* row = frame->data[0] + static_cast<ptrdiff_t>(y) * frame->linesize[0];
    for (int x = x0; x < x0 + side && x < frame->width; ++x) row[x] = 255 - row[x];
  }
}

absl::Status Run(Stage& stage, FrameSource& in, FrameSink& out, const std::string& mode,
                 int width, int height, int delay_ms) {
  struct SwsFree {
    void operator()(SwsContext* c) const { sws_freeContext(c); }
  };
  std::unique_ptr<SwsContext, SwsFree> sws;
  int64_t index = 0;
  for (;; ++index) {
    absl::StatusOr<FramePtr> frame = in.Next();
    if (!frame.ok()) return frame.status();
    if (*frame == nullptr) break;
    if (delay_ms > 0) std::this_thread::sleep_for(std::chrono::milliseconds(delay_ms));
    const AVFrame* src = frame->get();
    FramePtr made;
    if (mode != "pass") {
      int w = mode == "scale" ? width : src->width, h = mode == "scale" ? height : src->height;
      absl::StatusOr<FramePtr> dst = stage.NewVideoFrame(src->format, w, h);
      if (!dst.ok()) return dst.status();
      made = std::move(*dst);
      av_frame_copy_props(made.get(), src);
      if (mode == "overlay") {
        av_frame_copy(made.get(), src);
        DrawBox(made.get(), index);
      } else {
        auto format = static_cast<AVPixelFormat>(src->format);
        sws.reset(sws_getCachedContext(sws.release(), src->width, src->height, format, w, h,
                                       format, SWS_BILINEAR, nullptr, nullptr, nullptr));
        if (sws == nullptr) return absl::InvalidArgumentError("libswscale refused the conversion");
        sws_scale(sws.get(), src->data, src->linesize, 0, src->height, made->data, made->linesize);
      }
      src = made.get();
    }
    stage.Record(src);
    if (absl::Status s = out.Put(src); !s.ok()) return s;
  }
  return out.End();
}

}  // namespace
}  // namespace memd::pipeline

int main(int argc, char** argv) {
  using namespace memd::pipeline;
  CLI::App app{"memd pipeline stage 2: filter frames from one channel onto another"};
  StageOptions options;
  std::string input = "raw", output = "filtered", mode = "overlay";
  int width = 0, height = 0, delay_ms = 0;
  app.add_option("--input", input, "channel to take frames from, or - for stdin (copies)");
  app.add_option("--output", output, "channel to send frames on, or - for stdout (copies)");
  app.add_option("--mode", mode, "pass, overlay or scale")->check(CLI::IsMember({"pass", "overlay", "scale"}));
  app.add_option("--width", width, "scale: output width")->check(CLI::Range(1, 16384));
  app.add_option("--height", height, "scale: output height")->check(CLI::Range(1, 16384));
  app.add_option("--delay-ms", delay_ms, "sleep this long per frame (tests: a slow stage)");
  AddStageOptions(app, options);
  CLI11_PARSE(app, argc, argv);
  if (mode == "scale" && (width == 0 || height == 0)) {
    std::fprintf(stderr, "--mode scale needs --width and --height\n");
    return 2;
  }
  Stage stage("filter", options);
  absl::Status status = stage.Open(input, output);
  std::unique_ptr<FrameSource> source;
  std::unique_ptr<FrameSink> sink;
  if (status.ok()) {
    auto in = stage.Source(input);
    auto out = stage.Sink(output);
    status = !in.ok() ? in.status() : out.status();
    if (in.ok() && out.ok()) {
      source = std::move(*in);
      sink = std::move(*out);
      status = Run(stage, *source, *sink, mode, width, height, delay_ms);
    }
  }
  return stage.Finish(status);
}
