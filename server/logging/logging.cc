#include "logging/logging.h"

#include <spdlog/pattern_formatter.h>
#include <spdlog/spdlog.h>

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

}  // namespace

absl::Status ConfigureLogging(const std::string& level, const std::string& format) {
  spdlog::level::level_enum parsed = spdlog::level::from_str(level);
  if (parsed == spdlog::level::off && level != "off") {
    return absl::InvalidArgumentError(absl::StrFormat(
        "log level '%s' is not one of trace, debug, info, warn, error, critical, off", level));
  }
  spdlog::set_level(parsed);
  if (format == "text") {
    spdlog::set_pattern("%+");
  } else if (format == "json") {
    auto formatter = std::make_unique<spdlog::pattern_formatter>();
    formatter->add_flag<JsonMessage>('*').set_pattern(
        R"({"time":"%Y-%m-%dT%H:%M:%S.%e%z","level":"%l","thread":%t,"msg":"%*"})");
    spdlog::set_formatter(std::move(formatter));
  } else {
    return absl::InvalidArgumentError(
        absl::StrFormat("log format '%s' is not one of text, json", format));
  }
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
