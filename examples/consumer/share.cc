// share_cpp: allocate, fill and release a buffer with the C++ API.
#include <cstring>
#include <iostream>

#include <memd/client.h>

int main() {
  auto client = memd::Client::Connect({.client_name = "share_cpp"});
  if (!client.ok()) {
    std::cerr << client.status() << "\n";
    return 1;
  }
  auto buffer = (*client)->Allocate(4096, /*zero=*/true);
  if (!buffer.ok()) {
    std::cerr << buffer.status() << "\n";
    return 1;
  }
  std::memcpy(buffer->data(), "hello from C++", 15);
  std::cout << "allocated handle " << buffer->handle() << " of " << buffer->size() << " bytes in pool '"
            << (*client)->pool().name << "'\n";
  return buffer->Release().ok() ? 0 : 1;
}
