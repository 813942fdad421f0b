// memd_bridge_client: the producer and the consumer of the bridge tests
// (bridge_test.cc), real client processes on either side of a bridged
// channel. Frames are 4K NV12-sized (3840x2160x1.5 = 12,441,600 bytes) unless
// a size is given; frame i's content is a function of i, so the consumer
// checks every byte.
//
//   produce CHANNEL FIRST COUNT BYTES  sends frames FIRST..FIRST+COUNT-1,
//                                      printing "sent <i>"; a send the daemon
//                                      did not answer (it was killed) is made
//                                      again with a new buffer; then "done"
//   consume CHANNEL COUNT [PAUSE]      receives COUNT frames, printing
//                                      "got <i> ok" or "got <i> bad <why>";
//                                      after PAUSE frames prints "paused" and
//                                      waits for stdin to close
//   ... stamp                          (last argument, either command) only
//                                      the first and the last 8 bytes carry
//                                      the frame's content and are checked:
//                                      bench/bridge_bench.py, so that the
//                                      clients' CPU is memd's part alone
//
// Both wait out daemon restarts (outage wait 60 s). Exit code 0 unless
// connecting fails.
#include <cinttypes>
#include <cstdio>
#include <cstring>
#include <iostream>
#include <string>

#include "memd/client.h"

namespace {

bool stamp_only = false;  // main() sets it before any frame

uint64_t Word(uint64_t frame, uint64_t k) {
  uint64_t x = frame * 0x9e3779b97f4a7c15ull + k;
  x ^= x >> 31;
  return x * 0xbf58476d1ce4e5b9ull;
}

void Fill(uint8_t* data, size_t bytes, uint64_t frame) {
  size_t words = bytes / 8;
  auto* w = reinterpret_cast<uint64_t*>(data);
  if (stamp_only && words >= 2) {
    w[0] = Word(frame, 0);
    w[words - 1] = Word(frame, words - 1);
    return;
  }
  for (size_t k = 0; k < words; ++k) w[k] = Word(frame, k);
  std::memset(data + words * 8, static_cast<int>(frame & 0xff), bytes - words * 8);
}

// Empty when `data` is frame `frame`'s content; else where it differs.
std::string Check(const uint8_t* data, size_t bytes, uint64_t frame) {
  size_t words = bytes / 8;
  const auto* w = reinterpret_cast<const uint64_t*>(data);
  if (stamp_only && words >= 2) {
    bool same = w[0] == Word(frame, 0) && w[words - 1] == Word(frame, words - 1);
    return same ? std::string() : "stamp differs";
  }
  for (size_t k = 0; k < words; ++k) {
    if (w[k] != Word(frame, k)) return "word " + std::to_string(k) + " differs";
  }
  for (size_t b = words * 8; b < bytes; ++b) {
    if (data[b] != static_cast<uint8_t>(frame & 0xff)) return "byte " + std::to_string(b);
  }
  return {};
}

std::unique_ptr<memd::Client> ConnectOrDie() {
  memd::ConnectOptions options;
  options.outage_wait_ms = 60'000;
  options.lane = false;
  auto client = memd::Client::Connect(options);
  if (!client.ok()) {
    std::cerr << "connect: " << client.status() << std::endl;
    std::exit(2);
  }
  return std::move(*client);
}

int Produce(const std::string& channel, uint64_t first, uint64_t count, size_t bytes) {
  auto client = ConnectOrDie();
  for (uint64_t i = first; i < first + count; ++i) {
    while (true) {
      absl::StatusOr<memd::Buffer> frame = client->Allocate(bytes);
      if (!frame.ok()) {
        std::cerr << "allocate frame " << i << ": " << frame.status() << std::endl;
        continue;  // the daemon restarts: the call waited and failed; again
      }
      Fill(frame->data(), bytes, i);
      absl::Status s = client->Send(channel, {frame->handle()}, "frame " + std::to_string(i),
                                    /*timeout_ms=*/60'000);
      if (s.ok()) {
        frame->Detach();  // the channel has the reference now
        break;
      }
      std::cerr << "send frame " << i << ": " << s << " (again)" << std::endl;
    }
    std::cout << "sent " << i << std::endl;
  }
  std::cout << "done" << std::endl;
  return 0;
}

int Consume(const std::string& channel, uint64_t count, uint64_t pause) {
  auto client = ConnectOrDie();
  for (uint64_t n = 0; n < count;) {
    if (n == pause) {
      std::cout << "paused" << std::endl;
      std::string line;
      while (std::getline(std::cin, line)) {
      }
    }
    absl::StatusOr<memd::ChannelMessage> m = client->Receive(channel, /*timeout_ms=*/60'000);
    if (!m.ok()) {
      std::cerr << "receive: " << m.status() << std::endl;
      if (absl::IsDeadlineExceeded(m.status())) return 3;
      continue;
    }
    uint64_t i = 0;
    std::string why;
    if (std::sscanf(m->metadata.c_str(), "frame %" SCNu64, &i) != 1 || m->buffers.size() != 1) {
      why = "metadata '" + m->metadata + "'";
    } else {
      const memd::BufferRef& b = m->buffers[0];
      why = Check(client->base() + b.offset_bytes, b.size_bytes, i);
    }
    std::vector<uint64_t> handles;
    for (const memd::BufferRef& b : m->buffers) handles.push_back(b.handle);
    client->ReleaseRefs(handles).IgnoreError();
    std::cout << "got " << i << (why.empty() ? " ok" : " bad " + why) << std::endl;
    ++n;
  }
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc > 2 && std::string(argv[argc - 1]) == "stamp") {
    stamp_only = true;
    --argc;
  }
  std::string cmd = argc > 1 ? argv[1] : "";
  if (cmd == "produce" && argc == 6) {
    return Produce(argv[2], std::stoull(argv[3]), std::stoull(argv[4]), std::stoull(argv[5]));
  }
  if (cmd == "consume" && (argc == 4 || argc == 5)) {
    return Consume(argv[2], std::stoull(argv[3]), argc == 5 ? std::stoull(argv[4]) : UINT64_MAX);
  }
  std::cerr << "usage: memd_bridge_client produce CHANNEL FIRST COUNT BYTES [stamp] | consume "
               "CHANNEL COUNT [PAUSE] [stamp]" << std::endl;
  return 64;
}
