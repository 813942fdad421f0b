// memd_trace_client: one stage of a three-process pipeline for TraceTest
// (trace_test.cc), through real channels of a real memd (MEMD_ADDRESS,
// MEMD_POOL). Each stage names its process (prctl PR_SET_NAME) after its
// role, prints "ready" once attached, "done" at the end, and exits 0, or
// prints why and exits 1.
//   produce CHANNEL COUNT SIZE   COUNT buffers of SIZE bytes, each moved into CHANNEL
//   resend CHANNEL COUNT SIZE    one buffer of SIZE bytes, shared into CHANNEL COUNT times
//   forward IN OUT COUNT         COUNT messages from IN, each moved on into OUT
//   consume CHANNEL COUNT        COUNT messages from CHANNEL, each released at once
#include <sys/prctl.h>

#include <cstdlib>
#include <cstring>
#include <iostream>
#include <string>
#include <vector>

#include "memd/client.h"

namespace {

constexpr int64_t kWaitMs = 30'000;  // a stage waits this long for its neighbour at most
constexpr uint32_t kCapacity = 4;    // messages a channel holds: the producer waits for room

int Fail(const std::string& why) {
  std::cout << "error " << why << std::endl;
  return 1;
}

std::vector<uint64_t> HandlesOf(const memd::ChannelMessage& message) {
  std::vector<uint64_t> handles;
  for (const memd::BufferRef& b : message.buffers) handles.push_back(b.handle);
  return handles;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 4) return Fail("usage: produce|forward|consume ...");
  const std::string role = argv[1];
  const std::string name = role == "produce" || role == "resend" ? "producer"
                           : role == "forward"                    ? "filter"
                                                                  : "consumer";
  ::prctl(PR_SET_NAME, name.c_str());
  auto client = memd::Client::Connect();
  if (!client.ok()) return Fail(std::string(client.status().message()));
  std::cout << "ready" << std::endl;
  if (role == "produce" && argc == 5) {
    const long count = std::atol(argv[3]);
    const size_t size = std::strtoull(argv[4], nullptr, 0);
    for (long i = 0; i < count; ++i) {
      auto buffer = (*client)->AllocateRef(size, false);
      if (!buffer.ok()) return Fail(std::string(buffer.status().message()));
      std::memset((*client)->Pointer(buffer->offset_bytes), static_cast<int>(i), size);
      absl::Status sent = (*client)->Send(argv[2], {buffer->handle}, "f" + std::to_string(i),
                                          kWaitMs, kCapacity, memd::SendMode::kMove);
      if (!sent.ok()) return Fail(std::string(sent.message()));
    }
  } else if (role == "resend" && argc == 5) {
    auto buffer = (*client)->AllocateRef(std::strtoull(argv[4], nullptr, 0), false);
    if (!buffer.ok()) return Fail(std::string(buffer.status().message()));
    for (long i = 0; i < std::atol(argv[3]); ++i) {
      absl::Status sent = (*client)->Send(argv[2], {buffer->handle}, "f" + std::to_string(i),
                                          kWaitMs, kCapacity, memd::SendMode::kShare);
      if (!sent.ok()) return Fail(std::string(sent.message()));
    }
  } else if (role == "forward" && argc == 5) {
    for (long i = 0; i < std::atol(argv[4]); ++i) {
      auto message = (*client)->Receive(argv[2], kWaitMs, kCapacity);
      if (!message.ok()) return Fail(std::string(message.status().message()));
      absl::Status sent = (*client)->Send(argv[3], HandlesOf(*message), message->metadata, kWaitMs,
                                          kCapacity, memd::SendMode::kMove);
      if (!sent.ok()) return Fail(std::string(sent.message()));
    }
  } else if (role == "consume" && argc == 4) {
    for (long i = 0; i < std::atol(argv[3]); ++i) {
      auto message = (*client)->Receive(argv[2], kWaitMs, kCapacity);
      if (!message.ok()) return Fail(std::string(message.status().message()));
      auto released = (*client)->ReleaseRefs(HandlesOf(*message));
      if (!released.ok()) return Fail(std::string(released.status().message()));
    }
  } else {
    return Fail("unknown command " + role);
  }
  std::cout << "done" << std::endl;
  return 0;
}
