// memd_test_client: a real client process for integration tests, driven by
// its arguments; talks to the daemon named by $MEMD_ADDRESS / $MEMD_POOL.
//
//   hold COUNT SIZE BYTE        (client_commands.h, shared with memd_arena_client)
//                               allocate COUNT buffers filled with BYTE, print "handle
//                               <h>" each, then "ready"; exit at stdin EOF without freeing
//   retain-hold HANDLE          retain HANDLE, print "ready", exit at stdin EOF
//   check HANDLE SIZE BYTE NEW  retain HANDLE, verify SIZE bytes equal BYTE, fill
//                               them with NEW, release; print "ok" (exit 0) or why (exit 1)
//   scribble BYTE               map the pool and overwrite the whole segment
//   survivor COUNT SIZE         allocate COUNT buffers (buffer i filled with byte i),
//                               print their handles and "ready"; then keep allocating,
//                               freeing and verifying until stdin EOF; print
//                               "ok <ops>" or the first failure
//   soak SECONDS SEED HANDLE... mixed allocate / write / verify / realloc /
//                               retain (of the given handles) / release for SECONDS;
//                               print "ok <ops>" or the first fault (exit 1)
//   restart-writer COUNT SIZE   allocate COUNT buffers of SIZE bytes filled with
//                               Pattern(handle), print their handles and "ready";
//                               then allocate / fill / realloc / verify / free and
//                               verify every byte of the COUNT buffers until stdin
//                               EOF, across daemon restarts (set MEMD_OUTAGE_WAIT_MS);
//                               print "ok <ops>" or the first fault (exit 1)
//   restart-reader SIZE HANDLE... retain the handles, print "ready"; verify every
//                               byte and retain/free one of them in a loop until
//                               stdin EOF; print "ok <ops>" or the first fault
//   probe SHM_OBJECT [HANDLE]   (security tests) print "attach <rc> <error>",
//                               "shm <errno of shm_open O_RDWR>", and when attached
//                               "alloc ok|<error>" and "retain ok|<error>" of HANDLE
//   send CHANNEL COUNT SIZE BYTE  allocate COUNT buffers filled with BYTE, send each to
//                               CHANNEL (metadata "m<i>"), print "sent", wait for stdin EOF
//   receive CHANNEL COUNT       receive COUNT messages (waiting up to 5 s each), print
//                               "received", hold them until stdin EOF
//   bad-channel CHANNEL         allocate 1 MiB filled with 0x5a, print "handle <h>",
//                               send it to CHANNEL and print "send <rc> <error>";
//                               then check the buffer kept its bytes and a new
//                               allocation lands elsewhere: print "ok" or why; hold
//                               both until stdin EOF
//   named COMM                  set this process's name (prctl PR_SET_NAME, the kernel
//                               keeps 15 bytes), allocate 100 bytes, print "ready",
//                               hold it until stdin EOF
//   channels PREFIX FIRST COUNT send COUNT metadata-only messages, one to each of the
//                               channels PREFIX<FIRST>..PREFIX<FIRST+COUNT-1>; print
//                               "sent" and wait for stdin EOF
//   churn SEED HANDLE...        random allocate / fill / realloc / retain (of the
//                               given shared handles, verifying they are unchanged) /
//                               free, forever: a victim to be killed at a random point
//   flood PREFIX COUNT SIZE META PER_CHANNEL
//                               (bounds tests) COUNT sends, PER_CHANNEL to each channel
//                               PREFIX<n> (capacity 4096), each of a fresh SIZE-byte
//                               buffer (none when SIZE is 0) and META bytes of metadata;
//                               stops at the first refusal and prints "refused <i>
//                               <code> <message>", else "sent <COUNT>"; then exits
//   receive-none PREFIX COUNT   COUNT receives without waiting from channels PREFIX<i>;
//                               prints "empty <n>" (the DEADLINE_EXCEEDED ones) or the
//                               first other error
#include <fcntl.h>
#include <poll.h>
#include <sys/prctl.h>
#include <sys/mman.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <random>
#include <vector>
#include <chrono>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <iostream>
#include <string>

#include "client_commands.h"
#include "memd/client.h"
#include "memd/memd.h"

namespace {

using memd::testing::StdinClosed;
using memd::testing::WaitForStdinEof;

int Fail(const std::string& why) {
  std::cout << "error " << why << std::endl;
  return 1;
}

// The content restart tests write: every byte depends on the handle and its index.
uint8_t Pattern(uint64_t handle, size_t i) {
  return static_cast<uint8_t>((handle >> 3) ^ (handle >> 29) ^ (i * 7) ^ (i >> 8));
}

void Fill(uint8_t* p, uint64_t handle, size_t size) {
  for (size_t i = 0; i < size; ++i) p[i] = Pattern(handle, i);
}

// Empty when all `size` bytes hold the pattern, else where they differ.
std::string Verify(const uint8_t* p, uint64_t handle, size_t size) {
  for (size_t i = 0; i < size; ++i) {
    if (p[i] != Pattern(handle, i)) {
      return "handle " + std::to_string(handle) + " byte " + std::to_string(i) + " is " +
             std::to_string(p[i]) + ", expected " + std::to_string(Pattern(handle, i));
    }
  }
  return "";
}

int RestartWriter(long count, size_t size) {
  std::vector<uint8_t*> shared;
  for (long i = 0; i < count; ++i) {
    auto* p = static_cast<uint8_t*>(memd_malloc(size));
    if (p == nullptr) return Fail(memd_last_error());
    Fill(p, memd_handle(p), size);
    shared.push_back(p);
    std::cout << "handle " << memd_handle(p) << std::endl;
  }
  std::cout << "ready" << std::endl;
  struct Own {
    uint8_t* p;
    size_t size;
    uint64_t handle;  // the pattern's key (a realloc keeps the handle)
  };
  std::vector<Own> own;
  std::mt19937 rng(static_cast<uint32_t>(getpid()));
  long ops = 0;
  while (!StdinClosed()) {
    if (own.size() < 6) {
      size_t n = 1 + rng() % 50000;
      auto* p = static_cast<uint8_t*>(memd_malloc(n));
      if (p == nullptr) return Fail(std::string("malloc: ") + memd_last_error());
      Fill(p, memd_handle(p), n);
      own.push_back({p, n, memd_handle(p)});
    } else {
      size_t i = rng() % own.size();
      if (std::string bad = Verify(own[i].p, own[i].handle, own[i].size); !bad.empty()) return Fail(bad);
      if (rng() % 2 == 0) {
        size_t n = own[i].size + 1 + rng() % 20000;
        auto* q = static_cast<uint8_t*>(memd_realloc(own[i].p, n));
        if (q == nullptr) return Fail(std::string("realloc: ") + memd_last_error());
        if (std::string bad = Verify(q, own[i].handle, own[i].size); !bad.empty()) {
          return Fail("after realloc: " + bad);
        }
        Fill(q, own[i].handle, n);
        own[i].p = q;
        own[i].size = n;
      } else {
        memd_free(own[i].p);
        own.erase(own.begin() + static_cast<long>(i));
      }
    }
    for (uint8_t* p : shared) {
      if (std::string bad = Verify(p, memd_handle(p), size); !bad.empty()) return Fail(bad);
    }
    ++ops;
  }
  for (const Own& o : own) {
    if (std::string bad = Verify(o.p, o.handle, o.size); !bad.empty()) return Fail(bad);
    memd_free(o.p);
  }
  for (uint8_t* p : shared) memd_free(p);
  std::cout << "ok " << ops << std::endl;
  return 0;
}

int RestartReader(size_t size, const std::vector<uint64_t>& handles) {
  std::vector<uint8_t*> held;
  for (uint64_t h : handles) {
    size_t got = 0;
    auto* p = static_cast<uint8_t*>(memd_retain(h, &got));
    if (p == nullptr) return Fail(std::string("retain: ") + memd_last_error());
    if (got != size) return Fail("retained size " + std::to_string(got));
    held.push_back(p);
  }
  std::cout << "ready" << std::endl;
  long ops = 0;
  while (!StdinClosed()) {
    for (size_t i = 0; i < held.size(); ++i) {
      if (std::string bad = Verify(held[i], handles[i], size); !bad.empty()) return Fail(bad);
    }
    size_t got = 0;
    void* extra = memd_retain(handles[static_cast<size_t>(ops) % handles.size()], &got);
    if (extra == nullptr) return Fail(std::string("retain: ") + memd_last_error());
    memd_free(extra);
    ++ops;
  }
  for (uint8_t* p : held) memd_free(p);
  std::cout << "ok " << ops << std::endl;
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 2) return Fail("usage: see source");
  std::string cmd = argv[1];
  if (cmd == "hold" && argc == 5) return memd::testing::Hold(argv[2], argv[3], argv[4]);
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
  if (cmd == "probe" && (argc == 3 || argc == 4)) {
    int rc = memd_init(nullptr, nullptr);
    std::cout << "attach " << rc << " " << (rc != 0 ? memd_last_error() : "") << std::endl;
    int fd = shm_open(argv[2], O_RDWR, 0);
    std::cout << "shm " << (fd < 0 ? errno : 0) << std::endl;
    if (fd >= 0) close(fd);
    if (rc == 0) {
      void* p = memd_malloc(100);
      std::cout << "alloc " << (p != nullptr ? "ok" : memd_last_error()) << std::endl;
      if (argc == 4) {
        size_t size = 0;
        void* r = memd_retain(std::strtoull(argv[3], nullptr, 0), &size);
        std::cout << "retain " << (r != nullptr ? "ok" : memd_last_error()) << std::endl;
      }
    }
    return 0;
  }
  if ((cmd == "send" || cmd == "post") && argc == 6) {
    // send|post CHANNEL COUNT SIZE BYTE: COUNT buffers of SIZE bytes of BYTE,
    // sent one by one, or posted (printing "posted" before the last collect).
    bool post = cmd == "post";
    auto client = memd::Client::Connect();
    if (!client.ok()) return Fail(std::string(client.status().message()));
    long count = std::atol(argv[3]);
    size_t size = std::strtoull(argv[4], nullptr, 0);
    for (long i = 0; i < count; ++i) {
      auto buffer = (*client)->AllocateRef(size, false);
      if (!buffer.ok()) return Fail(std::string(buffer.status().message()));
      std::memset((*client)->Pointer(buffer->offset_bytes), std::atoi(argv[5]), size);
      std::string metadata = "m" + std::to_string(i);
      absl::Status sent = post ? (*client)->Post(argv[2], {buffer->handle}, metadata, 60000)
                               : (*client)->Send(argv[2], {buffer->handle}, metadata, 5000);
      if (!sent.ok()) return Fail(std::string(sent.message()));
    }
    if (post) {
      std::cout << "posted" << std::endl;
      absl::Status last = (*client)->CollectPosted();
      if (!last.ok()) return Fail(std::string(last.message()));
    }
    std::cout << "sent" << std::endl;
    WaitForStdinEof();
    return 0;
  }
  if (cmd == "receive" && argc == 4) {
    auto client = memd::Client::Connect();
    if (!client.ok()) return Fail(std::string(client.status().message()));
    for (long i = 0; i < std::atol(argv[3]); ++i) {
      auto message = (*client)->Receive(argv[2], 5000);
      if (!message.ok()) return Fail(std::string(message.status().message()));
    }
    std::cout << "received" << std::endl;
    WaitForStdinEof();
    return 0;
  }
  if (cmd == "bad-channel" && argc == 3) {
    constexpr size_t kSize = 1 << 20;
    auto* p = static_cast<uint8_t*>(memd_malloc(kSize));
    if (p == nullptr) return Fail(memd_last_error());
    std::memset(p, 0x5a, kSize);
    std::cout << "handle " << memd_handle(p) << std::endl;
    void* ptrs[] = {p};
    int rc = memd_channel_send(argv[2], ptrs, 1, nullptr, 0, 0);
    std::cout << "send " << rc << " " << (rc != 0 ? memd_last_error() : "") << std::endl;
    auto* q = static_cast<uint8_t*>(memd_malloc(kSize));
    if (q == nullptr) return Fail(std::string("malloc after the send: ") + memd_last_error());
    if (q == p) return Fail("the new allocation got the address of the buffer still held");
    for (size_t i = 0; i < kSize; ++i) {
      if (p[i] != 0x5a) return Fail("byte " + std::to_string(i) + " of the held buffer changed");
    }
    std::cout << "ok" << std::endl;
    WaitForStdinEof();
    return 0;
  }
  if (cmd == "named" && argc == 3) {
    if (prctl(PR_SET_NAME, argv[2]) != 0) return Fail("prctl PR_SET_NAME failed");
    if (memd_malloc(100) == nullptr) return Fail(memd_last_error());
    std::cout << "ready" << std::endl;
    WaitForStdinEof();
    return 0;
  }
  if (cmd == "channels" && argc == 5) {
    // A session of its own per 250 channels: a session may have 256.
    std::vector<std::unique_ptr<memd::Client>> clients;
    long first = std::atol(argv[3]), count = std::atol(argv[4]);
    for (long i = first; i < first + count; ++i) {
      if ((i - first) % 250 == 0) {
        auto client = memd::Client::Connect({.lane = false});
        if (!client.ok()) return Fail(std::string(client.status().message()));
        clients.push_back(std::move(*client));
      }
      absl::Status sent = clients.back()->Send(argv[2] + std::to_string(i), {}, "", 0);
      if (!sent.ok()) return Fail(std::string(sent.message()));
    }
    std::cout << "sent" << std::endl;
    WaitForStdinEof();
    return 0;
  }
  if (cmd == "restart-writer" && argc == 4) {
    return RestartWriter(std::atol(argv[2]), std::strtoull(argv[3], nullptr, 0));
  }
  if (cmd == "restart-reader" && argc >= 4) {
    std::vector<uint64_t> handles;
    for (int i = 3; i < argc; ++i) handles.push_back(std::strtoull(argv[i], nullptr, 0));
    return RestartReader(std::strtoull(argv[2], nullptr, 0), handles);
  }
  if (cmd == "survivor" && argc == 4) {
    long count = std::atol(argv[2]);
    size_t size = std::strtoull(argv[3], nullptr, 0);
    std::vector<uint8_t*> mine;
    for (long i = 0; i < count; ++i) {
      auto* p = static_cast<uint8_t*>(memd_malloc(size));
      if (p == nullptr) return Fail(memd_last_error());
      std::memset(p, static_cast<int>(i & 0xff), size);
      mine.push_back(p);
      std::cout << "handle " << memd_handle(p) << std::endl;
    }
    std::cout << "ready" << std::endl;
    long ops = 0;
    pollfd in{0, POLLIN, 0};
    while (poll(&in, 1, 1) == 0) {
      void* tmp = memd_malloc(4096 + static_cast<size_t>(ops % 8192));
      if (tmp == nullptr) return Fail(std::string("served no more: ") + memd_last_error());
      memd_free(tmp);
      for (long i = 0; i < count; ++i) {
        if (mine[i][0] != (i & 0xff) || mine[i][size - 1] != (i & 0xff)) {
          return Fail("buffer " + std::to_string(i) + " changed");
        }
      }
      ++ops;
    }
    for (auto* p : mine) memd_free(p);
    std::cout << "ok " << ops << std::endl;
    return 0;
  }
  if (cmd == "soak" && argc >= 4) {
    auto end = std::chrono::steady_clock::now() + std::chrono::seconds(std::atoi(argv[2]));
    std::mt19937 rng(static_cast<uint32_t>(std::strtoul(argv[3], nullptr, 0)));
    std::vector<uint64_t> shared;
    for (int i = 4; i < argc; ++i) shared.push_back(std::strtoull(argv[i], nullptr, 0));
    struct Own {
      uint8_t* p;
      size_t size;
      uint8_t byte;
    };
    std::vector<Own> own;
    long ops = 0;
    auto verify = [](const Own& o) { return o.size == 0 || (o.p[0] == o.byte && o.p[o.size - 1] == o.byte); };
    constexpr size_t kMaxOwn = 24;  // 64 clients x 24 x 100 KB average stays well inside 1 GiB
    while (std::chrono::steady_clock::now() < end) {
      int op = own.size() >= kMaxOwn ? 9 : static_cast<int>(rng() % 10);
      if (op < 4 || own.empty()) {
        size_t size = 1 + rng() % 200000;
        auto* p = static_cast<uint8_t*>(memd_malloc(size));
        if (p == nullptr) return Fail(std::string("malloc: ") + memd_last_error());
        auto byte = static_cast<uint8_t>(rng());
        std::memset(p, byte, size);
        own.push_back({p, size, byte});
      } else if (op < 6 && !shared.empty()) {
        size_t size = 0;
        auto* p = static_cast<uint8_t*>(memd_retain(shared[rng() % shared.size()], &size));
        if (p == nullptr) return Fail(std::string("retain: ") + memd_last_error());
        uint8_t first = p[0];
        if (p[size - 1] != first) return Fail("shared buffer is torn");
        memd_free(p);
      } else if (op < 7) {
        Own& o = own[rng() % own.size()];
        if (!verify(o)) return Fail("own buffer changed before realloc");
        size_t size = 1 + rng() % 200000;
        auto* q = static_cast<uint8_t*>(memd_realloc(o.p, size));
        if (q == nullptr) return Fail(std::string("realloc: ") + memd_last_error());
        if (q[0] != o.byte || q[std::min(size, o.size) - 1] != o.byte) return Fail("realloc lost content");
        std::memset(q, o.byte, size);
        o = {q, size, o.byte};
      } else {
        size_t i = rng() % own.size();
        if (!verify(own[i])) return Fail("own buffer changed before free");
        memd_free(own[i].p);
        own.erase(own.begin() + static_cast<long>(i));
      }
      ++ops;
    }
    for (auto& o : own) memd_free(o.p);
    std::cout << "ok " << ops << std::endl;
    return 0;
  }
  if (cmd == "flood" && argc == 7) {
    auto client = memd::Client::Connect();
    if (!client.ok()) return Fail(std::string(client.status().message()));
    long count = std::atol(argv[3]);
    size_t size = std::strtoull(argv[4], nullptr, 0);
    std::string metadata(std::strtoull(argv[5], nullptr, 0), 'm');
    long per_channel = std::max(1L, std::atol(argv[6]));
    for (long i = 0; i < count; ++i) {
      std::vector<uint64_t> handles;
      if (size > 0) {
        auto buffer = (*client)->AllocateRef(size, false);
        if (!buffer.ok()) {
          std::cout << "refused " << i << " " << absl::StatusCodeToString(buffer.status().code())
                    << " " << buffer.status().message() << std::endl;
          return 0;
        }
        handles.push_back(buffer->handle);
      }
      std::string channel = argv[2] + std::to_string(i / per_channel);
      absl::Status sent = (*client)->Send(channel, handles, metadata, 0, 4096);
      if (!sent.ok()) {
        std::cout << "refused " << i << " " << absl::StatusCodeToString(sent.code()) << " "
                  << sent.message() << std::endl;
        return 0;
      }
    }
    std::cout << "sent " << count << std::endl;
    return 0;
  }
  if (cmd == "receive-none" && argc == 4) {
    auto client = memd::Client::Connect();
    if (!client.ok()) return Fail(std::string(client.status().message()));
    long empty = 0;
    for (long i = 0; i < std::atol(argv[3]); ++i) {
      auto message = (*client)->Receive(argv[2] + std::to_string(i), 0);
      if (message.status().code() != absl::StatusCode::kDeadlineExceeded) {
        return Fail("receive " + std::to_string(i) + ": " + message.status().ToString());
      }
      ++empty;
    }
    std::cout << "empty " << empty << std::endl;
    return 0;
  }
  if (cmd == "churn" && argc >= 3) {
    std::mt19937 rng(static_cast<uint32_t>(std::strtoul(argv[2], nullptr, 0)));
    std::vector<uint64_t> shared;
    for (int i = 3; i < argc; ++i) shared.push_back(std::strtoull(argv[i], nullptr, 0));
    std::vector<std::pair<uint8_t*, size_t>> own;
    std::vector<std::pair<uint8_t*, uint8_t>> retained;  // pointer, expected first byte
    std::uniform_real_distribution<double> log_size(0, 20);
    std::cout << "started" << std::endl;
    while (true) {
      int op = static_cast<int>(rng() % 10);
      if (op < 4 || own.empty()) {
        size_t size = static_cast<size_t>(std::exp2(log_size(rng)));
        auto* p = static_cast<uint8_t*>(memd_malloc(size));
        if (p != nullptr) {
          std::memset(p, 0x3c, size);
          own.emplace_back(p, size);
        }
      } else if (op < 6 && !shared.empty()) {
        uint64_t h = shared[rng() % shared.size()];
        size_t size = 0;
        auto* p = static_cast<uint8_t*>(memd_retain(h, &size));
        if (p != nullptr) retained.emplace_back(p, p[0]);
      } else if (op < 8) {
        auto& [p, size] = own[rng() % own.size()];
        size_t new_size = static_cast<size_t>(std::exp2(log_size(rng)));
        if (auto* q = static_cast<uint8_t*>(memd_realloc(p, new_size))) {
          p = q;
          size = new_size;
        }
      } else {
        size_t i = rng() % own.size();
        memd_free(own[i].first);
        own.erase(own.begin() + static_cast<long>(i));
        if (!retained.empty()) {
          auto [p, first] = retained.back();
          if (p[0] != first) return Fail("shared buffer changed under a reader");
          memd_free(p);
          retained.pop_back();
        }
      }
    }
  }
  return Fail("unknown command or wrong argument count");
}
