// What the three pipeline stages (decode, filter, encode) share: where
// frames come from and go to, and what each stage reports.
//
// A link is either a memd channel (frames pass by reference: nothing is
// copied) or "-", stdin/stdout (frames are copied through a pipe, the way
// pipelines without memd pass them). The same stages run both ways, which is
// what the benchmark compares.
//
// Not thread-safe: one stage is one thread of work.
#ifndef MEMD_EXAMPLES_PIPELINE_STAGE_H_
#define MEMD_EXAMPLES_PIPELINE_STAGE_H_

#include <cstdint>
#include <cstdio>
#include <memory>
#include <string>

#include <CLI/CLI.hpp>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "memd/client.h"
#include "memd/ffmpeg.h"

namespace memd::pipeline {

using ffmpeg::FramePtr;

// Options every stage takes.
struct StageOptions {
  std::string address;   // memd address ("" = $MEMD_ADDRESS or the default)
  std::string pool;      // memd pool ("" = $MEMD_POOL or "default")
  int64_t timeout_ms = 10000;  // longest wait for room or for a frame
  std::string checksums;       // file for "index pts checksum" lines ("" = none)
  std::string report;          // file for the stage's JSON report ("" = stderr)
};

// Registers --address, --pool, --timeout-ms, --checksums and --report.
void AddStageOptions(CLI::App& app, StageOptions& options);

// Frames into a link. Put does not take ownership; the frame may be reused.
class FrameSink {
 public:
  virtual ~FrameSink() = default;
  virtual absl::Status Put(const AVFrame* frame) = 0;
  virtual absl::Status End() = 0;
};

// Frames out of a link; nullptr at end of stream.
class FrameSource {
 public:
  virtual ~FrameSource() = default;
  virtual absl::StatusOr<FramePtr> Next() = 0;
};

// The memd side of a stage: one Client and its FramePool, made only when a
// link is a channel.
class Stage {
 public:
  Stage(std::string name, StageOptions options);
  ~Stage();

  // Connects to memd if `in` or `out` names a channel (not "-").
  absl::Status Open(const std::string& in, const std::string& out);
  absl::StatusOr<std::unique_ptr<FrameSource>> Source(const std::string& link);
  absl::StatusOr<std::unique_ptr<FrameSink>> Sink(const std::string& link);
  // A writable frame of the given geometry: pool memory with memd, heap otherwise.
  absl::StatusOr<FramePtr> NewVideoFrame(int format, int width, int height);

  ffmpeg::FramePool* pool() { return pool_.get(); }  // nullptr without memd
  // Whether frames come from a memd channel: then the stage's next request
  // after a send is the receive of its next frame.
  bool receives_from_channel() const { return receives_from_channel_; }

  // Counts a frame: its checksum goes to the checksum file.
  void Record(const AVFrame* frame);
  // Time a link spent on CPU, measured by the links themselves.
  void AddTransportCpu(double seconds) { transport_cpu_s_ += seconds; }
  // Writes the report: {"stage", "frames", "cpu_s", "transport_cpu_s", "wall_s", "error"}.
  int Finish(const absl::Status& status);

  const StageOptions& options() const { return options_; }

 private:
  const std::string name_;
  const StageOptions options_;
  std::unique_ptr<Client> client_;
  std::unique_ptr<ffmpeg::FramePool> pool_;
  FILE* checksums_ = nullptr;
  uint64_t frames_ = 0;
  bool receives_from_channel_ = false;
  double transport_cpu_s_ = 0;
  double start_wall_s_ = 0;
};

// CPU seconds this thread has used (user + system).
double ThreadCpuSeconds();

// libav's text for an AVERROR code.
std::string AvError(int code);

}  // namespace memd::pipeline

#endif  // MEMD_EXAMPLES_PIPELINE_STAGE_H_
