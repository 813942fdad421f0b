// memd: the shared-memory buffer daemon. Parses flags and runs the Daemon.
#include <spdlog/spdlog.h>

#include "config/options.h"
#include "daemon.h"

int main(int argc, char** argv) {
  memd::DaemonOptions options;
  if (std::optional<int> exit_code = memd::ParseFlags(argc, argv, &options)) return *exit_code;
  spdlog::set_level(spdlog::level::from_str(options.log_level));
  memd::Daemon daemon(std::move(options));
  return daemon.Run();
}
