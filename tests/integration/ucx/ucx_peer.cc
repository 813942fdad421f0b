// memd_ucx_peer: one side of a UCX transport test or benchmark, as a real
// process (tests/integration/ucx/ucx_pull_test.cc, bench/bridge_bench.py).
//
//   memd_ucx_peer expose SIZE [clear]
//     maps a SIZE-byte memfd filled with PatternByte(), exposes it as pool
//     'video', grants it to peer 'pull' (sealed with AES-256-GCM, or in clear
//     with `clear`) with a read check that allows every range (a test
//     helper, not the engine's per-offer rule), prints "address HEX" and
//     "region HEX"; serves until stdin closes, then prints "cpu_us N" (its
//     user+system CPU) and exits.
//   memd_ucx_peer pull ADDRESS_HEX REGION_HEX [--deadline-ms N] [--wait]
//                 [--repeat N] OFFSET:LENGTH...
//     connects and pulls each range into fresh memory, checks the pattern
//     and prints one line per range: "ok OFFSET LENGTH", "mismatch OFFSET
//     LENGTH at BYTE" or "error CODE MESSAGE". --wait: then prints "waiting",
//     waits for stdin to close and pulls the first range once more, and if
//     that fails once again (what the link says after a failure).
//     --repeat N: pulls each range N times (a benchmark) and prints
//     "pulled FRAMES BYTES SECONDS CPU_US" (this process's user+system CPU).
//     --parallel N: pulls the first range N times at once, from N threads
//     (each into its own memory), and prints the N lines as they finish.
//   memd_ucx_peer attack ADDRESS_HEX READ_ADDRESS
//     plays a hostile UCX peer: its own RMA-enabled UCX context, an endpoint
//     to the exposer's worker, and a ucp_get_nbx of 16 bytes at READ_ADDRESS
//     of the exposer with an rkey of its own; prints "attack STATUS" (what
//     UCX said, or "timeout" after 2 s).
#include <sys/mman.h>
#include <sys/resource.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <atomic>
#include <iostream>
#include <mutex>
#include <thread>
#include <string>
#include <vector>

#include "absl/strings/escaping.h"
#include "absl/time/clock.h"
#include <ucp/api/ucp.h>

#include "bridge/ucx/ucx_transport.h"

namespace {

// Byte i of the exposed region: the little-endian bytes of a word that
// changes every 8 bytes, so a shifted or misplaced range never matches.
uint8_t PatternByte(uint64_t i) {
  const uint64_t word = ((i >> 3) + 1) * 0x9E3779B97F4A7C15ull;
  return static_cast<uint8_t>(word >> (8 * (i & 7)));
}

long CpuMicros() {
  rusage usage{};
  getrusage(RUSAGE_SELF, &usage);
  return (usage.ru_utime.tv_sec + usage.ru_stime.tv_sec) * 1000000L + usage.ru_utime.tv_usec +
         usage.ru_stime.tv_usec;
}

std::string Hex(const std::string& bytes) {
  return absl::BytesToHexString(absl::string_view(bytes.data(), bytes.size()));
}

std::string Unhex(const char* hex) { return std::string(absl::HexStringToBytes(hex)); }

void WaitForStdinEof() {
  char buffer[256];
  while (read(0, buffer, sizeof(buffer)) > 0) {
  }
}

int Fail(const absl::Status& status) {
  std::cout << "error " << absl::StatusCodeToString(status.code()) << " " << status.message()
            << std::endl;
  return 1;
}

int Expose(uint64_t size, bool seal) {
  int fd = memfd_create("memd-ucx-peer", MFD_CLOEXEC);
  if (fd < 0 || ftruncate(fd, static_cast<off_t>(size)) != 0) return 2;
  auto* base = static_cast<uint8_t*>(
      mmap(nullptr, size, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_POPULATE, fd, 0));
  if (base == MAP_FAILED) return 2;
  for (uint64_t i = 0; i < size; ++i) base[i] = PatternByte(i);
  auto transport = memd::bridge::MakeUcxTransport(
      {.name = "expose", .may_read = [](auto...) { return absl::OkStatus(); }});
  if (!transport.ok()) return Fail(transport.status());
  if (absl::Status s = (*transport)->Expose("video", base, size); !s.ok()) return Fail(s);
  auto region = (*transport)->Grant("video", "pull", seal);
  if (!region.ok()) return Fail(region.status());
  auto address = (*transport)->LocalAddress();
  if (!address.ok()) return Fail(address.status());
  const long cpu_start = CpuMicros();
  std::cout << "address " << Hex(*address) << "\nregion " << Hex(*region) << std::endl;
  WaitForStdinEof();
  std::cout << "cpu_us " << CpuMicros() - cpu_start << std::endl;
  return 0;
}

struct Range {
  uint64_t offset;
  uint64_t length;
};

std::mutex out_mu;  // PullOnce's lines, from --parallel's threads

// One pull of `range` into fresh memory, checked; prints its line.
bool PullOnce(memd::bridge::PullConnection& connection, const std::string& region, Range range,
              absl::Duration deadline) {
  std::vector<uint8_t> dst(range.length);
  absl::Status s = connection.Pull(region, range.offset, dst.data(), range.length,
                                   absl::Now() + deadline);
  std::lock_guard<std::mutex> lock(out_mu);
  if (!s.ok()) {
    Fail(s);
    return false;
  }
  for (uint64_t i = 0; i < range.length; ++i) {
    if (dst[i] != PatternByte(range.offset + i)) {
      std::cout << "mismatch " << range.offset << " " << range.length << " at " << i << std::endl;
      return false;
    }
  }
  std::cout << "ok " << range.offset << " " << range.length << std::endl;
  return true;
}

int Pull(int argc, char** argv) {
  const std::string address = Unhex(argv[2]);
  const std::string region = Unhex(argv[3]);
  absl::Duration deadline = absl::Seconds(10);
  bool wait = false;
  int repeat = 0;
  int parallel = 0;
  std::vector<Range> ranges;
  for (int i = 4; i < argc; ++i) {
    std::string arg = argv[i];
    if (arg == "--deadline-ms" && i + 1 < argc) {
      deadline = absl::Milliseconds(std::atol(argv[++i]));
    } else if (arg == "--wait") {
      wait = true;
    } else if (arg == "--repeat" && i + 1 < argc) {
      repeat = std::atoi(argv[++i]);
    } else if (arg == "--parallel" && i + 1 < argc) {
      parallel = std::atoi(argv[++i]);
    } else {
      Range r{};
      if (std::sscanf(arg.c_str(), "%lu:%lu", &r.offset, &r.length) != 2) return 2;
      ranges.push_back(r);
    }
  }
  auto transport = memd::bridge::MakeUcxTransport(
      {.name = "pull", .may_read = [](auto...) { return absl::OkStatus(); }});
  if (!transport.ok()) return Fail(transport.status());
  auto connection = (*transport)->Connect("exposer", address);
  if (!connection.ok()) return Fail(connection.status());
  if (parallel > 0) {
    std::vector<std::thread> threads;
    std::atomic<bool> all_ok{true};
    for (int n = 0; n < parallel; ++n) {
      threads.emplace_back([&] {
        if (!PullOnce(**connection, region, ranges.at(0), deadline)) all_ok = false;
      });
    }
    for (std::thread& t : threads) t.join();
    return all_ok ? 0 : 1;
  }
  if (repeat > 0) {
    std::vector<uint8_t> dst(ranges.at(0).length);
    // One untimed pull first: connection set-up (UCX wires up lazily).
    if (absl::Status s = (*connection)->Pull(region, ranges[0].offset, dst.data(), dst.size(),
                                             absl::Now() + deadline);
        !s.ok()) {
      return Fail(s);
    }
    const long cpu_start = CpuMicros();
    const auto start = std::chrono::steady_clock::now();
    uint64_t bytes = 0;
    for (int n = 0; n < repeat; ++n) {
      for (const Range& r : ranges) {
        if (absl::Status s = (*connection)->Pull(region, r.offset, dst.data(), r.length,
                                                 absl::Now() + deadline);
            !s.ok()) {
          return Fail(s);
        }
        bytes += r.length;
      }
    }
    const double seconds =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    std::cout << "pulled " << repeat * ranges.size() << " " << bytes << " " << seconds << " "
              << CpuMicros() - cpu_start << std::endl;
    return 0;
  }
  bool all_ok = true;
  for (const Range& r : ranges) all_ok = PullOnce(**connection, region, r, deadline) && all_ok;
  if (wait && !ranges.empty()) {
    std::cout << "waiting" << std::endl;
    WaitForStdinEof();
    if (!PullOnce(**connection, region, ranges[0], deadline)) {
      PullOnce(**connection, region, ranges[0], deadline);
      all_ok = false;
    }
  }
  return all_ok ? 0 : 1;
}

// A hostile peer's UCX get (see the usage above). UCX's own API, no memd
// code: what any program on the network could do.
int Attack(const char* address_hex, uint64_t read_address) {
  const std::string envelope = Unhex(address_hex);
  const std::string address = envelope.substr(12);  // past the memd envelope (ucx_wire.h)
  ucp_config_t* config = nullptr;
  ucp_config_read(nullptr, nullptr, &config);
  ucp_params_t params{};
  params.field_mask = UCP_PARAM_FIELD_FEATURES;
  params.features = UCP_FEATURE_RMA | UCP_FEATURE_AM;
  ucp_context_h context = nullptr;
  if (ucp_init(&params, config, &context) != UCS_OK) return 2;
  ucp_config_release(config);
  ucp_worker_params_t worker_params{};
  ucp_worker_h worker = nullptr;
  if (ucp_worker_create(context, &worker_params, &worker) != UCS_OK) return 2;
  ucp_ep_params_t ep_params{};
  ep_params.field_mask = UCP_EP_PARAM_FIELD_REMOTE_ADDRESS;
  ep_params.address = reinterpret_cast<const ucp_address_t*>(address.data());
  ucp_ep_h ep = nullptr;
  if (ucs_status_t s = ucp_ep_create(worker, &ep_params, &ep); s != UCS_OK) {
    std::cout << "attack " << ucs_status_string(s) << std::endl;
    return 1;
  }
  // An rkey of the attacker's own memory, unpacked on the endpoint to the victim.
  static char own[4096];
  ucp_mem_map_params_t map{};
  map.field_mask = UCP_MEM_MAP_PARAM_FIELD_ADDRESS | UCP_MEM_MAP_PARAM_FIELD_LENGTH;
  map.address = own;
  map.length = sizeof(own);
  ucp_mem_h memh = nullptr;
  void* packed = nullptr;
  size_t packed_bytes = 0;
  ucp_rkey_h rkey = nullptr;
  if (ucp_mem_map(context, &map, &memh) != UCS_OK ||
      ucp_rkey_pack(context, memh, &packed, &packed_bytes) != UCS_OK) {
    return 2;
  }
  if (ucs_status_t s = ucp_ep_rkey_unpack(ep, packed, &rkey); s != UCS_OK) {
    std::cout << "attack " << ucs_status_string(s) << std::endl;
    return 1;
  }
  char stolen[16] = {};
  ucp_request_param_t get{};
  ucs_status_ptr_t request = ucp_get_nbx(ep, stolen, sizeof(stolen), read_address, rkey, &get);
  ucs_status_t status = UCS_PTR_STATUS(request);
  if (UCS_PTR_IS_PTR(request)) {
    const absl::Time deadline = absl::Now() + absl::Seconds(2);
    while ((status = ucp_request_check_status(request)) == UCS_INPROGRESS &&
           absl::Now() < deadline) {
      ucp_worker_progress(worker);
    }
  }
  std::cout << "attack " << (status == UCS_INPROGRESS ? "timeout" : ucs_status_string(status))
            << std::endl;
  _exit(0);  // leave UCX's teardown of a half-open endpoint to the kernel
}

}  // namespace

int main(int argc, char** argv) {
  if ((argc == 3 || (argc == 4 && std::strcmp(argv[3], "clear") == 0)) &&
      std::strcmp(argv[1], "expose") == 0) {
    return Expose(std::strtoull(argv[2], nullptr, 10), /*seal=*/argc == 3);
  }
  if (argc >= 4 && std::strcmp(argv[1], "pull") == 0) return Pull(argc, argv);
  if (argc == 4 && std::strcmp(argv[1], "attack") == 0) {
    return Attack(argv[2], std::strtoull(argv[3], nullptr, 0));
  }
  std::cerr << "usage: memd_ucx_peer expose SIZE | pull ADDRESS_HEX REGION_HEX [--deadline-ms N] "
               "[--wait] [--repeat N] OFFSET:LENGTH...\n";
  return 2;
}
