// memd_pipeline_encode: takes frames from a channel ("-": stdin) and
// encodes them into a file with libavcodec + libavformat (the container
// follows the file name, e.g. .mkv). If its input fails mid-stream, the
// frames it got are still written and the file is finished.
#include <CLI/CLI.hpp>

extern "C" {
#include <libavformat/avformat.h>
}

#include "absl/strings/str_format.h"
#include "stage.h"

namespace memd::pipeline {
namespace {

class Encoder {
 public:
  Encoder(std::string path, std::string codec) : path_(std::move(path)), codec_name_(std::move(codec)) {}
  ~Encoder() {
    avcodec_free_context(&codec_);
    if (format_ != nullptr && (format_->oformat->flags & AVFMT_NOFILE) == 0) avio_closep(&format_->pb);
    avformat_free_context(format_);
    av_packet_free(&packet_);
  }

  absl::Status Open(const AVFrame* first) {
    const AVCodec* codec = avcodec_find_encoder_by_name(codec_name_.c_str());
    if (codec == nullptr) return absl::NotFoundError(absl::StrFormat("no encoder '%s'", codec_name_));
    if (int r = avformat_alloc_output_context2(&format_, nullptr, nullptr, path_.c_str()); r < 0) {
      return absl::InvalidArgumentError(absl::StrFormat("output '%s': %s", path_, AvError(r)));
    }
    codec_ = avcodec_alloc_context3(codec);
    codec_->width = first->width;
    codec_->height = first->height;
    codec_->pix_fmt = static_cast<AVPixelFormat>(first->format);
    codec_->time_base = first->time_base.num > 0 ? first->time_base : AVRational{1, 25};
    codec_->sample_aspect_ratio = first->sample_aspect_ratio;
    codec_->thread_count = 1;
    codec_->max_b_frames = 0;
    codec_->gop_size = 25;
    codec_->global_quality = FF_QP2LAMBDA * 4;
    codec_->flags |= AV_CODEC_FLAG_QSCALE;
    if ((format_->oformat->flags & AVFMT_GLOBALHEADER) != 0) codec_->flags |= AV_CODEC_FLAG_GLOBAL_HEADER;
    if (int r = avcodec_open2(codec_, codec, nullptr); r < 0) {
      return absl::InvalidArgumentError(absl::StrFormat("encoder %s for %dx%d: %s", codec_name_,
                                                        first->width, first->height, AvError(r)));
    }
    stream_ = avformat_new_stream(format_, nullptr);
    avcodec_parameters_from_context(stream_->codecpar, codec_);
    stream_->time_base = codec_->time_base;
    if ((format_->oformat->flags & AVFMT_NOFILE) == 0) {
      if (int r = avio_open(&format_->pb, path_.c_str(), AVIO_FLAG_WRITE); r < 0) {
        return absl::PermissionDeniedError(absl::StrFormat("cannot write '%s': %s", path_, AvError(r)));
      }
    }
    if (int r = avformat_write_header(format_, nullptr); r < 0) {
      return absl::InvalidArgumentError(absl::StrFormat("'%s' header: %s", path_, AvError(r)));
    }
    packet_ = av_packet_alloc();
    return absl::OkStatus();
  }

  bool open() const { return packet_ != nullptr; }

  // nullptr flushes.
  absl::Status Encode(AVFrame* frame) {
    if (frame != nullptr) frame->pict_type = AV_PICTURE_TYPE_NONE;
    if (int r = avcodec_send_frame(codec_, frame); r < 0) {
      return absl::InvalidArgumentError(absl::StrFormat("encoding: %s", AvError(r)));
    }
    for (;;) {
      int r = avcodec_receive_packet(codec_, packet_);
      if (r == AVERROR(EAGAIN) || r == AVERROR_EOF) return absl::OkStatus();
      if (r < 0) return absl::InternalError(absl::StrFormat("encoding: %s", AvError(r)));
      av_packet_rescale_ts(packet_, codec_->time_base, stream_->time_base);
      packet_->stream_index = stream_->index;
      if (int w = av_interleaved_write_frame(format_, packet_); w < 0) {
        return absl::InternalError(absl::StrFormat("writing '%s': %s", path_, AvError(w)));
      }
    }
  }

  absl::Status Finish() {
    if (absl::Status s = Encode(nullptr); !s.ok()) return s;
    if (int r = av_write_trailer(format_); r < 0) {
      return absl::InternalError(absl::StrFormat("'%s' trailer: %s", path_, AvError(r)));
    }
    return absl::OkStatus();
  }

 private:
  const std::string path_, codec_name_;
  AVFormatContext* format_ = nullptr;
  AVCodecContext* codec_ = nullptr;
  AVStream* stream_ = nullptr;
  AVPacket* packet_ = nullptr;
};

absl::Status Run(Stage& stage, FrameSource& in, Encoder& encoder) {
  absl::Status input_status;
  for (;;) {
    absl::StatusOr<FramePtr> frame = in.Next();
    if (!frame.ok()) {
      input_status = frame.status();  // finish the file with what came
      break;
    }
    if (*frame == nullptr) break;
    stage.Record(frame->get());
    if (!encoder.open()) {
      if (absl::Status s = encoder.Open(frame->get()); !s.ok()) return s;
    }
    if (absl::Status s = encoder.Encode(frame->get()); !s.ok()) return s;
  }
  if (encoder.open()) {
    if (absl::Status s = encoder.Finish(); !s.ok()) return s;
  }
  return input_status;
}

}  // namespace
}  // namespace memd::pipeline

int main(int argc, char** argv) {
  using namespace memd::pipeline;
  CLI::App app{"memd pipeline stage 3: encode frames from a channel into a file"};
  StageOptions options;
  std::string input = "filtered", output, codec = "mpeg4";
  app.add_option("--input", input, "channel to take frames from, or - for stdin (copies)");
  app.add_option("--output", output, "file to write (container from its name)")->required();
  app.add_option("--codec", codec, "libavcodec encoder name");
  AddStageOptions(app, options);
  CLI11_PARSE(app, argc, argv);
  Stage stage("encode", options);
  absl::Status status = stage.Open(input, "-");
  if (status.ok()) {
    auto source = stage.Source(input);
    status = source.status();
    if (source.ok()) {
      Encoder encoder(output, codec);
      status = Run(stage, **source, encoder);
    }
  }
  return stage.Finish(status);
}
