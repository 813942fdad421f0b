// The commands the client helper programs share (client_commands.h).
#include "client_commands.h"

#include <poll.h>
#include <unistd.h>

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>

#include "memd/memd.h"

namespace memd::testing {
namespace {

int FailedCall(const char* call) {
  std::printf("error %s: %s\n", call, memd_last_error());
  std::fflush(stdout);
  return 1;
}

}  // namespace

void WaitForStdinEof() {
  char c;
  while (::read(STDIN_FILENO, &c, 1) > 0) {
  }
}

bool StdinClosed() {
  pollfd in{STDIN_FILENO, POLLIN, 0};
  return ::poll(&in, 1, 0) != 0;
}

int Hold(const char* count, const char* size, const char* byte) {
  const unsigned long long n = std::strtoull(count, nullptr, 0);
  const size_t size_bytes = std::strtoull(size, nullptr, 0);
  const int fill = static_cast<int>(std::strtoull(byte, nullptr, 0));
  for (unsigned long long i = 0; i < n; ++i) {
    void* p = memd_malloc(size_bytes);
    if (p == nullptr) return FailedCall("memd_malloc");
    std::memset(p, fill, size_bytes);
    uint64_t handle = memd_handle(p);
    if (handle == 0) return FailedCall("memd_handle");
    std::printf("handle %llu\n", static_cast<unsigned long long>(handle));
    std::fflush(stdout);
  }
  std::printf("ready\n");
  std::fflush(stdout);
  WaitForStdinEof();
  return 0;
}

}  // namespace memd::testing
