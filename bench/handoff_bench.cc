// Row L (issue 25): frames handed from a producer process to a consumer
// process, through memd's channels (today's public C API) against a futex
// frame ring written by hand (futex_ring.h), the same frames, depth and
// stamps on both sides (handoff_roles.h, frame_stamp.h).
//
// Usage: memd_bench_handoff [--seconds S] [--reps N] [--sizes B,B] [--pairs N,N]
//                           [--memd PATH]
// Defaults: 3 s runs, 3 repetitions, 65536 and 3110400 B (1080p NV12), 1, 4 and
// 16 pairs at once (each pair its own ring or channel). Repetitions interleave
// the floor and memd (floor, memd, floor, memd, ...); each figure is the median
// over them. Starts a memd of its own (PATH, default the one built with it; a
// 1 GiB pool) unless $MEMD_ADDRESS is set ($MEMD_PID then names the daemon whose
// CPU to count; without it the daemon's CPU is not counted).
//
// Per run: frames/s (all consumers' frames over the time from the start to
// the last frame received), CPU per frame of the producers, the consumers
// (each process's own getrusage from the start to its last frame, all its
// threads) and the daemon (/proc/PID/stat utime+stime over the run), and the
// one-way latency p50/p99 (stamp to receive, every frame of every pair).
// Prints one JSON document (bench/report.py reads it as *.handoffjson).
#include <signal.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <iostream>
#include <sstream>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "frame_stamp.h"
#include "futex_ring.h"
#include "handoff_roles.h"

namespace {

using memd::bench::Control;
using memd::bench::FutexRing;
using memd::bench::kMaxPairs;
using memd::bench::kMaxSamples;
using memd::bench::MonotonicNs;
using memd::bench::RoleResult;

struct Options {
  double seconds = 3;
  int reps = 3;
  std::vector<size_t> sizes = {65536, 1920 * 1080 * 3 / 2};
  std::vector<int> pairs = {1, 4, 16};
  std::string memd = MEMD_BINARY;
};

std::vector<long> ParseList(const std::string& text) {
  std::vector<long> out;
  std::stringstream in(text);
  for (std::string item; std::getline(in, item, ',');) out.push_back(std::stol(item));
  return out;
}

// utime+stime of a process in ns (clock ticks: 10 ms each at 100 Hz); -1 if unknown.
double ProcessCpuNs(pid_t pid) {
  if (pid <= 0) return -1;
  std::ifstream in("/proc/" + std::to_string(pid) + "/stat");
  std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  size_t paren = text.rfind(')');
  if (paren == std::string::npos) return -1;
  std::stringstream fields(text.substr(paren + 2));
  std::string field;
  double ticks = 0;
  for (int i = 3; i <= 15 && fields >> field; ++i) {
    if (i == 14 || i == 15) ticks += std::stod(field);
  }
  return ticks * 1e9 / static_cast<double>(sysconf(_SC_CLK_TCK));
}

std::string LoadAverage() {
  std::ifstream in("/proc/loadavg");
  std::string one, five, fifteen;
  in >> one >> five >> fifteen;
  return one + " " + five + " " + fifteen;
}

template <typename T>
T* SharedAnonymous(size_t bytes) {
  void* p = mmap(nullptr, bytes, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
  if (p == MAP_FAILED) {
    std::perror("mmap");
    std::exit(1);
  }
  return static_cast<T*>(p);
}

double Percentile(std::vector<uint32_t>& v, double q) {
  if (v.empty()) return 0;
  size_t k = std::min(v.size() - 1, static_cast<size_t>(q * static_cast<double>(v.size())));
  std::nth_element(v.begin(), v.begin() + static_cast<long>(k), v.end());
  return v[k];
}

// One run of `pairs` producer/consumer pairs, the floor or memd.
nlohmann::ordered_json Run(bool memd_side, size_t frame_bytes, int pairs, double seconds, pid_t daemon,
                           int run_id) {
  auto* control = SharedAnonymous<Control>(sizeof(Control));
  auto* samples = SharedAnonymous<uint32_t>(sizeof(uint32_t) * kMaxSamples * pairs);
  std::vector<FutexRing*> rings;
  if (!memd_side) {
    for (int p = 0; p < pairs; ++p) {
      rings.push_back(FutexRing::Create(frame_bytes));
      if (rings.back() == nullptr) {
        std::perror("futex ring");
        std::exit(1);
      }
    }
  }
  std::vector<pid_t> children;
  for (int p = 0; p < pairs; ++p) {
    std::string channel = "handoff-" + std::to_string(getpid()) + "-" + std::to_string(run_id) + "-" +
                          std::to_string(p);
    for (bool consumer : {true, false}) {
      pid_t pid = fork();
      if (pid == 0) {
        RoleResult& r = consumer ? control->consumers[p] : control->producers[p];
        uint32_t* mine = samples + kMaxSamples * p;
        if (memd_side && consumer) memd::bench::MemdConsumer(*control, channel, frame_bytes, r, mine);
        if (memd_side && !consumer) memd::bench::MemdProducer(*control, channel, frame_bytes, r);
        if (!memd_side && consumer) memd::bench::RingConsumer(*control, *rings[p], r, mine);
        if (!memd_side && !consumer) memd::bench::RingProducer(*control, *rings[p], r);
        // Out at once: a memd session ends with the process (memd_uninit's
        // goodbye is not part of the run).
        _exit(r.error == 0 ? 0 : 10 + r.error);
      }
      children.push_back(pid);
    }
  }
  auto fail = [&](const std::string& why) {
    std::cerr << "handoff: " << why << "\n";
    for (pid_t c : children) kill(c, SIGKILL);
    std::exit(1);
  };
  auto wait_word = [&](std::atomic<uint32_t>& word, uint32_t target, double timeout_s) {
    uint64_t deadline = MonotonicNs() + static_cast<uint64_t>(timeout_s * 1e9);
    while (true) {
      uint32_t now = word.load();
      if (now >= target) return;
      if (MonotonicNs() > deadline) fail("timed out waiting for the roles");
      for (pid_t c : children) {
        int status;
        if (waitpid(c, &status, WNOHANG) == c && status != 0) {
          fail("a role failed: exit status " + std::to_string(WEXITSTATUS(status)) +
               " (10 + handoff_roles.h's RoleError)");
        }
      }
      memd::bench::WaitWord(&word, now, 50);
    }
  };
  wait_word(control->ready, 2 * pairs, 120);
  double daemon0 = ProcessCpuNs(daemon);
  control->go_ns = MonotonicNs();
  control->go.store(1);
  memd::bench::WakeWord(&control->go);
  usleep(static_cast<useconds_t>(seconds * 1e6));
  control->stop.store(1);
  wait_word(control->done, 2 * pairs, 120);
  double daemon_ns = daemon > 0 ? ProcessCpuNs(daemon) - daemon0 : -1;
  for (pid_t c : children) waitpid(c, nullptr, 0);

  uint64_t frames = 0, last = control->go_ns;
  double producer_ns = 0, consumer_ns = 0;
  std::vector<uint32_t> latency;
  for (int p = 0; p < pairs; ++p) {
    const RoleResult& pr = control->producers[p];
    const RoleResult& cr = control->consumers[p];
    for (const RoleResult* r : {&pr, &cr}) {
      if (r->error != 0) {
        fail(std::string(memd_side ? "memd" : "floor") + " pair " + std::to_string(p) + ": error " +
             std::to_string(r->error) + " (errno " + std::to_string(r->error_errno) + ")");
      }
    }
    frames += cr.frames;
    last = std::max(last, cr.last_ns);
    producer_ns += static_cast<double>(pr.cpu_ns);
    consumer_ns += static_cast<double>(cr.cpu_ns);
    latency.insert(latency.end(), samples + kMaxSamples * p, samples + kMaxSamples * p + cr.samples);
  }
  uint64_t go_ns = control->go_ns;
  for (FutexRing* ring : rings) delete ring;
  munmap(samples, sizeof(uint32_t) * kMaxSamples * pairs);
  munmap(control, sizeof(Control));
  if (frames == 0) fail("no frame went through");
  double per_frame = 1e3 * static_cast<double>(frames);  // ns -> us per frame
  nlohmann::ordered_json run;
  run["frames"] = frames;
  run["frames_per_s"] = static_cast<double>(frames) / (static_cast<double>(last - go_ns) / 1e9);
  run["cpu_us_per_frame"] = {
      {"producer", producer_ns / per_frame},
      {"consumer", consumer_ns / per_frame},
      {"daemon", daemon_ns < 0 ? nlohmann::ordered_json() : nlohmann::ordered_json(daemon_ns / per_frame)},
      {"total", (producer_ns + consumer_ns + std::max(daemon_ns, 0.0)) / per_frame}};
  run["latency_us"] = {{"p50", Percentile(latency, 0.50) / 1e3}, {"p99", Percentile(latency, 0.99) / 1e3}};
  return run;
}

double Median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  size_t n = v.size();
  return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

// The median of each figure over the runs (each figure on its own).
nlohmann::ordered_json Medians(const std::vector<nlohmann::ordered_json>& runs) {
  auto median_of = [&](auto get) {
    std::vector<double> v;
    for (const auto& r : runs) v.push_back(get(r));
    return Median(v);
  };
  nlohmann::ordered_json out;
  out["frames_per_s"] = median_of([](const auto& r) { return r["frames_per_s"].template get<double>(); });
  out["cpu_us_per_frame"] = nlohmann::ordered_json::object();
  for (const char* who : {"producer", "consumer", "daemon", "total"}) {
    if (runs[0]["cpu_us_per_frame"][who].is_null()) {
      out["cpu_us_per_frame"][who] = nullptr;
      continue;
    }
    out["cpu_us_per_frame"][who] =
        median_of([&](const auto& r) { return r["cpu_us_per_frame"][who].template get<double>(); });
  }
  out["latency_us"] = {
      {"p50", median_of([](const auto& r) { return r["latency_us"]["p50"].template get<double>(); })},
      {"p99", median_of([](const auto& r) { return r["latency_us"]["p99"].template get<double>(); })}};
  out["runs"] = runs;
  return out;
}

pid_t StartDaemon(const std::string& binary, std::string* address, std::string* dir) {
  char tmpl[] = "/tmp/memd-handoff-XXXXXX";
  if (mkdtemp(tmpl) == nullptr) return -1;
  *dir = tmpl;
  *address = "unix://" + *dir + "/memd.sock";
  std::string instance = "memd-handoff-" + std::to_string(getpid());
  std::string state = *dir + "/state";
  pid_t pid = fork();
  if (pid == 0) {
    execl(binary.c_str(), binary.c_str(), "--listen", address->c_str(), "--instance", instance.c_str(),
          "--state-dir", state.c_str(), "--pool", "default=1GiB", "--log-level", "error", nullptr);
    std::perror("exec memd");
    _exit(127);
  }
  return pid;
}

}  // namespace

int main(int argc, char** argv) {
  Options o;
  if (argc % 2 == 0) {
    std::cerr << "flag " << argv[argc - 1] << " has no value\n";
    return 2;
  }
  for (int i = 1; i + 1 < argc; i += 2) {
    std::string flag = argv[i], value = argv[i + 1];
    if (flag == "--seconds") o.seconds = std::stod(value);
    else if (flag == "--reps") o.reps = std::stoi(value);
    else if (flag == "--memd") o.memd = value;
    else if (flag == "--sizes") {
      o.sizes.clear();
      for (long s : ParseList(value)) o.sizes.push_back(static_cast<size_t>(s));
    } else if (flag == "--pairs") {
      o.pairs.clear();
      for (long p : ParseList(value)) o.pairs.push_back(static_cast<int>(p));
    } else {
      std::cerr << "unknown flag " << flag << "\n";
      return 2;
    }
  }
  for (int p : o.pairs) {
    if (p < 1 || p > kMaxPairs) {
      std::cerr << "pairs " << p << " is outside 1.." << kMaxPairs << "\n";
      return 2;
    }
  }
  for (size_t s : o.sizes) {
    if (s < 16) {
      std::cerr << "frame size " << s << " B is below the 16 B stamp\n";
      return 2;
    }
  }
  pid_t daemon = -1, own_daemon = -1;
  std::string address, dir;
  if (const char* env = std::getenv("MEMD_ADDRESS"); env != nullptr && *env != '\0') {
    if (const char* pid = std::getenv("MEMD_PID")) daemon = static_cast<pid_t>(std::atoi(pid));
  } else {
    own_daemon = daemon = StartDaemon(o.memd, &address, &dir);
    if (daemon < 0) return 1;
    setenv("MEMD_ADDRESS", address.c_str(), 1);
  }
  // Pool pages mapped at connect (the ring's are faulted in before fork).
  setenv("MEMD_POPULATE", "1", 1);

  nlohmann::ordered_json out;
  out["row"] = "L";
  out["seconds"] = o.seconds;
  out["reps"] = o.reps;
  out["depth"] = memd::bench::kRingSlots;
  out["load_before"] = LoadAverage();
  out["cases"] = nlohmann::ordered_json::array();
  int run_id = 0;
  for (size_t size : o.sizes) {
    for (int pairs : o.pairs) {
      std::vector<nlohmann::ordered_json> floor_runs, memd_runs;
      for (int rep = 0; rep < o.reps; ++rep) {
        floor_runs.push_back(Run(false, size, pairs, o.seconds, -1, ++run_id));
        memd_runs.push_back(Run(true, size, pairs, o.seconds, daemon, ++run_id));
        std::cerr << "L " << size << " B x" << pairs << " rep " << rep << ": floor "
                  << floor_runs.back()["frames_per_s"] << " frames/s, memd " << memd_runs.back()["frames_per_s"]
                  << " frames/s (load " << LoadAverage() << ")\n";
      }
      nlohmann::ordered_json c;
      c["frame_bytes"] = size;
      c["pairs"] = pairs;
      c["floor"] = Medians(floor_runs);
      c["memd"] = Medians(memd_runs);
      const auto &f = c["floor"], &m = c["memd"];
      c["ratios"] = {
          {"frames_per_s", m["frames_per_s"].get<double>() / f["frames_per_s"].get<double>()},
          {"cpu_per_frame", m["cpu_us_per_frame"]["total"].get<double>() / f["cpu_us_per_frame"]["total"].get<double>()},
          {"p50", m["latency_us"]["p50"].get<double>() / f["latency_us"]["p50"].get<double>()},
          {"p99", m["latency_us"]["p99"].get<double>() / f["latency_us"]["p99"].get<double>()}};
      out["cases"].push_back(c);
    }
  }
  out["load_after"] = LoadAverage();
  out["daemon_cpu_counted"] = daemon > 0;
  if (own_daemon > 0) {
    kill(own_daemon, SIGTERM);
    waitpid(own_daemon, nullptr, 0);
    std::string rm = "rm -rf '" + dir + "'";
    if (std::system(rm.c_str()) != 0) std::cerr << "could not remove " << dir << "\n";
  }
  std::cout << out.dump(2) << std::endl;
  return 0;
}
