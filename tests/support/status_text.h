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

}  // namespace memd::testing_support

#endif  // MEMD_TESTS_SUPPORT_STATUS_TEXT_H_
