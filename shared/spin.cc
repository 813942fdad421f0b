#include "memd/shared/spin.h"

#include <sched.h>

#include <algorithm>

namespace memd {

Spinners& Spinners::Process() {
  static Spinners* spinners = [] {
    cpu_set_t set;
    int cpus = sched_getaffinity(0, sizeof(set), &set) == 0 ? CPU_COUNT(&set) : 1;
    return new Spinners(std::max(1, cpus / 2));
  }();
  return *spinners;
}

}  // namespace memd
