// memd: the shared-memory buffer daemon. Parses flags and runs the Daemon.
#include <spdlog/spdlog.h>

#include <cstdio>

#include "config/options.h"
#include "logging/logging.h"
#include "daemon.h"

int main(int argc, char** argv) {
  memd::DaemonOptions options;
  if (std::optional<int> exit_code = memd::ParseFlags(argc, argv, &options)) return *exit_code;
  if (absl::Status s = memd::ConfigureLogging(options.log_level, options.log_format); !s.ok()) {
    std::fprintf(stderr, "memd: %s\n", std::string(s.message()).c_str());
    return 2;
  }
  memd::Daemon daemon(std::move(options));
  return daemon.Run();
}
