// memd: the shared-memory buffer daemon. Parses flags and runs the Daemon.
#include <malloc.h>
#include <spdlog/spdlog.h>

#include <cstdio>
#include <cstdlib>

#include "config/options.h"
#include "daemon/daemon.h"
#include "logging/logging.h"

int main(int argc, char** argv) {
  // glibc gives each new thread its own malloc arena (up to 8 per core), and
  // gRPC grows its thread pool under load: each new arena's first touch adds
  // 132 KiB of RSS that never goes back, which looks like a leak to anyone
  // watching a 5 MiB daemon. memd's heap work is small and its locks are its
  // own, so two arenas are plenty. $MALLOC_ARENA_MAX still wins when set.
  if (std::getenv("MALLOC_ARENA_MAX") == nullptr) mallopt(M_ARENA_MAX, 2);
  memd::DaemonOptions options;
  if (std::optional<int> exit_code = memd::ParseFlags(argc, argv, &options)) return *exit_code;
  if (absl::Status s = memd::ConfigureLogging(options.log_level, options.log_format); !s.ok()) {
    std::fprintf(stderr, "memd: %s\n", std::string(s.message()).c_str());
    return 2;
  }
  memd::Daemon daemon(std::move(options));
  return daemon.Run();
}
