// libFuzzer target: everything that parses text from users: sizes, addresses,
// names, the daemon's whole flag parser (argv split on NUL bytes), and the
// same bytes as a TOML configuration file (--config).
#include <cstdint>
#include <string>
#include <vector>

#include <unistd.h>

#include <fstream>

#include "config/config_file.h"
#include "config/options.h"
#include "memd/shared/address.h"
#include "memd/shared/names.h"
#include "memd/shared/size.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string text(reinterpret_cast<const char*>(data), size);
  if (auto parsed = memd::ParseSize(text); parsed.ok()) {
    // A size that parses must format without crashing.
    (void)memd::FormatSize(*parsed);
  }
  (void)memd::ParseAddress(text);
  (void)memd::ValidateName("pool name", text);

  // argv for the daemon's flag parser: pieces separated by NUL.
  std::vector<std::string> args = {"memd"};
  size_t start = 0;
  for (size_t i = 0; i <= text.size() && args.size() < 16; ++i) {
    if (i == text.size() || text[i] == '\0') {
      args.push_back(text.substr(start, i - start));
      start = i + 1;
    }
  }
  std::vector<char*> argv;
  for (auto& a : args) argv.push_back(a.data());
  argv.push_back(nullptr);
  memd::DaemonOptions options;
  // CLI11 prints usage errors; keep the fuzzer's output readable.
  int saved_out = dup(1), saved_err = dup(2);
  freopen("/dev/null", "w", stdout);
  freopen("/dev/null", "w", stderr);
  std::optional<int> exit_code = memd::ParseFlags(static_cast<int>(args.size()), argv.data(), &options);
  fflush(stdout);
  fflush(stderr);
  dup2(saved_out, 1);
  dup2(saved_err, 2);
  close(saved_out);
  close(saved_err);
  if (!exit_code && !memd::ValidateOptions(options).ok()) __builtin_trap();  // accepted but invalid

  // The bytes as a config file: a file that loads must give options that
  // validate, or a clear error.
  static const std::string path = "/tmp/memd-parse-fuzz-" + std::to_string(getpid()) + ".toml";
  std::ofstream(path, std::ios::binary | std::ios::trunc) << text;
  if (memd::LoadConfigFile(path).ok()) {
    absl::StatusOr<memd::ParsedArgs> parsed = memd::ParseArgs({"memd", "--config", path});
    if (parsed.ok() && !memd::ValidateOptions(parsed->options).ok()) __builtin_trap();
  }
  return 0;
}
