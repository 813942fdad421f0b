// A reader process for ReaderTest (reader_test.cc): attaches to the pool in
// $MEMD_ADDRESS / $MEMD_POOL, retains HANDLE and reports, one line each:
//   reader <0|1>        whether the session is a reader (Client::read_only)
//   read 0xNN           the first byte of the buffer
//   mprotect <errno>    making the buffer's page writable (0: allowed)
//   alloc <code>        an allocation's status code (7: PERMISSION_DENIED)
// then, with `write`, stores into the buffer (a reader dies of SIGSEGV
// there) and prints "wrote".
// Usage: memd_reader_client HANDLE [ask] [write]   (`ask`: ConnectOptions::read_only)
#include <sys/mman.h>
#include <unistd.h>

#include <cerrno>
#include <cstdint>
#include <cstdio>
#include <iostream>
#include <string>

#include "memd/client.h"

int main(int argc, char** argv) {
  if (argc < 2) {
    std::cerr << "usage: memd_reader_client HANDLE [ask] [write]" << std::endl;
    return 64;
  }
  uint64_t handle = std::stoull(argv[1]);
  bool ask = false, write = false;
  for (int i = 2; i < argc; ++i) {
    ask |= std::string(argv[i]) == "ask";
    write |= std::string(argv[i]) == "write";
  }
  auto client = memd::Client::Connect({.read_only = ask});
  if (!client.ok()) {
    std::cout << "connect " << client.status() << std::endl;
    return 1;
  }
  std::cout << "reader " << (*client)->read_only() << std::endl;
  auto buffer = (*client)->Retain(handle);
  if (!buffer.ok()) {
    std::cout << "retain " << buffer.status() << std::endl;
    return 1;
  }
  std::printf("read 0x%02x\n", buffer->data()[0]);
  long page = ::sysconf(_SC_PAGESIZE);
  auto* start = reinterpret_cast<uint8_t*>(reinterpret_cast<uintptr_t>(buffer->data()) &
                                           ~static_cast<uintptr_t>(page - 1));
  int err = ::mprotect(start, page, PROT_READ | PROT_WRITE) == 0 ? 0 : errno;
  std::cout << "mprotect " << err << std::endl;
  auto allocated = (*client)->Allocate(64);
  std::cout << "alloc " << static_cast<int>(allocated.status().code()) << std::endl;
  if (write) {
    std::cout.flush();
    buffer->data()[0] = 0x11;
    std::cout << "wrote" << std::endl;
  }
  return 0;
}
