// memd.toml: the configuration file (--config FILE). It holds the same
// settings as the flags, as text the flag parser takes, so that flags given
// on the command line override the file key by key (see ParseArgs).
//
//   instance = "memd"            listen = ["unix:///run/memd/memd.sock"]
//   [[pool]]  name = "video"  size = "1GiB"  group = "media"  mode = "0660"
//
// Every key is in deploy/memd.toml with a comment. Stateless; thread-compatible.
#ifndef MEMD_SERVER_CONFIG_CONFIG_FILE_H_
#define MEMD_SERVER_CONFIG_CONFIG_FILE_H_

#include <map>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "config/options.h"

namespace memd {

struct FileSettings {
  // Top-level scalar keys ("log_level", "socket_mode", "prefault", ...) as
  // flag text: "info", "0660" (modes in octal), "true".
  std::map<std::string, std::string> scalars;
  std::optional<std::vector<std::string>> listen;
  // One "NAME=SIZE,key=value..." per [[pool]] table, as --pool takes it.
  std::optional<std::vector<std::string>> pools;
  // One "NAME=ADDRESS" per [[peer]], one "POOL/CHANNEL=PEER" per [[bridge]]
  // (as --peer and --bridge take them).
  std::optional<std::vector<std::string>> peers, bridges;
};

// INVALID_ARGUMENT naming the file, the key and what is allowed for syntax
// errors, unknown keys and values of the wrong type.
absl::StatusOr<FileSettings> LoadConfigFile(const std::string& path);

// The effective configuration as a memd.toml (what --check-config prints).
std::string FormatConfig(const DaemonOptions& options);

}  // namespace memd

#endif  // MEMD_SERVER_CONFIG_CONFIG_FILE_H_
