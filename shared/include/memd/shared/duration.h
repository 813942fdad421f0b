// Parsing of durations people write in flags and environment variables
// ("30", "2.5", "500ms", "1m30s").
#ifndef MEMD_SHARED_DURATION_H_
#define MEMD_SHARED_DURATION_H_

#include <string_view>

#include "absl/status/statusor.h"
#include "absl/time/time.h"

namespace memd {

// Parses a duration: a plain number is seconds ("30", "2.5"); otherwise the
// text is an absl duration with units ("500ms", "2s", "1m30s"). `what` names
// the setting in the error (e.g. "MEMD_CONNECT_TIMEOUT"). Fails with
// INVALID_ARGUMENT naming the setting, the text and the range when the text is
// malformed, negative or above `max`.
absl::StatusOr<absl::Duration> ParseDuration(std::string_view what, std::string_view text,
                                             absl::Duration max);

}  // namespace memd

#endif  // MEMD_SHARED_DURATION_H_
