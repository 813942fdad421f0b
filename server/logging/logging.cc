#include "logging/logging.h"

#include <spdlog/pattern_formatter.h>
#include <spdlog/spdlog.h>

#include <sys/stat.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <memory>

#include "absl/strings/str_format.h"

namespace memd {
namespace {

// %* in a pattern: the message, escaped for a JSON string.
class JsonMessage : public spdlog::custom_flag_formatter {
 public:
  void format(const spdlog::details::log_msg& msg, const std::tm&,
              spdlog::memory_buf_t& dest) override {
    for (char c : msg.payload) {
      switch (c) {
        case '"': dest.append(std::string_view("\\\"")); break;
        case '\\': dest.append(std::string_view("\\\\")); break;
        case '\n': dest.append(std::string_view("\\n")); break;
        case '\r': dest.append(std::string_view("\\r")); break;
        case '\t': dest.append(std::string_view("\\t")); break;
        default:
          if (static_cast<unsigned char>(c) < 0x20) {
            std::string escaped = absl::StrFormat("\\u%04x", static_cast<unsigned char>(c));
            dest.append(std::string_view(escaped));
          } else {
            dest.push_back(c);
          }
      }
    }
  }
  std::unique_ptr<custom_flag_formatter> clone() const override {
    return std::make_unique<JsonMessage>();
  }
};

// %J in a pattern: the line's syslog priority as sd-daemon's "<N>" prefix,
// which journald turns into the entry's PRIORITY (sd-daemon(3)).
class JournalPriority : public spdlog::custom_flag_formatter {
 public:
  void format(const spdlog::details::log_msg& msg, const std::tm&,
              spdlog::memory_buf_t& dest) override {
    // trace, debug, info, warn, err, critical, off
    static constexpr std::string_view kPrefix[] = {"<7>", "<7>", "<6>", "<4>",
                                                   "<3>", "<2>", "<6>"};
    dest.append(kPrefix[static_cast<int>(msg.level)]);
  }
  std::unique_ptr<custom_flag_formatter> clone() const override {
    return std::make_unique<JournalPriority>();
  }
};

}  // namespace

bool StdoutIsJournal() {
  // systemd sets $JOURNAL_STREAM to "<device>:<inode>" of the stream it
  // connected stdout/stderr to; a redirected stdout no longer matches.
  const char* env = std::getenv("JOURNAL_STREAM");
  struct stat st {};
  if (env == nullptr || ::fstat(STDOUT_FILENO, &st) != 0) return false;
  unsigned long long dev = 0, ino = 0;
  return std::sscanf(env, "%llu:%llu", &dev, &ino) == 2 && dev == st.st_dev && ino == st.st_ino;
}

absl::Status ConfigureLogging(const std::string& level, const std::string& format) {
  spdlog::level::level_enum parsed = spdlog::level::from_str(level);
  if (parsed == spdlog::level::off && level != "off") {
    return absl::InvalidArgumentError(absl::StrFormat(
        "log level '%s' is not one of trace, debug, info, warn, error, critical, off", level));
  }
  spdlog::set_level(parsed);
  // Under journald each line starts with its priority and leaves the time
  // to the journal; elsewhere text lines carry spdlog's full prefix.
  const bool journal = StdoutIsJournal();
  auto formatter = std::make_unique<spdlog::pattern_formatter>();
  formatter->add_flag<JsonMessage>('*');
  formatter->add_flag<JournalPriority>('J');
  if (format == "text") {
    formatter->set_pattern(journal ? "%J[%l] %v" : "%+");
  } else if (format == "json") {
    formatter->set_pattern(
        std::string(journal ? "%J" : "") +
        R"({"time":"%Y-%m-%dT%H:%M:%S.%e%z","level":"%l","thread":%t,"msg":"%*"})");
  } else {
    return absl::InvalidArgumentError(
        absl::StrFormat("log format '%s' is not one of text, json", format));
  }
  spdlog::set_formatter(std::move(formatter));
  return absl::OkStatus();
}

bool LogLimiter::Allow(const std::string& key, uint64_t* suppressed) {
  auto now = std::chrono::steady_clock::now();
  MutexLock lock(&mu_);
  Bucket& b = buckets_[key];
  if (now - b.window_start >= window_) {
    b.window_start = now;
    b.sent = 0;
  }
  if (b.sent >= burst_) {
    ++b.dropped;
    return false;
  }
  ++b.sent;
  *suppressed = b.dropped;
  b.dropped = 0;
  return true;
}

LogLimiter& ClientWarnings() {
  static LogLimiter* limiter = new LogLimiter(10, std::chrono::seconds(10));
  return *limiter;
}

std::string SuppressedNote(uint64_t n) {
  return n == 0 ? "" : absl::StrFormat(" (%u similar messages suppressed)", n);
}

}  // namespace memd
