#include "memd_copy_cache.h"

#include <deque>
#include <mutex>

namespace memd::gst {
namespace {

// Tee branches run behind each other by a few buffers at most when their
// queues are short; 8 entries of 1080p NV12 keep 24 MiB of pool memory.
constexpr size_t kEntries = 8;

struct Entry {
  std::shared_ptr<Client> client;
  const GstBuffer* buffer;  // identity only: no ref held
  GstClockTime pts;
  uint64_t handle;  // one memd reference held
};

std::mutex& Mutex() {
  static auto* mu = new std::mutex;
  return *mu;
}

std::deque<Entry>& Entries() {
  static auto* entries = new std::deque<Entry>;
  return *entries;
}

void Release(Entry& e) { e.client->ReleaseRefsLater({e.handle}); }

}  // namespace

absl::StatusOr<CopyResult> CopyOf(const std::shared_ptr<Client>& client, GstBuffer* buffer) {
  std::lock_guard<std::mutex> lock(Mutex());
  std::deque<Entry>& entries = Entries();
  for (const Entry& e : entries) {
    if (e.buffer == buffer && e.pts == GST_BUFFER_PTS(buffer) && e.client == client) {
      return CopyResult{e.handle, false};
    }
  }
  gsize size = gst_buffer_get_size(buffer);
  absl::StatusOr<BufferRef> ref = client->AllocateRef(size, false);
  if (!ref.ok()) return ref.status();
  gst_buffer_extract(buffer, 0, client->Pointer(ref->offset_bytes), size);
  if (!GST_BUFFER_PTS_IS_VALID(buffer)) {
    // Not cached: the caller moves its one reference into the channel.
    return CopyResult{ref->handle, true, true};
  }
  entries.push_back(Entry{client, buffer, GST_BUFFER_PTS(buffer), ref->handle});
  if (entries.size() > kEntries) {
    Release(entries.front());
    entries.pop_front();
  }
  return CopyResult{ref->handle, true};
}

void DropCopies(const Client* client) {
  std::lock_guard<std::mutex> lock(Mutex());
  std::deque<Entry>& entries = Entries();
  for (auto it = entries.begin(); it != entries.end();) {
    if (it->client.get() == client) {
      Release(*it);
      it = entries.erase(it);
    } else {
      ++it;
    }
  }
}

}  // namespace memd::gst
