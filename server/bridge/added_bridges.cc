#include "bridge/added_bridges.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "absl/strings/str_format.h"
#include "absl/strings/str_split.h"
#include "memd/shared/names.h"
#include "shm/private_file.h"

namespace memd::bridge {
namespace {

constexpr const char* kWhat = "runtime bridge list";

absl::Status Errno(const char* call, const std::string& path) {
  return absl::InternalError(
      absl::StrFormat("%s of %s '%s' failed: %s", call, kWhat, path, std::strerror(errno)));
}

}  // namespace

std::string AddedBridgesPath(const std::string& state_dir) {
  return state_dir + "/bridges.added";
}

absl::StatusOr<std::vector<BridgeSpec>> LoadAddedBridges(const std::string& state_dir) {
  std::string path = AddedBridgesPath(state_dir);
  uint64_t size = 0;
  absl::StatusOr<UniqueFd> fd = OpenPrivateFile(path, kWhat, &size);
  if (absl::IsNotFound(fd.status())) return std::vector<BridgeSpec>{};
  if (!fd.ok()) return fd.status();
  std::string text(size, '\0');
  for (size_t done = 0; done < text.size();) {
    ssize_t n = ::pread(fd->get(), text.data() + done, text.size() - done, done);
    if (n <= 0) return Errno("read", path);
    done += static_cast<size_t>(n);
  }
  std::vector<BridgeSpec> out;
  int line_number = 0;
  std::vector<std::string> lines = absl::StrSplit(text, '\n', absl::SkipEmpty());
  for (const std::string& line : lines) {
    ++line_number;
    std::vector<std::string> words = absl::StrSplit(line, ' ');
    auto bad = [&](const std::string& why) {
      return absl::InvalidArgumentError(absl::StrFormat(
          "%s '%s', line %d '%s': %s (remove the file to start without the bridges added at "
          "run time)", kWhat, path, line_number, line, why));
    };
    if (words.size() != 3) return bad("not POOL CHANNEL PEER");
    BridgeSpec spec{words[0], words[1], words[2]};
    for (auto [what, value] : {std::pair{"bridge pool", &spec.pool},
                               std::pair{"bridge channel", &spec.channel},
                               std::pair{"bridge peer", &spec.peer}}) {
      if (absl::Status s = ValidateName(what, *value); !s.ok()) return bad(std::string(s.message()));
    }
    out.push_back(std::move(spec));
  }
  return out;
}

absl::Status SaveAddedBridges(const std::string& state_dir,
                              const std::vector<BridgeSpec>& bridges) {
  std::string path = AddedBridgesPath(state_dir);
  std::string next = path + ".new";  // a kill -9 may have left one: ours, replace it
  std::string text;
  for (const BridgeSpec& b : bridges) text += b.pool + " " + b.channel + " " + b.peer + "\n";
  if (::unlink(next.c_str()) != 0 && errno != ENOENT) return Errno("unlink", next);
  absl::StatusOr<UniqueFd> fd = CreatePrivateFile(next, kWhat);
  if (!fd.ok()) return fd.status();
  for (size_t done = 0; done < text.size();) {
    ssize_t n = ::write(fd->get(), text.data() + done, text.size() - done);
    if (n <= 0) return Errno("write", next);
    done += static_cast<size_t>(n);
  }
  if (::fsync(fd->get()) != 0) return Errno("fsync", next);
  if (::rename(next.c_str(), path.c_str()) != 0) return Errno("rename", path);
  // The rename itself survives a machine crash once the directory is synced.
  UniqueFd dir(::open(state_dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (dir.valid()) ::fsync(dir.get());
  return absl::OkStatus();
}

}  // namespace memd::bridge
