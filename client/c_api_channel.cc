// The channel half of the C API (memd/memd.h: memd_channel_*), on the C
// API's session (c_api_state.h). What a send moves or a receive brings is
// recorded by the session itself (its Holdings), so memd_free and
// memd_handle see it without a table here.
#include <algorithm>
#include <cerrno>
#include <cstring>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "absl/strings/str_format.h"
#include "arena.h"
#include "locate.h"
#include "c_api_state.h"
#include "memd/client.h"
#include "memd/memd.h"

namespace {

using memd::Client;
using memd::capi::Acquire;
using memd::capi::ErrnoOf;
using memd::capi::SetError;

int SendErrno(const absl::Status& status) {
  return status.code() == absl::StatusCode::kResourceExhausted ? -EAGAIN : ErrnoOf(status);
}

// Collects the outstanding memd_channel_post, if any: 0, or its error.
int CollectPosted(Client& client) {
  absl::Status collected = client.CollectPosted();
  if (!collected.ok()) {
    SetError(std::string(collected.message()));
    return SendErrno(collected);
  }
  return 0;
}

int SendOrPost(const char* fn, const char* channel, void* const* ptrs, size_t count,
               const void* metadata, size_t metadata_size, int timeout_ms, bool post) {
  if (channel == nullptr || (ptrs == nullptr && count > 0) ||
      (metadata == nullptr && metadata_size > 0)) {
    SetError(absl::StrFormat("%s: channel, ptrs and metadata must not be NULL", fn));
    return -EINVAL;
  }
  std::shared_ptr<Client> client = Acquire();
  if (!client) return -ECONNREFUSED;
  if (int rc = CollectPosted(*client); rc != 0) return rc;
  // An arena block without a handle is registered by the send itself (one
  // round trip for both); a post registers it first (its answer comes
  // later, after the caller went on).
  memd::ArenaSend send;
  for (size_t i = 0; i < count; ++i) {
    memd::Located located = memd::Locate(*client, ptrs[i]);
    absl::Status added = located.why;
    if (located.kind == memd::Located::Kind::kArenaBlock) {
      added = memd::ArenaOf(*client)->AddToSend(located.block, &send, post);
    } else if (located.kind == memd::Located::Kind::kBuffer) {
      send.handles.push_back(located.buffer.handle);
      added = absl::OkStatus();
    }
    if (!added.ok()) {
      SetError(memd::capi::NotOurs(ptrs[i], fn));
      return -EINVAL;
    }
  }
  std::string_view meta(static_cast<const char*>(metadata), metadata == nullptr ? 0 : metadata_size);
  absl::Status sent =
      post ? client->Post(channel, send.handles, meta, timeout_ms)
      : send.ranges.empty()
          ? client->Send(channel, send.handles, meta, timeout_ms)
          : memd::SendRegistering(*client, channel, send, meta, timeout_ms);
  if (!sent.ok()) {
    SetError(std::string(sent.message()));
    return SendErrno(sent);
  }
  return 0;
}

}  // namespace

extern "C" {

int memd_channel_send(const char* channel, void* const* ptrs, size_t count, const void* metadata,
                      size_t metadata_size, int timeout_ms) {
  return SendOrPost("memd_channel_send", channel, ptrs, count, metadata, metadata_size,
                    timeout_ms, /*post=*/false);
}

int memd_channel_post(const char* channel, void* const* ptrs, size_t count, const void* metadata,
                      size_t metadata_size, int timeout_ms) {
  return SendOrPost("memd_channel_post", channel, ptrs, count, metadata, metadata_size,
                    timeout_ms, /*post=*/true);
}

int memd_channel_collect(void) {
  std::shared_ptr<Client> client = Acquire();
  if (!client) return -ECONNREFUSED;
  return CollectPosted(*client);
}

int memd_channel_receive(const char* channel, void** ptrs, size_t* sizes, size_t max_count,
                         size_t* count, void* metadata, size_t metadata_capacity,
                         size_t* metadata_size, int timeout_ms) {
  if (channel == nullptr || ptrs == nullptr || count == nullptr ||
      (metadata == nullptr && metadata_capacity > 0)) {
    SetError("memd_channel_receive: channel, ptrs and count must not be NULL");
    return -EINVAL;
  }
  std::shared_ptr<Client> client = Acquire();
  if (!client) return -ECONNREFUSED;
  absl::StatusOr<memd::ChannelMessage> message = client->Receive(channel, timeout_ms);
  if (!message.ok()) {
    SetError(std::string(message.status().message()));
    return ErrnoOf(message.status());
  }
  size_t n = std::min(max_count, message->buffers.size());
  for (size_t i = 0; i < n; ++i) {
    ptrs[i] = client->Pointer(message->buffers[i].offset_bytes);
    if (sizes != nullptr) sizes[i] = message->buffers[i].size_bytes;
  }
  if (message->buffers.size() > max_count) {
    // The message is taken; the buffers that do not fit are released.
    for (size_t i = n; i < message->buffers.size(); ++i) {
      client->ReleaseRef(message->buffers[i].handle).IgnoreError();
    }
    SetError(absl::StrFormat(
        "memd_channel_receive: the message has %u buffers; max_count is %u (the rest were "
        "released)", message->buffers.size(), max_count));
  }
  *count = n;
  if (metadata_size != nullptr) *metadata_size = message->metadata.size();
  if (metadata != nullptr) {
    std::memcpy(metadata, message->metadata.data(), std::min(metadata_capacity, message->metadata.size()));
  }
  return message->buffers.size() > max_count ? -ENOSPC : 0;
}

}  // extern "C"
