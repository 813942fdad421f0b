#include "shm/memory_capacity.h"

#include <fstream>
#include <limits>
#include <sstream>
#include <string>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/strip.h"
#include "memd/shared/size.h"

namespace memd {
namespace {

constexpr uint64_t kUnlimited = std::numeric_limits<uint64_t>::max();

// MemAvailable of /proc/meminfo, in bytes; unlimited when unreadable.
uint64_t MachineAvailable() {
  std::ifstream meminfo("/proc/meminfo");
  std::string key;
  uint64_t kib = 0;
  std::string unit;
  while (meminfo >> key >> kib >> unit) {
    if (key == "MemAvailable:") return kib * 1024;
  }
  return kUnlimited;
}

uint64_t ReadNumber(const std::string& path) {
  std::ifstream in(path);
  std::string text;
  uint64_t value = 0;
  if (!(in >> text) || !absl::SimpleAtoi(text, &value)) return kUnlimited;  // "max" or absent
  return value;
}

// Room left in this process's cgroup v2 (memory.max - memory.current).
uint64_t CgroupRoom() {
  std::ifstream cgroup("/proc/self/cgroup");
  std::string line;
  while (std::getline(cgroup, line)) {
    absl::string_view rest = line;
    if (!absl::ConsumePrefix(&rest, "0::")) continue;
    std::string dir = absl::StrCat("/sys/fs/cgroup", rest);
    uint64_t max = ReadNumber(dir + "/memory.max");
    uint64_t current = ReadNumber(dir + "/memory.current");
    if (max == kUnlimited || current == kUnlimited) return kUnlimited;
    return max > current ? max - current : 0;
  }
  return kUnlimited;
}

}  // namespace

absl::Status CheckMemoryCapacity(uint64_t needed_bytes) {
  uint64_t machine = MachineAvailable();
  uint64_t cgroup = CgroupRoom();
  uint64_t available = std::min(machine, cgroup);
  if (available >= needed_bytes) return absl::OkStatus();
  return absl::ResourceExhaustedError(absl::StrFormat(
      "pools need %s (%u bytes) but only %s (%u bytes) of memory is available to memd (%s). "
      "Configure smaller pools, raise the container's memory limit, or give the pool "
      "prefault=false to reserve nothing at start",
      FormatSize(needed_bytes), needed_bytes, FormatSize(available), available,
      cgroup < machine ? "its memory cgroup's limit" : "the machine's MemAvailable"));
}

}  // namespace memd
