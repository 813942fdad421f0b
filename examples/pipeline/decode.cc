// memd_pipeline_decode: demuxes and decodes the first video stream of a file
// with libavformat + libavcodec, straight into memd pool memory (the pool is
// the decoder's get_buffer2), and sends each frame on a channel ("-": copies
// it to stdout instead).
#include <CLI/CLI.hpp>

extern "C" {
#include <libavformat/avformat.h>
}

#include "absl/strings/str_format.h"
#include "stage.h"

namespace memd::pipeline {
namespace {

struct Closer {
  void operator()(AVFormatContext* f) const { avformat_close_input(&f); }
  void operator()(AVCodecContext* c) const { avcodec_free_context(&c); }
  void operator()(AVPacket* p) const { av_packet_free(&p); }
};

absl::Status Run(Stage& stage, const std::string& input, FrameSink& out, int64_t max_frames) {
  AVFormatContext* raw_format = nullptr;
  if (int r = avformat_open_input(&raw_format, input.c_str(), nullptr, nullptr); r < 0) {
    return absl::NotFoundError(absl::StrFormat("cannot open input '%s': %s", input, AvError(r)));
  }
  std::unique_ptr<AVFormatContext, Closer> format(raw_format);
  if (int r = avformat_find_stream_info(format.get(), nullptr); r < 0) {
    return absl::InvalidArgumentError(absl::StrFormat("'%s': %s", input, AvError(r)));
  }
  const AVCodec* codec = nullptr;
  int index = av_find_best_stream(format.get(), AVMEDIA_TYPE_VIDEO, -1, -1, &codec, 0);
  if (index < 0) return absl::InvalidArgumentError(absl::StrFormat("'%s' has no video stream", input));
  AVStream* stream = format->streams[index];
  std::unique_ptr<AVCodecContext, Closer> decoder(avcodec_alloc_context3(codec));
  avcodec_parameters_to_context(decoder.get(), stream->codecpar);
  decoder->thread_count = 1;  // one thread: its CPU time is the stage's
  // The codec context (and its reference frames) goes before the pool.
  if (stage.pool() != nullptr) stage.pool()->Install(decoder.get());
  if (int r = avcodec_open2(decoder.get(), codec, nullptr); r < 0) {
    return absl::InvalidArgumentError(absl::StrFormat("cannot open decoder %s: %s", codec->name, AvError(r)));
  }
  std::unique_ptr<AVPacket, Closer> packet(av_packet_alloc());
  FramePtr frame(av_frame_alloc());
  int64_t frames = 0;
  auto drain = [&]() -> absl::Status {
    for (;;) {
      int r = avcodec_receive_frame(decoder.get(), frame.get());
      if (r == AVERROR(EAGAIN) || r == AVERROR_EOF) return absl::OkStatus();
      if (r < 0) return absl::DataLossError(absl::StrFormat("decoding '%s': %s", input, AvError(r)));
      frame->time_base = stream->time_base;
      frame->pts = frame->best_effort_timestamp;
      stage.Record(frame.get());
      absl::Status s = out.Put(frame.get());
      av_frame_unref(frame.get());
      if (!s.ok()) return s;
      if (++frames == max_frames) return absl::OkStatus();
    }
  };
  while (frames != max_frames && av_read_frame(format.get(), packet.get()) >= 0) {
    if (packet->stream_index == index) {
      int r = avcodec_send_packet(decoder.get(), packet.get());
      av_packet_unref(packet.get());
      if (r < 0 && r != AVERROR(EAGAIN)) {
        return absl::DataLossError(absl::StrFormat("decoding '%s': %s", input, AvError(r)));
      }
      if (absl::Status s = drain(); !s.ok()) return s;
    } else {
      av_packet_unref(packet.get());
    }
  }
  avcodec_send_packet(decoder.get(), nullptr);
  if (absl::Status s = drain(); !s.ok()) return s;
  return out.End();
}

}  // namespace
}  // namespace memd::pipeline

int main(int argc, char** argv) {
  using namespace memd::pipeline;
  CLI::App app{"memd pipeline stage 1: decode a file into memd frames"};
  StageOptions options;
  std::string input, output = "raw";
  int64_t max_frames = -1;
  app.add_option("--input", input, "media file to decode")->required();
  app.add_option("--output", output, "channel to send frames on, or - for stdout (copies)");
  app.add_option("--frames", max_frames, "stop after this many frames (-1: all)");
  AddStageOptions(app, options);
  CLI11_PARSE(app, argc, argv);
  Stage stage("decode", options);
  absl::Status status = stage.Open("-", output);
  std::unique_ptr<FrameSink> sink;
  if (status.ok()) {
    auto made = stage.Sink(output);
    status = made.status();
    if (made.ok()) sink = std::move(*made);
  }
  if (status.ok()) status = Run(stage, input, *sink, max_frames);
  return stage.Finish(status);
}
