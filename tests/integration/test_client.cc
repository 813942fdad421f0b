// memd_test_client: a real client process for integration tests, driven by
// its arguments; talks to the daemon named by $MEMD_ADDRESS / $MEMD_POOL.
//
//   hold COUNT SIZE BYTE        allocate COUNT buffers filled with BYTE, print
//                               "handle <h>" each, then "ready"; exit at stdin EOF
//                               without freeing (the session end releases them)
//   retain-hold HANDLE          retain HANDLE, print "ready", exit at stdin EOF
//   check HANDLE SIZE BYTE NEW  retain HANDLE, verify SIZE bytes equal BYTE, fill
//                               them with NEW, release; print "ok" (exit 0) or why (exit 1)
//   scribble BYTE               map the pool and overwrite the whole segment
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <iostream>
#include <string>

#include "memd/client.h"
#include "memd/memd.h"

namespace {

void WaitForStdinEof() {
  char buf[64];
  while (std::fread(buf, 1, sizeof(buf), stdin) > 0) {
  }
}

int Fail(const std::string& why) {
  std::cout << "error " << why << std::endl;
  return 1;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 2) return Fail("usage: see source");
  std::string cmd = argv[1];
  if (cmd == "hold" && argc == 5) {
    long count = std::atol(argv[2]);
    size_t size = std::strtoull(argv[3], nullptr, 0);
    int byte = std::atoi(argv[4]);
    for (long i = 0; i < count; ++i) {
      void* p = memd_malloc(size);
      if (p == nullptr) return Fail(memd_last_error());
      std::memset(p, byte, size);
      std::cout << "handle " << memd_handle(p) << std::endl;
    }
    std::cout << "ready" << std::endl;
    WaitForStdinEof();
    return 0;
  }
  if (cmd == "retain-hold" && argc == 3) {
    size_t size = 0;
    if (memd_retain(std::strtoull(argv[2], nullptr, 0), &size) == nullptr) return Fail(memd_last_error());
    std::cout << "ready" << std::endl;
    WaitForStdinEof();
    return 0;
  }
  if (cmd == "check" && argc == 6) {
    size_t size = 0;
    auto* p = static_cast<uint8_t*>(memd_retain(std::strtoull(argv[2], nullptr, 0), &size));
    if (p == nullptr) return Fail(memd_last_error());
    size_t want = std::strtoull(argv[3], nullptr, 0);
    if (size != want) return Fail("size " + std::to_string(size) + " != " + std::to_string(want));
    int byte = std::atoi(argv[4]);
    for (size_t i = 0; i < size; ++i) {
      if (p[i] != byte) return Fail("byte " + std::to_string(i) + " is " + std::to_string(p[i]));
    }
    std::memset(p, std::atoi(argv[5]), size);
    memd_free(p);
    std::cout << "ok" << std::endl;
    return 0;
  }
  if (cmd == "scribble" && argc == 3) {
    auto client = memd::Client::Connect();
    if (!client.ok()) return Fail(std::string(client.status().message()));
    std::memset((*client)->base(), std::atoi(argv[2]), (*client)->pool().size_bytes);
    std::cout << "done" << std::endl;
    return 0;
  }
  return Fail("unknown command or wrong argument count");
}
