// memd_arena_client: a real C API client process for the arena tests
// (arena_test.cc, arena_errors_test.cc); talks to the daemon named by
// $MEMD_ADDRESS / $MEMD_POOL.
//
//   hold COUNT SIZE BYTE   as memd_test_client's (client_commands.h): arena
//                          blocks when SIZE is at most the threshold
//   idle COUNT SIZE        memd_malloc COUNT blocks of SIZE bytes, print
//                          "allocated"; at stdin EOF free them (last first),
//                          print "freed", and keep the session until killed
//   lose 1 SMALL LARGE     memd_malloc an arena block of SMALL bytes and a
//                          buffer of LARGE, memd_handle both, print "ready";
//                          at stdin EOF make a round trip (a memd_malloc of
//                          LARGE, which waits out an outage), then print
//                          "small <memd_handle's error>" and "large <...>"
//                          for the first two (issue 24: after a restart
//                          that released them)
//   retain HANDLE          memd_retain HANDLE and print "bytes SIZE FIRST SAME"
//                          (its first byte and how many bytes equal it); at
//                          stdin EOF print that again, memd_free it, print
//                          "released" and exit
#include <unistd.h>

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include "client_commands.h"
#include "memd/memd.h"

namespace {

using memd::testing::WaitForStdinEof;

int Fail(const char* what) {
  std::printf("error %s: %s\n", what, memd_last_error());
  std::fflush(stdout);
  return 1;
}

void PrintBytes(const uint8_t* p, size_t size) {
  size_t same = 0;
  for (size_t i = 0; i < size; ++i) same += p[i] == p[0];
  std::printf("bytes %zu %d %zu\n", size, size > 0 ? p[0] : -1, same);
}

int Retain(uint64_t handle) {
  size_t size = 0;
  auto* p = static_cast<const uint8_t*>(memd_retain(handle, &size));
  if (p == nullptr) return Fail("memd_retain");
  PrintBytes(p, size);
  WaitForStdinEof();
  PrintBytes(p, size);
  memd_free(const_cast<uint8_t*>(p));
  std::printf("released\n");
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  std::setvbuf(stdout, nullptr, _IOLBF, 0);
  if (argc == 3 && std::string(argv[1]) == "retain") {
    return Retain(std::strtoull(argv[2], nullptr, 10));
  }
  if (argc == 5 && std::string(argv[1]) == "hold") {
    return memd::testing::Hold(argv[2], argv[3], argv[4]);
  }
  if (argc < 4) {
    std::fprintf(stderr, "usage: memd_arena_client hold COUNT SIZE BYTE | idle COUNT SIZE | "
                         "lose 1 SMALL LARGE | retain HANDLE\n");
    return 2;
  }
  std::string command = argv[1];
  int count = std::atoi(argv[2]);
  size_t size = std::strtoull(argv[3], nullptr, 10);
  std::vector<void*> blocks;
  for (int i = 0; i < count; ++i) {
    void* p = memd_malloc(size);
    if (p == nullptr) return Fail("memd_malloc");
    blocks.push_back(p);
  }
  if (command == "lose" && argc == 5) {
    size_t large = std::strtoull(argv[4], nullptr, 10);
    void* big = memd_malloc(large);
    if (big == nullptr) return Fail("memd_malloc");
    if (memd_handle(blocks[0]) == 0 || memd_handle(big) == 0) return Fail("memd_handle");
    std::printf("ready\n");
    WaitForStdinEof();
    if (memd_malloc(large) == nullptr) return Fail("memd_malloc after the restart");
    // Each asked once: the first answer is the one the issue is about.
    std::string small_error = memd_handle(blocks[0]) == 0 ? memd_last_error() : "still held";
    std::string large_error = memd_handle(big) == 0 ? memd_last_error() : "still held";
    std::printf("small %s\nlarge %s\n", small_error.c_str(), large_error.c_str());
    return 0;
  }
  if (command == "idle") {
    std::printf("allocated\n");
    WaitForStdinEof();
    for (auto it = blocks.rbegin(); it != blocks.rend(); ++it) memd_free(*it);
    std::printf("freed\n");
    for (;;) ::pause();
  }
  std::fprintf(stderr, "memd_arena_client: unknown command %s\n", command.c_str());
  return 2;
}
