// The fixture of the GStreamer suites (gst_test.cc, gst_stream_test.cc): a
// real memd with a 256 MiB pool, gst-launch-1.0 processes that load the
// build's plugin (GST_PLUGIN_PATH) with a registry of their own, files in a
// temporary directory, and a wait for an empty pool.
#ifndef MEMD_TESTS_GST_GST_FIXTURE_H_
#define MEMD_TESTS_GST_GST_FIXTURE_H_

#include <gtest/gtest.h>

#include <filesystem>
#include <functional>
#include <fstream>
#include <map>
#include <memory>
#include <sstream>
#include <string>
#include <utility>
#include <vector>

#include "daemon_env.h"

namespace memd::testing {

inline std::string ReadFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

// Small frames keep the suite fast; one 1080p test covers the real size.
inline constexpr char kSmall[] = "video/x-raw,format=I420,width=320,height=240,framerate=30/1";
inline constexpr char k1080[] = "video/x-raw,format=NV12,width=1920,height=1080,framerate=30/1";

class GstTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char pattern[] = "/tmp/memd-gst-XXXXXX";
    ASSERT_NE(mkdtemp(pattern), nullptr);
    dir_ = pattern;
    daemon_ = std::make_unique<DaemonEnv>(DaemonOptions{.pools = {"default=256MiB"}});
    ASSERT_TRUE(daemon_->ok());
  }
  void TearDown() override {
    daemon_.reset();
    std::filesystem::remove_all(dir_);
  }

  std::string Path(const std::string& name) const { return dir_ + "/" + name; }

  std::map<std::string, std::string> Env() const {
    std::map<std::string, std::string> env = daemon_->ClientEnv();
    env["GST_PLUGIN_PATH"] = MEMD_GST_PLUGIN_DIR;
    env["GST_REGISTRY"] = Path("registry.bin");  // not the user's cache
    return env;
  }

  // gst-launch-1.0 -m (element messages, e.g. memdsink-stats) with stderr
  // folded into stdout.
  std::vector<std::string> Launch(const std::string& pipeline) const {
    return {"/bin/sh", "-c", "exec /usr/bin/gst-launch-1.0 -m " + pipeline + " 2>&1"};
  }
  std::pair<int, std::string> Run(const std::string& pipeline) const {
    return RunCommand(Launch(pipeline), Env());
  }
  std::unique_ptr<Subprocess> Start(const std::string& pipeline) const {
    return std::make_unique<Subprocess>(Launch(pipeline), Env());
  }
  // Waits for a gst-launch process; its output and exit code.
  static std::pair<int, std::string> Finish(Subprocess& p) {
    std::string out = p.ReadAll(std::chrono::seconds(60));
    return {ExitCode(p.Wait(std::chrono::seconds(10))), out};
  }

  // The one-process reference for `source ! caps`: its bytes in a file.
  std::string Reference(const std::string& source, const std::string& caps) const {
    auto [code, out] = Run(source + " ! " + caps + " ! filesink location=" + Path("ref.raw"));
    EXPECT_EQ(code, 0) << out;
    return ReadFile(Path("ref.raw"));
  }

  // Ten frames of `kSmall` through a tee into memdsinks on channels a and b,
  // each read by a memdsrc (with `src_options`) in a process of its own;
  // `before_writer` runs once both readers started. Checks both outputs
  // against the one-process reference; returns the writer's output.
  std::string TeeIntoTwoReaders(const std::string& src_options,
                                const std::function<void()>& before_writer = {}) const {
    const std::string source = "videotestsrc num-buffers=10 pattern=ball";
    std::string reference = Reference(source, kSmall);
    auto a = Start("memdsrc channel=a " + src_options + " ! filesink location=" + Path("a.raw"));
    auto b = Start("memdsrc channel=b " + src_options + " ! filesink location=" + Path("b.raw"));
    if (before_writer) before_writer();
    auto [code, out] = Run(source + " ! " + kSmall +
                           " ! tee name=t t. ! queue ! memdsink channel=a t. ! queue ! "
                           "memdsink channel=b");
    EXPECT_EQ(code, 0) << out;
    EXPECT_EQ(Finish(*a).first, 0);
    EXPECT_EQ(Finish(*b).first, 0);
    EXPECT_TRUE(ReadFile(Path("a.raw")) == reference);
    EXPECT_TRUE(ReadFile(Path("b.raw")) == reference);
    return out;
  }

  // Waits until the pool holds no buffer and no session (every reference of
  // every gst-launch process released).
  bool PoolEmpty() const {
    return WaitFor(
        [&] {
          v1::PoolStats s = daemon_->PoolStats();
          return s.live_buffers() == 0 && s.sessions() == 0;
        },
        std::chrono::seconds(10));
  }

  std::string dir_;
  std::unique_ptr<DaemonEnv> daemon_;
};

}  // namespace memd::testing

#endif  // MEMD_TESTS_GST_GST_FIXTURE_H_
