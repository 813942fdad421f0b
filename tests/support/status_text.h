// Test helpers: whether an error's message or a text says something (the one
// copy the suites share; they compare texts the daemon's code writes).
#ifndef MEMD_TESTS_SUPPORT_STATUS_TEXT_H_
#define MEMD_TESTS_SUPPORT_STATUS_TEXT_H_

#include "absl/status/status.h"
#include "absl/strings/string_view.h"

namespace memd::testing_support {

inline bool MessageHas(const absl::Status& status, absl::string_view part) {
  return status.message().find(part) != absl::string_view::npos;
}

// Whether a text (a log, a command's output) says something.
inline bool Has(absl::string_view text, absl::string_view part) {
  return text.find(part) != absl::string_view::npos;
}

// gRPC's status codes as the raw session wire carries them
// (SessionResponse.status_code), for the suites that speak it: one copy, so
// two suites in one unity batch do not define them twice.
namespace wire_code {
inline constexpr int kInvalidArgument = 3, kNotFound = 5, kResourceExhausted = 8,
                     kFailedPrecondition = 9;
}  // namespace wire_code

}  // namespace memd::testing_support

#endif  // MEMD_TESTS_SUPPORT_STATUS_TEXT_H_
