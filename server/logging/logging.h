// Daemon logging: spdlog configured as text (default) or JSON lines, and a
// limiter for warnings that clients can trigger at will (refused attaches,
// refused admin calls), so a hostile or broken client cannot flood the log.
#ifndef MEMD_SERVER_LOGGING_LOGGING_H_
#define MEMD_SERVER_LOGGING_LOGGING_H_

#include <chrono>
#include <cstdint>
#include <string>

#include "absl/container/flat_hash_map.h"
#include "absl/status/status.h"
#include "memd/shared/mutex.h"

namespace memd {

// Sets spdlog's level ("info", ...) and format: "text" or "json" (one JSON
// object per line: time, level, thread, msg). INVALID_ARGUMENT otherwise.
// Lines go to stdout; when stdout is systemd's journal stream
// ($JOURNAL_STREAM), each starts with its syslog priority ("<4>" for a
// warning), so journald keeps it.
absl::Status ConfigureLogging(const std::string& level, const std::string& format);

// Whether stdout is the journal stream systemd connected ($JOURNAL_STREAM).
bool StdoutIsJournal();

// Lets at most `burst` messages per key through per `window`; the first
// message after a suppressed stretch says how many were dropped. Thread-safe.
class LogLimiter {
 public:
  LogLimiter(int burst, std::chrono::steady_clock::duration window)
      : burst_(burst), window_(window) {}

  // True when a message of `key` may be logged now; `*suppressed` is then
  // the number dropped since the last one that went through.
  bool Allow(const std::string& key, uint64_t* suppressed);

 private:
  struct Bucket {
    std::chrono::steady_clock::time_point window_start;
    int sent = 0;
    uint64_t dropped = 0;
  };
  const int burst_;
  const std::chrono::steady_clock::duration window_;
  Mutex mu_;
  absl::flat_hash_map<std::string, Bucket> buckets_ ABSL_GUARDED_BY(mu_);
};

// The daemon's limiter for client-triggered warnings: 10 per key per 10 s.
LogLimiter& ClientWarnings();

// " (N similar messages suppressed)", or "" when n is 0.
std::string SuppressedNote(uint64_t n);

}  // namespace memd

#endif  // MEMD_SERVER_LOGGING_LOGGING_H_
