#include "memd/shared/limits.h"

#include "absl/strings/str_format.h"

namespace memd::limits {

absl::Status CheckChannelMessage(std::string_view channel, size_t handles, size_t metadata_bytes) {
  if (handles > kMaxChannelHandles) {
    return absl::InvalidArgumentError(
        absl::StrFormat("send to channel '%s' carries %u handles; the limit is %u", channel,
                        handles, kMaxChannelHandles));
  }
  if (metadata_bytes > kMaxChannelMetadataBytes) {
    return absl::InvalidArgumentError(
        absl::StrFormat("send to channel '%s' carries %u bytes of metadata; the limit is %u",
                        channel, metadata_bytes, kMaxChannelMetadataBytes));
  }
  return absl::OkStatus();
}

}  // namespace memd::limits
