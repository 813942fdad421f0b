#include "memd/shared/duration.h"

#include <cmath>
#include <string>

#include "absl/strings/numbers.h"
#include "absl/strings/str_format.h"
#include "absl/strings/strip.h"

namespace memd {

absl::StatusOr<absl::Duration> ParseDuration(std::string_view what, std::string_view text,
                                             absl::Duration max) {
  // Debian's abseil has its own string_view: go through std::string.
  std::string s(absl::StripAsciiWhitespace(std::string(text)));
  absl::Duration value;
  double seconds = 0;
  bool parsed = false;
  if (absl::SimpleAtod(s, &seconds)) {
    parsed = std::isfinite(seconds);
    if (parsed) value = absl::Seconds(seconds);
  } else {
    parsed = absl::ParseDuration(s, &value);
  }
  if (!parsed || value < absl::ZeroDuration() || value > max || value == absl::InfiniteDuration()) {
    return absl::InvalidArgumentError(absl::StrFormat(
        "%s '%s' must be a duration from 0s to %s: seconds (30, 2.5) or with a unit (500ms, "
        "2s, 1m)",
        what, text, absl::FormatDuration(max)));
  }
  return value;
}

}  // namespace memd
