// The C API (memd/memd.h) on top of memd::Client, following libavutil 5.1's
// mem.c function by function.
//
// Process-wide state: one Client (the session) and a table from buffer offset
// to handle, so memd_free(ptr) finds what to release. `g_state.mu` guards both;
// daemon round trips run outside it on a shared_ptr copy of the Client.
#include <cerrno>
#include <climits>
#include <cstring>
#include <memory>
#include <string>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/strings/str_format.h"
#include "memd/shared/mutex.h"
#include "memd/client.h"
#include "memd/memd.h"
#include "memd/shared/address.h"
#include "memd/shared/names.h"

namespace {

using memd::Client;
using memd::Mutex;
using memd::MutexLock;

struct LocalRef {
  uint64_t handle = 0;
  uint64_t size_bytes = 0;
  uint32_t count = 0;  // references this process holds (allocate + retains)
};

struct State {
  Mutex mu;
  std::shared_ptr<Client> client ABSL_GUARDED_BY(mu);
  std::string address ABSL_GUARDED_BY(mu);
  std::string pool ABSL_GUARDED_BY(mu);
  absl::flat_hash_map<uint64_t, LocalRef> by_offset ABSL_GUARDED_BY(mu);
  // The buffers of the outstanding memd_channel_post: this process drops
  // its references to them once the send is collected and went through.
  std::vector<void*> posted ABSL_GUARDED_BY(mu);
};

State& g_state = *new State;  // never destroyed: usable from atexit handlers
std::atomic<size_t> g_max_alloc{INT_MAX};
thread_local std::string t_last_error;

void SetError(std::string message) { t_last_error = std::move(message); }

int ErrnoOf(const absl::Status& status) {
  switch (status.code()) {
    case absl::StatusCode::kUnavailable: return -ECONNREFUSED;
    case absl::StatusCode::kNotFound: return -ENOENT;
    case absl::StatusCode::kPermissionDenied: return -EACCES;
    case absl::StatusCode::kInvalidArgument: return -EINVAL;
    case absl::StatusCode::kResourceExhausted: return -ENOMEM;
    case absl::StatusCode::kDeadlineExceeded: return -ETIMEDOUT;
    case absl::StatusCode::kFailedPrecondition: return -EPERM;
    default: return -EIO;
  }
}

std::string ResolvedAddress(const char* address) {
  return address != nullptr && *address != '\0' ? address : memd::ClientDefaultAddress();
}

std::string ResolvedPool(const char* pool) {
  if (pool != nullptr && *pool != '\0') return pool;
  const char* env = std::getenv("MEMD_POOL");
  return env != nullptr && *env != '\0' ? env : std::string(memd::kDefaultPool);
}

int InitLocked(const std::string& address, const std::string& pool)
    ABSL_EXCLUSIVE_LOCKS_REQUIRED(g_state.mu) {
  if (g_state.client) {
    if (address == g_state.address && pool == g_state.pool) return 0;
    SetError(absl::StrFormat("memd is already initialized with %s pool '%s'; call memd_uninit "
                             "before attaching to %s pool '%s'",
                             g_state.address, g_state.pool, address, pool));
    return -EBUSY;
  }
  absl::StatusOr<std::unique_ptr<Client>> client =
      Client::Connect({.address = address, .pool = pool, .client_name = ""});
  if (!client.ok()) {
    SetError(std::string(client.status().message()));
    return ErrnoOf(client.status());
  }
  g_state.client = std::move(*client);
  g_state.address = address;
  g_state.pool = pool;
  return 0;
}

// The session, initialized from the environment on first use; null (with
// the reason in memd_last_error) when the daemon cannot be reached.
std::shared_ptr<Client> Acquire() {
  MutexLock lock(&g_state.mu);
  if (!g_state.client && InitLocked(ResolvedAddress(nullptr), ResolvedPool(nullptr)) != 0) {
    return nullptr;
  }
  return g_state.client;
}

size_t EffectiveMaxAlloc(const Client& client) {
  return std::min<size_t>(g_max_alloc.load(std::memory_order_relaxed), client.pool().max_alloc_bytes);
}

void* Track(Client& client, const memd::BufferRef& ref) {
  MutexLock lock(&g_state.mu);
  LocalRef& local = g_state.by_offset[ref.offset_bytes];
  local.handle = ref.handle;
  local.size_bytes = ref.size_bytes;
  ++local.count;
  return client.Pointer(ref.offset_bytes);
}

// Finds the buffer starting at ptr. REQUIRES: g_state.mu held.
LocalRef* FindLocked(const void* ptr, uint64_t* offset) ABSL_EXCLUSIVE_LOCKS_REQUIRED(g_state.mu) {
  if (!g_state.client || ptr == nullptr) return nullptr;
  auto p = reinterpret_cast<uintptr_t>(ptr);
  auto base = reinterpret_cast<uintptr_t>(g_state.client->base());
  if (p < base || p - base >= g_state.client->pool().size_bytes) return nullptr;
  *offset = p - base;
  auto it = g_state.by_offset.find(*offset);
  return it == g_state.by_offset.end() ? nullptr : &it->second;
}

std::string NotOurs(const void* ptr, const char* fn) {
  return absl::StrFormat("%s(%p): not a pointer memd returned (foreign, interior or already "
                         "freed); nothing was done",
                         fn, ptr);
}

// nmemb * size into *result, as av_size_mult; false (with the reason set)
// on overflow.
bool ArrayBytes(size_t nmemb, size_t size, size_t* result) {
  if (memd_size_mult(nmemb, size, result) == 0) return true;
  SetError(absl::StrFormat("array of %u x %u bytes overflows size_t", nmemb, size));
  return false;
}

void* Allocate(size_t size, bool zero) {
  std::shared_ptr<Client> client = Acquire();
  if (!client) return nullptr;
  size_t max = EffectiveMaxAlloc(*client);
  if (size > max) {
    SetError(absl::StrFormat("allocation of %u bytes exceeds max_alloc %u bytes", size, max));
    return nullptr;
  }
  absl::StatusOr<memd::BufferRef> ref = client->AllocateRef(size, zero);
  if (!ref.ok()) {
    SetError(std::string(ref.status().message()));
    return nullptr;
  }
  return Track(*client, *ref);
}

void FastMalloc(void* ptr, unsigned int* size, size_t min_size, bool zero) {
  void* val;
  std::memcpy(&val, ptr, sizeof(val));
  if (min_size <= *size) return;
  std::shared_ptr<Client> client = Acquire();
  size_t max_size = client ? std::min<size_t>(EffectiveMaxAlloc(*client), UINT_MAX) : 0;
  if (min_size > max_size) {
    memd_freep(ptr);
    *size = 0;
    return;
  }
  min_size = std::min(max_size, std::max(min_size + min_size / 16 + 32, min_size));
  memd_freep(ptr);
  val = Allocate(min_size, zero);
  std::memcpy(ptr, &val, sizeof(val));
  *size = val != nullptr ? static_cast<unsigned int>(min_size) : 0;
}

}  // namespace

extern "C" {

int memd_init(const char* address, const char* pool) {
  std::string resolved_address = ResolvedAddress(address);
  std::string resolved_pool = ResolvedPool(pool);
  if (absl::Status s = memd::ParseAddress(resolved_address).status(); !s.ok()) {
    SetError(std::string(s.message()));
    return -EINVAL;
  }
  if (absl::Status s = memd::ValidateName("pool name", resolved_pool); !s.ok()) {
    SetError(std::string(s.message()));
    return -EINVAL;
  }
  MutexLock lock(&g_state.mu);
  return InitLocked(resolved_address, resolved_pool);
}

void memd_uninit(void) {
  std::shared_ptr<Client> client;
  {
    MutexLock lock(&g_state.mu);
    client = std::move(g_state.client);
    g_state.by_offset.clear();
    g_state.address.clear();
    g_state.pool.clear();
  }
  // The last shared_ptr (here, or a thread still in a call) ends the session.
}

const char* memd_version(void) { return MEMD_VERSION_STRING; }

const char* memd_last_error(void) { return t_last_error.c_str(); }

void* memd_malloc(size_t size) { return Allocate(size, false); }
void* memd_mallocz(size_t size) { return Allocate(size, true); }

int memd_size_mult(size_t a, size_t b, size_t* r) {
  size_t t;
  if (__builtin_mul_overflow(a, b, &t)) return -EINVAL;
  *r = t;
  return 0;
}

void* memd_malloc_array(size_t nmemb, size_t size) {
  size_t result;
  if (!ArrayBytes(nmemb, size, &result)) return nullptr;
  return memd_malloc(result);
}

void* memd_mallocz_array(size_t nmemb, size_t size) {
  size_t result;
  if (!ArrayBytes(nmemb, size, &result)) return nullptr;
  return memd_mallocz(result);
}

void* memd_calloc(size_t nmemb, size_t size) { return memd_mallocz_array(nmemb, size); }

void* memd_realloc(void* ptr, size_t size) {
  std::shared_ptr<Client> client = Acquire();
  if (!client) return nullptr;
  size_t max = EffectiveMaxAlloc(*client);
  if (size > max) {
    SetError(absl::StrFormat("realloc to %u bytes exceeds max_alloc %u bytes", size, max));
    return nullptr;
  }
  size_t real_size = size + !size;  // as libavutil: realloc(ptr, size + !size)
  if (ptr == nullptr) return Allocate(real_size, false);
  uint64_t offset = 0, handle = 0;
  {
    MutexLock lock(&g_state.mu);
    LocalRef* local = FindLocked(ptr, &offset);
    if (local == nullptr) {
      SetError(NotOurs(ptr, "memd_realloc"));
      return nullptr;
    }
    handle = local->handle;
  }
  absl::StatusOr<memd::BufferRef> ref = client->ReallocRef(handle, real_size);
  if (!ref.ok()) {
    SetError(std::string(ref.status().message()));
    return nullptr;
  }
  MutexLock lock(&g_state.mu);
  LocalRef moved = g_state.by_offset[offset];
  moved.size_bytes = ref->size_bytes;
  g_state.by_offset.erase(offset);
  g_state.by_offset[ref->offset_bytes] = moved;
  return client->Pointer(ref->offset_bytes);
}

void* memd_realloc_array(void* ptr, size_t nmemb, size_t size) {
  size_t result;
  if (!ArrayBytes(nmemb, size, &result)) return nullptr;
  return memd_realloc(ptr, result);
}

void* memd_fast_realloc(void* ptr, unsigned int* size, size_t min_size) {
  if (min_size <= *size) return ptr;
  std::shared_ptr<Client> client = Acquire();
  size_t max_size = client ? std::min<size_t>(EffectiveMaxAlloc(*client), UINT_MAX) : 0;
  if (min_size > max_size) {
    *size = 0;
    return nullptr;
  }
  min_size = std::min(max_size, std::max(min_size + min_size / 16 + 32, min_size));
  ptr = memd_realloc(ptr, min_size);
  *size = ptr != nullptr ? static_cast<unsigned int>(min_size) : 0;
  return ptr;
}

void memd_fast_malloc(void* ptr, unsigned int* size, size_t min_size) {
  FastMalloc(ptr, size, min_size, false);
}

void memd_fast_mallocz(void* ptr, unsigned int* size, size_t min_size) {
  FastMalloc(ptr, size, min_size, true);
}

char* memd_strdup(const char* s) {
  if (s == nullptr) return nullptr;
  size_t len = std::strlen(s) + 1;
  auto* ptr = static_cast<char*>(memd_realloc(nullptr, len));
  if (ptr != nullptr) std::memcpy(ptr, s, len);
  return ptr;
}

char* memd_strndup(const char* s, size_t len) {
  if (s == nullptr) return nullptr;
  const void* end = std::memchr(s, 0, len);
  if (end != nullptr) len = static_cast<const char*>(end) - s;
  auto* ret = static_cast<char*>(memd_realloc(nullptr, len + 1));
  if (ret == nullptr) return nullptr;
  std::memcpy(ret, s, len);
  ret[len] = 0;
  return ret;
}

void* memd_memdup(const void* p, size_t size) {
  if (p == nullptr) return nullptr;
  void* ptr = memd_malloc(size);
  if (ptr != nullptr) std::memcpy(ptr, p, size);
  return ptr;
}

void memd_free(void* ptr) {
  if (ptr == nullptr) return;
  std::shared_ptr<Client> client;
  uint64_t handle = 0;
  {
    MutexLock lock(&g_state.mu);
    uint64_t offset = 0;
    LocalRef* local = FindLocked(ptr, &offset);
    if (local == nullptr) {
      SetError(NotOurs(ptr, "memd_free"));
      return;
    }
    handle = local->handle;
    if (--local->count == 0) g_state.by_offset.erase(offset);
    client = g_state.client;
  }
  if (absl::Status s = client->ReleaseRef(handle).status(); !s.ok()) {
    SetError(std::string(s.message()));
  }
}

void memd_freep(void* arg) {
  if (arg == nullptr) return;
  void* val;
  std::memcpy(&val, arg, sizeof(val));
  void* null = nullptr;
  std::memcpy(arg, &null, sizeof(val));
  memd_free(val);
}

void memd_max_alloc(size_t max) { g_max_alloc.store(max, std::memory_order_relaxed); }

uint64_t memd_handle(const void* ptr) {
  MutexLock lock(&g_state.mu);
  uint64_t offset = 0;
  LocalRef* local = FindLocked(ptr, &offset);
  return local == nullptr ? 0 : local->handle;
}

void* memd_retain(uint64_t handle, size_t* size) {
  std::shared_ptr<Client> client = Acquire();
  if (!client) return nullptr;
  absl::StatusOr<memd::BufferRef> ref = client->RetainRef(handle);
  if (!ref.ok()) {
    SetError(std::string(ref.status().message()));
    return nullptr;
  }
  if (size != nullptr) *size = ref->size_bytes;
  return Track(*client, *ref);
}

}  // extern "C"

namespace {

int SendErrno(const absl::Status& status) {
  return status.code() == absl::StatusCode::kResourceExhausted ? -EAGAIN : ErrnoOf(status);
}

// The references moved into a channel: drop them here as memd_free would.
void DropMoved(const std::vector<void*>& ptrs) {
  MutexLock lock(&g_state.mu);
  for (void* ptr : ptrs) {
    uint64_t offset = 0;
    LocalRef* local = FindLocked(ptr, &offset);
    if (local != nullptr && --local->count == 0) g_state.by_offset.erase(offset);
  }
}

// Collects the outstanding memd_channel_post, if any: 0, or its error.
int CollectPosted(Client& client) {
  absl::Status collected = client.CollectPosted();
  std::vector<void*> ptrs;
  {
    MutexLock lock(&g_state.mu);
    ptrs.swap(g_state.posted);
  }
  if (!collected.ok()) {
    SetError(std::string(collected.message()));
    return SendErrno(collected);
  }
  DropMoved(ptrs);
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
  std::vector<uint64_t> handles;
  {
    MutexLock lock(&g_state.mu);
    for (size_t i = 0; i < count; ++i) {
      uint64_t offset = 0;
      LocalRef* local = FindLocked(ptrs[i], &offset);
      if (local == nullptr) {
        SetError(NotOurs(ptrs[i], fn));
        return -EINVAL;
      }
      handles.push_back(local->handle);
    }
  }
  std::string_view meta(static_cast<const char*>(metadata), metadata == nullptr ? 0 : metadata_size);
  std::vector<void*> moved(ptrs, ptrs + count);
  absl::Status sent = post ? client->Post(channel, handles, meta, timeout_ms)
                           : client->Send(channel, handles, meta, timeout_ms);
  if (!sent.ok()) {
    SetError(std::string(sent.message()));
    return SendErrno(sent);
  }
  if (post) {
    MutexLock lock(&g_state.mu);
    g_state.posted = std::move(moved);
  } else {
    DropMoved(moved);
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
    ptrs[i] = Track(*client, message->buffers[i]);
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
