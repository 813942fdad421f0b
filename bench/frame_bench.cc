// Row F: 4K NV12 frames (3840x2160, 12,441,600 B) from a producer process to a
// consumer process that checksums every byte of every frame and acks it.
// One frame in flight at a time, the same for every variant:
//   raw_shm      floor: frames in a prefaulted shared ring; an 8-byte slot
//                index over a Unix socket
//   memd         memd_malloc per frame, 8-byte handle over a Unix socket;
//                the consumer retains, checksums, frees; the producer frees
//   memd_pool    frames from a memd::BufferPool, lent by handle over the
//                socket; the consumer retains, checksums and releases
//                deferred (the release rides on its next retain)
// Each memd variant runs in a process of its own, so no process forks after
// it used gRPC.
//   copy_socket  the whole frame written through a Unix stream socket
//   copy_pipe    the whole frame written through a pipe
// Prints one JSON document: frames/s per variant and the ratios.
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstring>
#include <functional>
#include <iostream>
#include <thread>
#include <vector>

#include <nlohmann/json.hpp>

#include "memd/buffer_pool.h"
#include "memd/client.h"
#include "memd/memd.h"

namespace {

constexpr size_t kFrameBytes = 3840 * 2160 * 3 / 2;
constexpr int kRing = 4;

uint64_t Checksum(const uint8_t* p, size_t n) {
  uint64_t sum = 0;
  for (size_t i = 0; i + 8 <= n; i += 8) {
    uint64_t w;
    std::memcpy(&w, p + i, 8);
    sum += w;
  }
  return sum;
}

void WriteAll(int fd, const void* data, size_t n) {
  auto* p = static_cast<const uint8_t*>(data);
  while (n > 0) {
    ssize_t w = write(fd, p, n);
    if (w <= 0) _exit(3);
    p += w;
    n -= static_cast<size_t>(w);
  }
}

void ReadAll(int fd, void* data, size_t n) {
  auto* p = static_cast<uint8_t*>(data);
  while (n > 0) {
    ssize_t r = read(fd, p, n);
    if (r <= 0) _exit(4);
    p += r;
    n -= static_cast<size_t>(r);
  }
}

// Runs producer (this process) and consumer (a fork) for `frames`; returns frames/s.
double Run(int frames, const std::function<void(int to_consumer, int from_consumer, int frames)>& producer,
           const std::function<void(int from_producer, int to_producer, int frames)>& consumer,
           bool use_pipe_for_data = false) {
  int data[2], ack[2];
  if (use_pipe_for_data) {
    if (pipe(data) != 0) std::abort();
  } else if (socketpair(AF_UNIX, SOCK_STREAM, 0, data) != 0) {
    std::abort();
  }
  if (pipe(ack) != 0) std::abort();
  pid_t pid = fork();
  if (pid == 0) {
    close(data[1]);
    close(ack[0]);
    consumer(data[0], ack[1], frames);
    _exit(0);
  }
  close(data[0]);
  close(ack[1]);
  auto t0 = std::chrono::steady_clock::now();
  producer(data[1], ack[0], frames);
  double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  close(data[1]);
  close(ack[0]);
  waitpid(pid, nullptr, 0);
  return frames / seconds;
}

// Runs `fn` in a forked process (fresh of gRPC) and returns what it computed.
double Isolated(const std::function<double()>& fn) {
  int result[2];
  if (pipe(result) != 0) std::abort();
  pid_t pid = fork();
  if (pid == 0) {
    close(result[0]);
    double value = fn();
    WriteAll(result[1], &value, sizeof(value));
    _exit(0);
  }
  close(result[1]);
  double value = 0;
  ReadAll(result[0], &value, sizeof(value));
  close(result[0]);
  waitpid(pid, nullptr, 0);
  return value;
}

}  // namespace

int main(int argc, char** argv) {
  const int frames = argc > 1 ? std::atoi(argv[1]) : 300;
  nlohmann::ordered_json out;
  out["frame_bytes"] = kFrameBytes;
  out["frames"] = frames;

  // Floor: a shared ring, prefaulted in both processes (mapped before fork).
  auto* ring = static_cast<uint8_t*>(mmap(nullptr, kFrameBytes * kRing, PROT_READ | PROT_WRITE,
                                          MAP_SHARED | MAP_ANONYMOUS | MAP_POPULATE, -1, 0));
  double raw = Run(
      frames,
      [&](int to, int from, int n) {
        for (int i = 0; i < n; ++i) {
          uint64_t slot = static_cast<uint64_t>(i % kRing), acked;
          std::memcpy(ring + slot * kFrameBytes, &i, sizeof(i));  // the producer's mark
          WriteAll(to, &slot, 8);
          ReadAll(from, &acked, 8);
        }
      },
      [&](int from, int to, int n) {
        for (int i = 0; i < n; ++i) {
          uint64_t slot;
          ReadAll(from, &slot, 8);
          uint64_t sum = Checksum(ring + slot * kFrameBytes, kFrameBytes);
          WriteAll(to, &sum, 8);
        }
      });

  // memd: one allocation per frame, handle over the socket.
  double memd = Isolated([&] { return Run(
      frames,
      [&](int to, int from, int n) {
        if (memd_init(nullptr, nullptr) != 0) _exit(5);
        for (int i = 0; i < n; ++i) {
          auto* frame = static_cast<uint8_t*>(memd_malloc(kFrameBytes));
          if (frame == nullptr) _exit(6);
          std::memcpy(frame, &i, sizeof(i));
          uint64_t handle = memd_handle(frame), acked;
          WriteAll(to, &handle, 8);
          ReadAll(from, &acked, 8);  // the consumer retained, checksummed and freed it
          memd_free(frame);
        }
        memd_uninit();
      },
      [&](int from, int to, int n) {
        if (memd_init(nullptr, nullptr) != 0) _exit(5);
        for (int i = 0; i < n; ++i) {
          uint64_t handle;
          ReadAll(from, &handle, 8);
          size_t size = 0;
          auto* frame = static_cast<uint8_t*>(memd_retain(handle, &size));
          if (frame == nullptr) _exit(7);
          uint64_t sum = Checksum(frame, size);
          memd_free(frame);
          WriteAll(to, &sum, 8);
        }
        memd_uninit();
      }); });

  // memd_pool: recycled frames, lent; the consumer's releases are deferred.
  double memd_pool = Isolated([&] { return Run(
      frames,
      [&](int to, int from, int n) {
        auto client = memd::Client::Connect({});
        if (!client.ok()) _exit(5);
        auto pool = memd::BufferPool::Create(**client, kFrameBytes, /*batch=*/4);
        if (!pool.ok()) _exit(5);
        for (int i = 0; i < n; ++i) {
          absl::StatusOr<memd::PooledBuffer> frame = (*pool)->Get();
          if (!frame.ok()) _exit(6);
          std::memcpy(frame->data(), &i, sizeof(i));
          uint64_t handle = frame->Lend(), acked;
          WriteAll(to, &handle, 8);
          ReadAll(from, &acked, 8);  // the consumer retained and checksummed it
        }
      },
      [&](int from, int to, int n) {
        auto client = memd::Client::Connect({});
        if (!client.ok()) _exit(5);
        for (int i = 0; i < n; ++i) {
          uint64_t handle;
          ReadAll(from, &handle, 8);
          absl::StatusOr<memd::BufferRef> ref = (*client)->RetainRef(handle);
          if (!ref.ok()) _exit(7);
          uint64_t sum = Checksum((*client)->Pointer(ref->offset_bytes), ref->size_bytes);
          (*client)->ReleaseRefsLater({handle});
          WriteAll(to, &sum, 8);
        }
      }); });

  // Copies: the producer's frame is written whole; the consumer reads it whole.
  std::vector<uint8_t> source(kFrameBytes, 0x5a);
  auto copy_producer = [&](int to, int from, int n) {
    for (int i = 0; i < n; ++i) {
      uint64_t acked;
      std::memcpy(source.data(), &i, sizeof(i));
      WriteAll(to, source.data(), kFrameBytes);
      ReadAll(from, &acked, 8);
    }
  };
  auto copy_consumer = [&](int from, int to, int n) {
    std::vector<uint8_t> frame(kFrameBytes);
    for (int i = 0; i < n; ++i) {
      ReadAll(from, frame.data(), kFrameBytes);
      uint64_t sum = Checksum(frame.data(), kFrameBytes);
      WriteAll(to, &sum, 8);
    }
  };
  double socket_copy = Run(frames / 4, copy_producer, copy_consumer);
  double pipe_copy = Run(frames / 4, copy_producer, copy_consumer, /*use_pipe_for_data=*/true);

  out["frames_per_second"] = {{"raw_shm", raw}, {"memd", memd}, {"memd_pool", memd_pool},
                              {"copy_socket", socket_copy}, {"copy_pipe", pipe_copy}};
  out["ratios"] = {{"memd_vs_raw", memd / raw},
                   {"memd_pool_vs_raw", memd_pool / raw},
                   {"raw_vs_copy_socket", raw / socket_copy},
                   {"raw_vs_copy_pipe", raw / pipe_copy},
                   {"memd_vs_copy_socket", memd / socket_copy},
                   {"memd_vs_copy_pipe", memd / pipe_copy}};
  std::cout << out.dump(2) << std::endl;
  return 0;
}
