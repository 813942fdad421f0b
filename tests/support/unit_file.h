// Reading systemd unit files and other small text files in tests: a unit's
// settings are `Key=value` lines; the last one of a key wins, as in systemd.
#ifndef MEMD_TESTS_SUPPORT_UNIT_FILE_H_
#define MEMD_TESTS_SUPPORT_UNIT_FILE_H_

#include <string>
#include <vector>

namespace memd::testing {

// The whole file; empty when it cannot be read.
std::string ReadText(const std::string& path);

// The value of the last `key=` line of `unit`; empty when there is none.
std::string UnitSetting(const std::string& unit, const std::string& key);

// `text` split at whitespace.
std::vector<std::string> Words(const std::string& text);

}  // namespace memd::testing

#endif  // MEMD_TESTS_SUPPORT_UNIT_FILE_H_
