#include "stage.h"

#include <fcntl.h>
#include <sys/resource.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <ctime>

extern "C" {
#include <libavutil/imgutils.h>
#include <libavutil/pixdesc.h>
}

#include "absl/strings/str_format.h"

namespace memd::pipeline {
namespace {

double Seconds(clockid_t clock) {
  timespec ts{};
  clock_gettime(clock, &ts);
  return static_cast<double>(ts.tv_sec) + static_cast<double>(ts.tv_nsec) * 1e-9;
}

// Adds the CPU time of its scope to a stage's transport time.
class TransportTimer {
 public:
  explicit TransportTimer(Stage& stage) : stage_(stage), start_(ThreadCpuSeconds()) {}
  ~TransportTimer() { stage_.AddTransportCpu(ThreadCpuSeconds() - start_); }

 private:
  Stage& stage_;
  double start_;
};

// --- memd channels: references move, bytes stay where they are ---

class ChannelSink : public FrameSink {
 public:
  ChannelSink(Stage& stage, std::string channel) : stage_(stage), channel_(std::move(channel)) {}
  absl::Status Put(const AVFrame* frame) override {
    TransportTimer timer(stage_);
    // Posted: the stage goes on with its next frame while the daemon takes
    // this one; a failure shows at the next Put or at End. A filter asks for
    // its next frame right after: that request wakes the daemon for both.
    absl::Status s = stage_.pool()->Post(
        channel_, frame, stage_.options().timeout_ms,
        stage_.receives_from_channel() ? PostWake::kWithNextCall : PostWake::kNow);
    if (absl::IsResourceExhausted(s)) {
      return absl::UnavailableError(absl::StrFormat(
          "channel '%s' stayed full for %d ms: is the next stage running? (%s)", channel_,
          stage_.options().timeout_ms, s.message()));
    }
    return s;
  }
  absl::Status End() override {
    return stage_.pool()->SendEndOfStream(channel_, stage_.options().timeout_ms);
  }

 private:
  Stage& stage_;
  const std::string channel_;
};

class ChannelSource : public FrameSource {
 public:
  ChannelSource(Stage& stage, std::string channel) : stage_(stage), channel_(std::move(channel)) {}
  absl::StatusOr<FramePtr> Next() override {
    TransportTimer timer(stage_);
    absl::StatusOr<FramePtr> frame = stage_.pool()->Receive(channel_, stage_.options().timeout_ms);
    if (absl::IsDeadlineExceeded(frame.status())) {
      return absl::UnavailableError(absl::StrFormat(
          "no frame on channel '%s' for %d ms: is the previous stage running?", channel_,
          stage_.options().timeout_ms));
    }
    return frame;
  }

 private:
  Stage& stage_;
  const std::string channel_;
};

// --- pipes: every byte of every frame is copied through the kernel ---

struct PipeHeader {
  uint32_t magic;  // kPipeMagic
  int32_t end;     // 1: end of stream, no planes follow
  int32_t format, width, height, time_base_num, time_base_den, reserved;
  int64_t pts, pkt_duration;
};
static_assert(sizeof(PipeHeader) == 48);
constexpr uint32_t kPipeMagic = 0x5050444d;  // "MDPP"

absl::Status WriteAll(int fd, const uint8_t* p, size_t n) {
  while (n > 0) {
    ssize_t w = ::write(fd, p, n);
    if (w < 0 && errno == EINTR) continue;
    if (w <= 0) return absl::UnavailableError(absl::StrFormat("pipe write: %s", std::strerror(errno)));
    p += w;
    n -= static_cast<size_t>(w);
  }
  return absl::OkStatus();
}

// Returns false at a clean end of file before the first byte.
absl::StatusOr<bool> ReadAll(int fd, uint8_t* p, size_t n) {
  size_t got = 0;
  while (got < n) {
    ssize_t r = ::read(fd, p + got, n - got);
    if (r < 0 && errno == EINTR) continue;
    if (r == 0 && got == 0) return false;
    if (r <= 0) {
      return absl::UnavailableError(absl::StrFormat(
          "pipe closed after %u of %u bytes of a frame: did the previous stage die?", got, n));
    }
    got += static_cast<size_t>(r);
  }
  return true;
}

int PlaneRows(const AVFrame* frame, int p) {
  const AVPixFmtDescriptor* desc = av_pix_fmt_desc_get(static_cast<AVPixelFormat>(frame->format));
  bool chroma = (p == 1 || p == 2) && (desc->flags & AV_PIX_FMT_FLAG_RGB) == 0;
  return chroma ? AV_CEIL_RSHIFT(frame->height, desc->log2_chroma_h) : frame->height;
}

// Each visible row of each plane, in order.
template <typename RowFn>
absl::Status ForEachRow(const AVFrame* frame, RowFn fn) {
  auto format = static_cast<AVPixelFormat>(frame->format);
  for (int p = 0; p < av_pix_fmt_count_planes(format); ++p) {
    int row_bytes = av_image_get_linesize(format, frame->width, p);
    int rows = PlaneRows(frame, p);
    if (frame->linesize[p] == row_bytes) {  // contiguous: one call per plane
      if (absl::Status s = fn(frame->data[p], static_cast<size_t>(row_bytes) * rows); !s.ok()) return s;
      continue;
    }
    for (int y = 0; y < rows; ++y) {
      if (absl::Status s = fn(frame->data[p] + static_cast<ptrdiff_t>(y) * frame->linesize[p],
                              static_cast<size_t>(row_bytes));
          !s.ok()) {
        return s;
      }
    }
  }
  return absl::OkStatus();
}

class PipeSink : public FrameSink {
 public:
  explicit PipeSink(Stage& stage) : stage_(stage) {
    ::fcntl(STDOUT_FILENO, F_SETPIPE_SZ, 1 << 20);  // fewer wake-ups: fair to the copy
  }
  absl::Status Put(const AVFrame* frame) override {
    TransportTimer timer(stage_);
    PipeHeader h{kPipeMagic, 0, frame->format, frame->width, frame->height,
                 frame->time_base.num, frame->time_base.den, 0, frame->pts, frame->pkt_duration};
    if (absl::Status s = WriteAll(STDOUT_FILENO, reinterpret_cast<uint8_t*>(&h), sizeof(h)); !s.ok()) return s;
    return ForEachRow(frame, [](const uint8_t* p, size_t n) { return WriteAll(STDOUT_FILENO, p, n); });
  }
  absl::Status End() override {
    PipeHeader h{};
    h.magic = kPipeMagic;
    h.end = 1;
    return WriteAll(STDOUT_FILENO, reinterpret_cast<uint8_t*>(&h), sizeof(h));
  }

 private:
  Stage& stage_;
};

class PipeSource : public FrameSource {
 public:
  explicit PipeSource(Stage& stage) : stage_(stage) {}
  absl::StatusOr<FramePtr> Next() override {
    TransportTimer timer(stage_);
    PipeHeader h{};
    absl::StatusOr<bool> got = ReadAll(STDIN_FILENO, reinterpret_cast<uint8_t*>(&h), sizeof(h));
    if (!got.ok()) return got.status();
    if (!*got) return absl::UnavailableError("pipe closed without end of stream: did the previous stage die?");
    if (h.magic != kPipeMagic) return absl::DataLossError("pipe: not a frame header");
    if (h.end == 1) return FramePtr();
    FramePtr frame(av_frame_alloc());
    frame->format = h.format;
    frame->width = h.width;
    frame->height = h.height;
    if (av_frame_get_buffer(frame.get(), 64) < 0) {
      return absl::DataLossError(absl::StrFormat("pipe: bad frame %dx%d format %d", h.width, h.height, h.format));
    }
    frame->time_base = AVRational{h.time_base_num, h.time_base_den};
    frame->pts = h.pts;
    frame->pkt_duration = h.pkt_duration;
    absl::Status s = ForEachRow(frame.get(), [](const uint8_t* p, size_t n) -> absl::Status {
      absl::StatusOr<bool> ok = ReadAll(STDIN_FILENO, const_cast<uint8_t*>(p), n);
      if (!ok.ok()) return ok.status();
      return *ok ? absl::OkStatus() : absl::UnavailableError("pipe closed inside a frame");
    });
    if (!s.ok()) return s;
    return frame;
  }

 private:
  Stage& stage_;
};

}  // namespace

void AddStageOptions(CLI::App& app, StageOptions& options) {
  app.add_option("--address", options.address, "memd address (default $MEMD_ADDRESS)");
  app.add_option("--pool", options.pool, "memd pool (default $MEMD_POOL or 'default')");
  app.add_option("--timeout-ms", options.timeout_ms, "longest wait for room or for a frame");
  app.add_option("--checksums", options.checksums, "write 'index pts checksum' per frame here");
  app.add_option("--report", options.report, "write the JSON report here (default stderr)");
}

double ThreadCpuSeconds() { return Seconds(CLOCK_THREAD_CPUTIME_ID); }

std::string AvError(int code) {
  char text[AV_ERROR_MAX_STRING_SIZE] = {};
  av_strerror(code, text, sizeof(text));
  return text;
}

Stage::Stage(std::string name, StageOptions options)
    : name_(std::move(name)), options_(std::move(options)), start_wall_s_(Seconds(CLOCK_MONOTONIC)) {}

Stage::~Stage() {
  if (checksums_ != nullptr) std::fclose(checksums_);
  pool_.reset();  // before the client it uses
}

absl::Status Stage::Open(const std::string& in, const std::string& out) {
  if (!options_.checksums.empty()) {
    checksums_ = std::fopen(options_.checksums.c_str(), "w");
    if (checksums_ == nullptr) {
      return absl::InvalidArgumentError(absl::StrFormat("cannot write checksum file '%s': %s",
                                                        options_.checksums, std::strerror(errno)));
    }
  }
  if (in == "-" && out == "-") return absl::OkStatus();
  absl::StatusOr<std::unique_ptr<Client>> client =
      Client::Connect({.address = options_.address, .pool = options_.pool, .client_name = name_});
  if (!client.ok()) return client.status();
  client_ = std::move(*client);
  pool_ = std::make_unique<ffmpeg::FramePool>(*client_);
  return absl::OkStatus();
}

absl::StatusOr<std::unique_ptr<FrameSource>> Stage::Source(const std::string& link) {
  if (link == "-") return std::unique_ptr<FrameSource>(new PipeSource(*this));
  receives_from_channel_ = true;
  return std::unique_ptr<FrameSource>(new ChannelSource(*this, link));
}

absl::StatusOr<std::unique_ptr<FrameSink>> Stage::Sink(const std::string& link) {
  if (link == "-") return std::unique_ptr<FrameSink>(new PipeSink(*this));
  return std::unique_ptr<FrameSink>(new ChannelSink(*this, link));
}

absl::StatusOr<FramePtr> Stage::NewVideoFrame(int format, int width, int height) {
  FramePtr frame(av_frame_alloc());
  frame->format = format;
  frame->width = width;
  frame->height = height;
  if (pool_ != nullptr) {
    if (absl::Status s = pool_->AllocVideo(frame.get()); !s.ok()) return s;
  } else if (av_frame_get_buffer(frame.get(), 64) < 0) {
    return absl::ResourceExhaustedError(absl::StrFormat("no heap frame %dx%d", width, height));
  }
  return frame;
}

void Stage::Record(const AVFrame* frame) {
  if (checksums_ != nullptr) {
    std::fprintf(checksums_, "%llu %lld %016llx\n", static_cast<unsigned long long>(frames_),
                 static_cast<long long>(frame->pts),
                 static_cast<unsigned long long>(ffmpeg::FrameChecksum(frame)));
  }
  ++frames_;
}

int Stage::Finish(const absl::Status& status) {
  rusage usage{};
  getrusage(RUSAGE_SELF, &usage);
  double cpu_s = static_cast<double>(usage.ru_utime.tv_sec + usage.ru_stime.tv_sec) +
                 static_cast<double>(usage.ru_utime.tv_usec + usage.ru_stime.tv_usec) * 1e-6;
  std::string error = status.ok() ? "" : std::string(status.message());
  for (char& c : error) c = c == '"' ? '\'' : c;
  std::string json = absl::StrFormat(
      "{\"stage\": \"%s\", \"frames\": %u, \"cpu_s\": %.6f, \"transport_cpu_s\": %.6f, "
      "\"wall_s\": %.6f, \"error\": \"%s\"}\n",
      name_, frames_, cpu_s, transport_cpu_s_, Seconds(CLOCK_MONOTONIC) - start_wall_s_, error);
  FILE* out = options_.report.empty() ? stderr : std::fopen(options_.report.c_str(), "w");
  if (out != nullptr) {
    std::fputs(json.c_str(), out);
    if (out != stderr) std::fclose(out);
  }
  if (checksums_ != nullptr) std::fflush(checksums_);
  if (!status.ok()) std::fprintf(stderr, "%s: %s\n", name_.c_str(), error.c_str());
  return status.ok() ? 0 : 1;
}

}  // namespace memd::pipeline
