#include "bridge/exit_point.h"

#include <unistd.h>

#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <string>

namespace memd::bridge {
namespace {

struct Target {
  std::string step;      // empty: no exit point
  long count = 1;        // the Nth arrival exits
};

const Target& TheTarget() {
  static const Target target = [] {
    Target t;
    const char* v = std::getenv("MEMD_TEST_EXIT_AT");
    if (v == nullptr) return t;
    std::string s(v);
    size_t colon = s.find(':');
    t.step = s.substr(0, colon);
    if (colon != std::string::npos) t.count = std::strtol(s.c_str() + colon + 1, nullptr, 10);
    return t;
  }();
  return target;
}

std::atomic<long> arrivals{0};

}  // namespace

void ExitPoint(std::string_view step) {
  const Target& t = TheTarget();
  if (t.step.empty() || t.step != step) return;
  if (arrivals.fetch_add(1, std::memory_order_relaxed) + 1 != t.count) return;
  std::fprintf(stdout, "MEMD_TEST_EXIT_AT: exiting at %s:%ld\n", t.step.c_str(), t.count);
  std::fflush(stdout);
  ::_exit(86);
}

}  // namespace memd::bridge
