// `memctl trace` (issue 27): starts a recording of buffers' lives in the
// daemon (Admin StartTrace), waits for its time or Ctrl-C, reads it page by
// page (ReadTrace, stopping it first) and writes the Trace Event Format
// document (trace_format.cc) that Perfetto and chrome://tracing open.
#include <fcntl.h>
#include <poll.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cmath>
#include <csignal>
#include <cstring>
#include <fstream>
#include <iostream>

#include <CLI/CLI.hpp>

#include "memctl/admin_call.h"
#include "memctl/memctl.h"
#include "memd/shared/limits.h"

namespace memd {
namespace {

// Written by the SIGINT/SIGTERM handler (any of gRPC's threads may run it),
// read by the main thread's poll: a Ctrl-C ends the recording early.
int stop_pipe[2] = {-1, -1};

void OnStopSignal(int) {
  char byte = 1;
  [[maybe_unused]] ssize_t n = ::write(stop_pipe[1], &byte, 1);
}

// While it lives, SIGINT and SIGTERM end Wait instead of memctl (installed
// before memctl says it records, so a Ctrl-C right after is never lost);
// their actions are as before afterwards. One at a time.
class StopSignals {
 public:
  StopSignals() {
    if (::pipe2(stop_pipe, O_CLOEXEC | O_NONBLOCK) != 0) return;
    struct sigaction action {};
    action.sa_handler = OnStopSignal;
    ::sigemptyset(&action.sa_mask);
    ::sigaction(SIGINT, &action, &old_int_);
    ::sigaction(SIGTERM, &action, &old_term_);
    installed_ = true;
  }
  ~StopSignals() {
    if (!installed_) return;
    ::sigaction(SIGINT, &old_int_, nullptr);
    ::sigaction(SIGTERM, &old_term_, nullptr);
    ::close(stop_pipe[0]);
    ::close(stop_pipe[1]);
  }
  StopSignals(const StopSignals&) = delete;
  StopSignals& operator=(const StopSignals&) = delete;

  // Waits `seconds` or until one of the signals, whichever comes first.
  void Wait(double seconds) {
    auto end = std::chrono::steady_clock::now() + std::chrono::duration<double>(seconds);
    while (true) {
      auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
          end - std::chrono::steady_clock::now());
      if (left.count() <= 0) return;
      const int wait_ms = static_cast<int>(std::min<int64_t>(left.count(), 1000));
      if (!installed_) {
        ::usleep(static_cast<useconds_t>(wait_ms) * 1000);
        continue;
      }
      pollfd fd{stop_pipe[0], POLLIN, 0};
      int ready = ::poll(&fd, 1, wait_ms);
      if (ready > 0 || (ready < 0 && errno != EINTR)) return;
    }
  }

 private:
  bool installed_ = false;
  struct sigaction old_int_ {}, old_term_ {};
};

}  // namespace

CLI::App* AddTraceCommand(CLI::App& app, TraceArgs* args) {
  CLI::App* trace = app.add_subcommand(
      "trace",
      "Record each buffer's life (allocate, send, receive, release: who, when, which channel) "
      "and write it for Perfetto or chrome://tracing (admin only; docs/operations.md)");
  trace->add_option("--seconds", args->seconds,
                    "Record for this long at most; Ctrl-C stops earlier (up to 600)")
      ->capture_default_str();
  trace->add_option("--max-events", args->max_events,
                    "Keep at most this many events (0: the daemon's default 100000; "
                    "up to 1000000); the recording stops when full");
  trace->add_option("--pool", args->pool, "Only this pool");
  trace->add_option("--channel", args->channel, "Only buffers that go through this channel");
  trace->add_option("-o,--output", args->path, "Trace Event Format JSON file to write ('-': stdout)")
      ->required();
  return trace;
}

int TraceCommand(Connection& conn, const TraceArgs& args) {
  const double ms = std::round(args.seconds * 1000);
  if (!(ms >= 1 && ms <= limits::kMaxTraceDurationMs)) {
    std::cerr << "memctl: trace --seconds " << args.seconds << " must be from 0.001 to "
              << limits::kMaxTraceDurationMs / 1000 << "\n";
    return kExitUsage;
  }
  // Open the output first: a path that cannot be written fails before the
  // daemon records anything.
  std::ofstream file;
  if (args.path != "-") {
    file.open(args.path, std::ios::trunc);
    if (!file) {
      std::cerr << "memctl: cannot write the trace to '" << args.path << "': "
                << std::strerror(errno) << "\n";
      return kExitUsage;
    }
  }
  std::ostream& out = args.path == "-" ? std::cout : file;
  std::ostream& say = args.path == "-" ? std::cerr : std::cout;

  v1::StartTraceRequest start;
  start.set_duration_ms(static_cast<uint32_t>(ms));
  start.set_max_events(args.max_events);
  start.set_pool(args.pool);
  start.set_channel(args.channel);
  StopSignals signals;
  v1::StartTraceResponse started;
  if (int code = Call(conn, &v1::Admin::Stub::StartTrace, start, &started); code != kExitOk) {
    return code;
  }
  say << "tracing " << (args.pool.empty() ? "every pool" : "pool '" + args.pool + "'")
      << (args.channel.empty() ? "" : ", channel '" + args.channel + "'") << " for "
      << args.seconds << " s (at most " << started.max_events()
      << " events); Ctrl-C stops earlier" << std::endl;
  signals.Wait(ms / 1000);

  v1::ReadTraceResponse all;
  v1::ReadTraceRequest read;
  read.set_trace_id(started.trace_id());
  read.set_stop(true);
  do {
    v1::ReadTraceResponse page;
    if (int code = Call(conn, &v1::Admin::Stub::ReadTrace, read, &page); code != kExitOk) {
      return code;
    }
    // The events gather in `all`; the rest (sessions, channels, times) is
    // the last page's, which knows every event before it.
    for (v1::TraceEvent& e : *page.mutable_events()) *all.add_events() = std::move(e);
    page.clear_events();
    page.mutable_events()->Swap(all.mutable_events());
    all = std::move(page);
    read.set_page_token(all.next_page_token());
  } while (read.page_token() != 0);

  out << TraceDocument(all, args.channel).dump() << "\n";
  out.flush();
  if (!out) {
    std::cerr << "memctl: writing the trace to '" << args.path << "' failed\n";
    return kExitDaemonError;
  }
  say << "wrote " << all.events_size() << " events of " << all.sessions_size() << " sessions ("
      << all.duration_ns() / 1'000'000 << " ms) to " << (args.path == "-" ? "stdout" : args.path);
  if (all.lost_events() > 0) {
    say << "; the recording filled up at " << all.events_size()
        << " events and stopped early (raise --max-events)";
  }
  say << "\nopen it in https://ui.perfetto.dev (Open trace file) or chrome://tracing (Load)"
      << std::endl;
  return kExitOk;
}

}  // namespace memd
