// Rows A, A-trace, A2, E and I against a real memd process (the numbers a
// client sees), each with its floor measured in the same run:
//   A   malloc+free round trip (C++ API, 64 B and 1 MiB): p50/p99 of the pair
//       vs a bare empty gRPC unary call over a Unix socket (Ping server in its
//       own process, callback API like memd)
//   A-trace  the 64 B pair while `memctl trace` records every event, vs the
//       same pair without a recording (alternating rounds, one daemon)
//   A2  memd_malloc+memd_free of <= 64 KiB in a steady loop, per pair, vs one
//       bare call (served by the session's arena: no round trip)
//   A3  memd_malloc+memd_free of 64 B vs av_malloc+av_free; and a 16 B-64 KiB
//       mix from 4 threads, 1000 live blocks each, vs av_malloc on the same
//       sequence
//   E   memd_memdup of 4 KiB .. 12.4 MB vs memcpy heap->heap of the same size
//   I   memd start to healthy with a 1 GiB pool, with and without reserve
//   B   aggregate alloc+free pairs/s from 1, 4, 16 client processes (release
//       waited for, and deferred onto the next allocate) vs bare unary
//       calls/s from as many processes (workers: this binary again,
//       `--worker memd|ping ADDRESS SECONDS`, so nothing forks a live gRPC)
//   C   memd::BufferPool get+release (AVBufferPool-style local recycling) vs
//       glibc malloc+free of the same size; memd::ffmpeg::FramePool and
//       libavutil's own AVBufferPool on the heap for reference
// Prints one JSON document on stdout.
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstring>
#include <iostream>
#include <optional>
#include <thread>
#include <vector>

#include <grpcpp/grpcpp.h>
#include <nlohmann/json.hpp>

#include "bench/ping.grpc.pb.h"
#include "busy_poll_floor.h"
#include "memd/buffer_pool.h"
#include "memd/client.h"
#include "memd/ffmpeg.h"
#include "memd/memd.h"
#include "memd/v1/admin.grpc.pb.h"

extern "C" {
#include <libavutil/mem.h>
}

namespace {

using Clock = std::chrono::steady_clock;

double Ns(Clock::duration d) { return std::chrono::duration<double, std::nano>(d).count(); }

struct Percentiles {
  double p50, p99;
};

Percentiles Summarize(std::vector<double>& samples) {
  std::sort(samples.begin(), samples.end());
  return {samples[samples.size() / 2], samples[samples.size() * 99 / 100]};
}

// p50/p99 of `calls` allocate+release pairs of `size` bytes (after 1000
// pairs of warm-up); nullopt when one fails.
std::optional<Percentiles> PairPercentiles(memd::Client& client, uint64_t size, int calls) {
  std::vector<double> pair_ns;
  for (int i = 0; i < calls + 1000; ++i) {
    auto t0 = Clock::now();
    auto ref = client.AllocateRef(size, false);
    if (!ref.ok() || !client.ReleaseRef(ref->handle).ok()) return std::nullopt;
    if (i >= 1000) pair_ns.push_back(Ns(Clock::now() - t0));
  }
  return Summarize(pair_ns);
}

// Row A-trace: the 64 B pair with no recording and while one records every
// event (memctl trace: StartTrace, 1,000,000 events at most, stopped and
// read out after each traced round), 3 rounds each, alternating; the median
// of each side's p50s and p99s.
bool TraceRow(memd::Client& client, const std::string& address, int calls,
              nlohmann::ordered_json* out) {
  auto admin = memd::v1::Admin::NewStub(
      grpc::CreateChannel(address, grpc::InsecureChannelCredentials()));
  std::vector<double> off_p50, off_p99, on_p50, on_p99;
  uint64_t events = 0;
  for (int round = 0; round < 3; ++round) {
    std::optional<Percentiles> off = PairPercentiles(client, 64, calls);
    memd::v1::StartTraceRequest start;
    start.set_duration_ms(600000);
    start.set_max_events(1000000);
    memd::v1::StartTraceResponse started;
    grpc::ClientContext start_ctx;
    if (!off || !admin->StartTrace(&start_ctx, start, &started).ok()) return false;
    std::optional<Percentiles> on = PairPercentiles(client, 64, calls);
    memd::v1::ReadTraceRequest read;
    read.set_trace_id(started.trace_id());
    read.set_stop(true);
    while (true) {  // every page: reading the last frees the recording
      memd::v1::ReadTraceResponse page;
      grpc::ClientContext read_ctx;
      if (!admin->ReadTrace(&read_ctx, read, &page).ok()) return false;
      events += page.events_size();
      if (page.next_page_token() == 0) break;
      read.set_page_token(page.next_page_token());
      read.set_stop(false);
    }
    if (!on) return false;
    off_p50.push_back(off->p50);
    off_p99.push_back(off->p99);
    on_p50.push_back(on->p50);
    on_p99.push_back(on->p99);
  }
  auto median = [](std::vector<double> v) { return Summarize(v).p50; };
  (*out)["A_trace"] = {{"p50_ns_off", median(off_p50)}, {"p50_ns_on", median(on_p50)},
                       {"p99_ns_off", median(off_p99)}, {"p99_ns_on", median(on_p99)},
                       {"p50_ratio", median(on_p50) / median(off_p50)},
                       {"p99_ratio", median(on_p99) / median(off_p99)},
                       {"events_recorded", events}};
  return true;
}

class PingService final : public memd::bench::Ping::CallbackService {
  grpc::ServerUnaryReactor* Ping(grpc::CallbackServerContext* context, const memd::bench::Empty*,
                                 memd::bench::Empty*) override {
    auto* reactor = context->DefaultReactor();
    reactor->Finish(grpc::Status::OK);
    return reactor;
  }
};

pid_t Spawn(std::vector<std::string> argv) {
  pid_t pid = fork();
  if (pid == 0) {
    std::vector<char*> args;
    for (auto& a : argv) args.push_back(a.data());
    args.push_back(nullptr);
    execv(args[0], args.data());
    _exit(127);
  }
  return pid;
}

bool Healthy(const std::string& address) {
  auto stub = memd::v1::Admin::NewStub(grpc::CreateChannel(address, grpc::InsecureChannelCredentials()));
  grpc::ClientContext ctx;
  ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::milliseconds(200));
  memd::v1::GetStatsResponse r;
  return stub->GetStats(&ctx, memd::v1::GetStatsRequest(), &r).ok();
}

void WaitHealthy(const std::string& socket_path, const std::string& address) {
  while (access(socket_path.c_str(), F_OK) != 0 || !Healthy(address)) {
    std::this_thread::sleep_for(std::chrono::microseconds(200));
  }
}

// One B worker: as many operations as fit in `seconds`; prints the count.
int Worker(const std::string& kind, const std::string& address, double seconds) {
  auto until = Clock::now() + std::chrono::duration_cast<Clock::duration>(
                                  std::chrono::duration<double>(seconds));
  long count = 0;
  if (kind == "memd" || kind == "memd-deferred") {
    auto client = memd::Client::Connect({.address = address});
    if (!client.ok()) return 1;
    const bool deferred = kind == "memd-deferred";  // the release rides on the next allocate
    while (Clock::now() < until) {
      auto ref = (*client)->AllocateRef(64, false);
      if (!ref.ok()) return 1;
      if (deferred) {
        (*client)->ReleaseRefsLater({ref->handle});
      } else if (!(*client)->ReleaseRef(ref->handle).ok()) {
        return 1;
      }
      ++count;
    }
  } else {
    auto ping = memd::bench::Ping::NewStub(grpc::CreateChannel(address, grpc::InsecureChannelCredentials()));
    while (Clock::now() < until) {
      grpc::ClientContext ctx;
      memd::bench::Empty req, resp;
      if (!ping->Ping(&ctx, req, &resp).ok()) return 1;
      ++count;
    }
  }
  std::cout << count << std::endl;
  return 0;
}

// Operations per second of `processes` workers of `kind` running at once.
double Throughput(const char* self, const std::string& kind, const std::string& address,
                  int processes, double seconds) {
  std::vector<FILE*> workers;
  for (int i = 0; i < processes; ++i) {
    std::string command = std::string(self) + " --worker " + kind + " " + address + " " +
                          std::to_string(seconds);
    workers.push_back(popen(command.c_str(), "r"));
  }
  long total = 0;
  for (FILE* w : workers) {
    long count = 0;
    if (w == nullptr || fscanf(w, "%ld", &count) != 1) count = 0;
    if (w != nullptr) pclose(w);
    total += count;
  }
  return static_cast<double>(total) / seconds;
}

template <typename Fn>
double NsPerOp(int reps, Fn fn) {
  auto t0 = Clock::now();
  for (int i = 0; i < reps; ++i) fn();
  return Ns(Clock::now() - t0) / reps;
}

}  // namespace

// Row A3: the C API against libavutil on the same sequences.
nlohmann::ordered_json RowA3(int pairs) {
  nlohmann::ordered_json row;
  auto pair_ns = [&](auto alloc, auto release) {
    auto t0 = Clock::now();
    for (int i = 0; i < pairs; ++i) {
      void* p = alloc(64);
      asm volatile("" : : "r"(p) : "memory");
      release(p);
    }
    return Ns(Clock::now() - t0) / pairs;
  };
  double ours = pair_ns(memd_malloc, memd_free);
  double theirs = pair_ns(av_malloc, av_free);
  row["64"] = {{"memd_ns", ours}, {"av_ns", theirs}, {"ratio", ours / theirs}};
  // 4 threads, each replacing one of its 1000 live blocks per step with a
  // block of a log-uniform size from 16 B to 64 KiB (the same sequence for both).
  constexpr int kThreads = 4, kLive = 1000;
  const int steps = pairs / 10;
  auto mix_ns = [&](auto alloc, auto release) {
    std::vector<std::thread> threads;
    auto t0 = Clock::now();
    for (int t = 0; t < kThreads; ++t) {
      threads.emplace_back([&, t] {
        std::vector<void*> live(kLive, nullptr);
        uint64_t x = 0x9e3779b97f4a7c15ull * (t + 1);
        for (int i = 0; i < steps; ++i) {
          x ^= x << 13, x ^= x >> 7, x ^= x << 17;
          size_t size = size_t{16} << (x % 13);  // 16 B .. 64 KiB
          size += (x >> 8) % size;
          size = std::min<size_t>(size, 65536);
          void*& slot = live[(x >> 32) % kLive];
          release(slot);
          slot = alloc(size);
          static_cast<char*>(slot)[0] = 1;
        }
        for (void* p : live) release(p);
      });
    }
    for (auto& th : threads) th.join();
    return Ns(Clock::now() - t0) / (double(steps) * kThreads);
  };
  ours = mix_ns(memd_malloc, memd_free);
  theirs = mix_ns(av_malloc, av_free);
  row["mix"] = {{"memd_ns", ours}, {"av_ns", theirs}, {"ratio", ours / theirs}};
  return row;
}

int main(int argc, char** argv) {
  if (argc == 5 && std::string(argv[1]) == "--worker") return Worker(argv[2], argv[3], std::atof(argv[4]));
  const int kCalls = argc > 1 ? std::atoi(argv[1]) : 20000;
  char tmpl[] = "/tmp/memd-bench-XXXXXX";
  std::string dir = mkdtemp(tmpl);
  std::string memd_sock = dir + "/memd.sock", ping_sock = dir + "/ping.sock";
  std::string memd_addr = "unix://" + memd_sock;
  std::string instance = "memd-bench-" + std::to_string(getpid());
  nlohmann::ordered_json out;

  // --- Floor: bare empty unary call, server in its own process.
  pid_t ping_pid = fork();
  if (ping_pid == 0) {
    PingService service;
    grpc::ServerBuilder builder;
    builder.AddListeningPort("unix:" + ping_sock, grpc::InsecureServerCredentials());
    builder.RegisterService(&service);
    builder.BuildAndStart()->Wait();
    _exit(0);
  }
  while (access(ping_sock.c_str(), F_OK) != 0) std::this_thread::sleep_for(std::chrono::milliseconds(1));
  auto ping = memd::bench::Ping::NewStub(grpc::CreateChannel("unix:" + ping_sock, grpc::InsecureChannelCredentials()));
  std::vector<double> floor_ns;
  for (int i = 0; i < kCalls + 1000; ++i) {
    grpc::ClientContext ctx;
    memd::bench::Empty req, resp;
    auto t0 = Clock::now();
    if (!ping->Ping(&ctx, req, &resp).ok()) return 1;
    if (i >= 1000) floor_ns.push_back(Ns(Clock::now() - t0));  // first 1000: warm-up
  }
  Percentiles floor = Summarize(floor_ns);
  out["floor_unary_call_ns"] = {{"p50", floor.p50}, {"p99", floor.p99}};
  // --- Floor: busy-polled Unix-socket ping-pong (one round trip).
  std::vector<double> busy_ns = memd::bench::BusyPollPingPongNs(kCalls);
  if (busy_ns.empty()) return 1;
  Percentiles busy = Summarize(busy_ns);
  out["floor_busy_poll_rtt_ns"] = {{"p50", busy.p50}, {"p99", busy.p99}};

  // --- memd with a 1 GiB pool.
  pid_t memd_pid = Spawn({MEMD_BINARY, "--listen", memd_addr, "--instance", instance, "--pool",
                          "default=1GiB", "--log-level", "error"});
  WaitHealthy(memd_sock, "unix:" + memd_sock);
  auto client = memd::Client::Connect({.address = memd_addr});
  if (!client.ok()) return 1;
  for (uint64_t size : {uint64_t{64}, uint64_t{1} << 20}) {
    std::optional<Percentiles> measured = PairPercentiles(**client, size, kCalls);
    if (!measured) return 1;
    Percentiles p = *measured;
    out["A"][std::to_string(size)] = {{"p50_ns", p.p50}, {"p99_ns", p.p99},
                                      {"p50_ratio_to_floor", p.p50 / floor.p50},
                                      {"p99_ratio_to_floor", p.p99 / floor.p99},
                                      // a pair is two round trips
                                      {"p50_ratio_to_busy_poll", p.p50 / (2 * busy.p50)}};
  }

  // --- A-trace: the same pair while `memctl trace` records (StartTrace),
  // against the pair without, in alternating rounds on this daemon.
  if (!TraceRow(**client, memd_addr, kCalls, &out)) return 1;

  // --- A2: C API steady loop of small allocations.
  if (memd_init(memd_addr.c_str(), "default") != 0) return 1;
  {
    const int pairs = kCalls * 50;  // sub-microsecond pairs: enough of them to time
    auto t0 = Clock::now();
    for (int i = 0; i < pairs; ++i) {
      void* p = memd_malloc(64 + (i * 4099) % (65536 - 64 + 1));
      memd_free(p);
    }
    double per_pair = Ns(Clock::now() - t0) / pairs;
    out["A2"] = {{"ns_per_pair", per_pair}, {"ratio_to_floor_p50", per_pair / floor.p50}};
  }
  out["A3"] = RowA3(kCalls * 100);

  // --- A2b: the same small allocations in batches of 64 per message.
  {
    constexpr uint32_t kBatch = 64;
    const int rounds = kCalls / kBatch;
    auto t0 = Clock::now();
    for (int i = 0; i < rounds; ++i) {
      auto refs = (*client)->AllocateRefs(64 + (i * 4099) % 65536, kBatch);
      if (!refs.ok()) return 1;
      std::vector<uint64_t> handles;
      for (const auto& r : *refs) handles.push_back(r.handle);
      if (!(*client)->ReleaseRefs(handles).ok()) return 1;
    }
    double per_pair = Ns(Clock::now() - t0) / (rounds * kBatch);
    out["A2b"] = {{"ns_per_pair", per_pair}, {"ratio_to_floor_p50", per_pair / floor.p50}};
  }

  // --- E: memdup into the pool vs memcpy heap->heap; and, to tell the
  // destination's kind of memory from memd's own cost, memcpy heap->pool (a
  // block held across the loop: shared-memory pages, no call to memd).
  // Each is timed in 3 alternating rounds; the fastest round counts.
  for (size_t size : {size_t{4096}, size_t{65536}, size_t{1} << 20, size_t{12441600}}) {
    std::vector<uint8_t> src(size, 0x5a), dst(size);
    const int reps = size >= (1 << 20) ? 200 : 5000;
    std::memcpy(dst.data(), src.data(), size);  // fault dst in
    void* pool_dst = memd_malloc(size);
    if (pool_dst == nullptr) return 1;
    std::memcpy(pool_dst, src.data(), size);  // fault it in too
    // Fault the memdup destination in as for the heap: one memdup first (its
    // block, kept by the arena after the free, serves the loop).
    void* warm = memd_memdup(src.data(), size);
    if (warm == nullptr) return 1;
    memd_free(warm);
    auto copy_ns = [&](void* to) {
      auto t0 = Clock::now();
      for (int i = 0; i < reps; ++i) {
        std::memcpy(to, src.data(), size);
        asm volatile("" : : "r"(to) : "memory");
      }
      return Ns(Clock::now() - t0) / reps;
    };
    double heap_ns = 1e300, shm_ns = 1e300, memd_ns = 1e300;
    for (int round = 0; round < 3; ++round) {
      heap_ns = std::min(heap_ns, copy_ns(dst.data()));
      shm_ns = std::min(shm_ns, copy_ns(pool_dst));
      auto t0 = Clock::now();
      for (int i = 0; i < reps; ++i) {
        void* p = memd_memdup(src.data(), size);
        if (p == nullptr) return 1;
        memd_free(p);
      }
      memd_ns = std::min(memd_ns, Ns(Clock::now() - t0) / reps);
    }
    memd_free(pool_dst);
    out["E"][std::to_string(size)] = {{"memd_memdup_GBps", size / memd_ns},
                                      {"heap_memcpy_GBps", size / heap_ns},
                                      {"pool_memcpy_GBps", size / shm_ns},
                                      {"ratio", heap_ns / memd_ns},
                                      {"ratio_to_pool_memcpy", shm_ns / memd_ns}};
  }
  // --- C: local recycling of fixed-size buffers vs the heap.
  {
    memd::ffmpeg::FramePool frames(**client);
    for (size_t size : {size_t{4096}, size_t{65536}, size_t{1} << 20}) {
      constexpr int kReps = 200000;
      AVBufferRef* warm = frames.Get(size);  // the pool's first buffer
      av_buffer_unref(&warm);
      auto buffers = memd::BufferPool::Create(**client, size);
      if (!buffers.ok() || !(*buffers)->Get().ok()) return 1;  // first batch
      double buffer_pool_ns = NsPerOp(kReps, [&] {
        absl::StatusOr<memd::PooledBuffer> b = (*buffers)->Get();
        asm volatile("" : : "r"(b->data()) : "memory");
      });
      double frame_pool_ns = NsPerOp(kReps, [&] {
        AVBufferRef* b = frames.Get(size);
        asm volatile("" : : "r"(b->data) : "memory");
        av_buffer_unref(&b);
      });
      double malloc_ns = NsPerOp(kReps, [&] {
        void* p = std::malloc(size);
        asm volatile("" : : "r"(p) : "memory");
        std::free(p);
      });
      AVBufferPool* heap_pool = av_buffer_pool_init(size, nullptr);
      double avpool_ns = NsPerOp(kReps, [&] {
        AVBufferRef* b = av_buffer_pool_get(heap_pool);
        asm volatile("" : : "r"(b->data) : "memory");
        av_buffer_unref(&b);
      });
      av_buffer_pool_uninit(&heap_pool);
      out["C"][std::to_string(size)] = {{"memd_buffer_pool_ns", buffer_pool_ns},
                                        {"malloc_free_ns", malloc_ns},
                                        {"memd_frame_pool_ns", frame_pool_ns},
                                        {"libavutil_heap_pool_ns", avpool_ns},
                                        {"ratio_to_malloc", buffer_pool_ns / malloc_ns}};
    }
  }

  // --- B: throughput from several client processes vs as many bare callers.
  for (int processes : {1, 4, 16}) {
    constexpr double kSeconds = 1.5;
    double memd_pairs = Throughput(argv[0], "memd", memd_addr, processes, kSeconds);
    double deferred = Throughput(argv[0], "memd-deferred", memd_addr, processes, kSeconds);
    double unary = Throughput(argv[0], "ping", "unix:" + ping_sock, processes, kSeconds);
    out["B"][std::to_string(processes)] = {{"memd_pairs_per_s", memd_pairs}, {"unary_calls_per_s", unary},
                                           {"ratio", memd_pairs / unary},
                                           {"memd_deferred_pairs_per_s", deferred},
                                           {"deferred_ratio", deferred / unary}};
  }

  memd_uninit();
  client->reset();
  kill(memd_pid, SIGTERM);
  waitpid(memd_pid, nullptr, 0);

  // --- I: start to healthy, 1 GiB pool.
  for (bool reserve : {false, true}) {
    std::vector<double> ms;
    for (int run = 0; run < 5; ++run) {
      std::vector<std::string> args = {MEMD_BINARY, "--listen", memd_addr, "--instance", instance,
                                       "--pool", "default=1GiB", "--log-level", "error"};
      if (!reserve) args.push_back("--no-reserve");
      auto t0 = Clock::now();
      pid_t pid = Spawn(args);
      WaitHealthy(memd_sock, "unix:" + memd_sock);
      ms.push_back(Ns(Clock::now() - t0) / 1e6);
      kill(pid, SIGTERM);
      waitpid(pid, nullptr, 0);
    }
    std::sort(ms.begin(), ms.end());
    out["I"][reserve ? "reserve" : "no_reserve"] = {{"median_ms", ms[ms.size() / 2]}};
  }
  kill(ping_pid, SIGKILL);
  waitpid(ping_pid, nullptr, 0);
  rmdir(dir.c_str());
  std::cout << out.dump(2) << std::endl;
  return 0;
}
