// memd_arena_client: a real C API client process for the arena tests
// (arena_test.cc); talks to the daemon named by $MEMD_ADDRESS / $MEMD_POOL.
//
//   hold COUNT SIZE BYTE   memd_malloc COUNT blocks of SIZE bytes (arena
//                          blocks when SIZE is at most the threshold) filled
//                          with BYTE, print "handle <memd_handle>" for each
//                          and "ready"; exit at stdin EOF without freeing
//   idle COUNT SIZE        memd_malloc COUNT blocks of SIZE bytes, print
//                          "allocated"; at stdin EOF free them (last first),
//                          print "freed", and keep the session until killed
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include "memd/memd.h"

namespace {

void WaitForStdinEof() {
  char c;
  while (::read(STDIN_FILENO, &c, 1) > 0) {
  }
}

int Fail(const char* what) {
  std::printf("error %s: %s\n", what, memd_last_error());
  std::fflush(stdout);
  return 1;
}

}  // namespace

int main(int argc, char** argv) {
  std::setvbuf(stdout, nullptr, _IOLBF, 0);
  if (argc < 4) {
    std::fprintf(stderr, "usage: memd_arena_client hold COUNT SIZE BYTE | idle COUNT SIZE\n");
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
  if (command == "hold" && argc == 5) {
    int byte = std::atoi(argv[4]);
    for (void* p : blocks) {
      std::memset(p, byte, size);
      uint64_t handle = memd_handle(p);
      if (handle == 0) return Fail("memd_handle");
      std::printf("handle %llu\n", static_cast<unsigned long long>(handle));
    }
    std::printf("ready\n");
    WaitForStdinEof();
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
