// memd_init, memd_uninit, memd_version, memd_last_error, memd_max_alloc: the C API's
// process-wide session (c_api_state.h).
#include "c_api_state.h"

#include "arena.h"

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <climits>
#include <thread>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/strings/str_format.h"
#include "connect_env.h"
#include "memd/memd.h"
#include "memd/shared/address.h"
#include "memd/shared/mutex.h"
#include "memd/shared/names.h"

namespace memd::capi {
namespace {

struct State {
  Mutex mu;
  std::shared_ptr<Client> client ABSL_GUARDED_BY(mu);
  std::string address ABSL_GUARDED_BY(mu);
  std::string pool ABSL_GUARDED_BY(mu);
};

State& g_state = *new State;  // never destroyed: usable from atexit handlers
// Bumped (under g_state.mu) whenever g_state.client changes: a thread's
// cached pointer is good while its epoch is the current one.
std::atomic<uint64_t> g_epoch{1};

// One thread's hazard slot (Session): the session it uses now, its cached
// pointer and that pointer's epoch. Registered while the thread lives.
struct Hazard {
  std::atomic<Client*> in_use{nullptr};
  Client* cached = nullptr;
  uint64_t epoch = 0;
  int depth = 0;  // nested Sessions on this thread
  bool registered = false;
  ~Hazard();
};

struct Hazards {
  Mutex mu;
  std::vector<Hazard*> all ABSL_GUARDED_BY(mu);
};
Hazards& g_hazards = *new Hazards;
thread_local Hazard t_hazard;

Hazard::~Hazard() {
  if (!registered) return;
  MutexLock lock(&g_hazards.mu);
  std::erase(g_hazards.all, this);
}

// Waits until no thread's hazard slot marks `client` (memd_uninit, after
// the epoch moved on: no new marks of it can start).
void WaitUnmarked(const Client* client) {
  for (;;) {
    {
      MutexLock lock(&g_hazards.mu);
      bool marked = false;
      for (const Hazard* h : g_hazards.all) marked |= h->in_use.load() == client;
      if (!marked) return;
    }
    std::this_thread::yield();
  }
}
std::atomic<size_t> g_max_alloc{INT_MAX};
thread_local std::string t_last_error;

std::string ResolvedAddress(const char* address) {
  return address != nullptr && *address != '\0' ? address : ClientDefaultAddress();
}

std::string ResolvedPool(const char* pool) { return PoolOrDefault(pool != nullptr ? pool : ""); }

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
  g_epoch.fetch_add(1);
  // memd_* allocations are mostly small: the first arena chunk now, so the
  // first memd_malloc does not pay for it.
  if (Arena* arena = ArenaOf(*g_state.client)) arena->Prepare();
  g_state.address = address;
  g_state.pool = pool;
  return 0;
}

}  // namespace

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

std::shared_ptr<Client> Acquire() {
  MutexLock lock(&g_state.mu);
  if (!g_state.client && InitLocked(ResolvedAddress(nullptr), ResolvedPool(nullptr)) != 0) {
    return nullptr;
  }
  return g_state.client;
}

std::shared_ptr<Client> Current() {
  MutexLock lock(&g_state.mu);
  return g_state.client;
}

Session::Session(bool make) {
  Hazard& h = t_hazard;
  if (h.depth > 0) {  // nested on this thread: the outer Session marks it already
    client_ = h.in_use.load(std::memory_order_relaxed);
    if (client_ != nullptr) {
      ++h.depth;
      marked_ = true;
      return;
    }
  }
  if (h.cached != nullptr && h.epoch == g_epoch.load(std::memory_order_acquire)) {
    h.in_use.store(h.cached);  // seq_cst: memd_uninit's epoch bump sees it, or we see the bump
    if (h.epoch == g_epoch.load()) {
      client_ = h.cached;
      ++h.depth;
      marked_ = true;
      return;
    }
    h.in_use.store(nullptr, std::memory_order_release);
  }
  // The mutex path; it also caches the session for this thread's next calls.
  if (!h.registered) {
    MutexLock lock(&g_hazards.mu);
    g_hazards.all.push_back(&h);
    h.registered = true;
  }
  uint64_t epoch;
  {
    MutexLock lock(&g_state.mu);
    if (!g_state.client && make) {
      InitLocked(ResolvedAddress(nullptr), ResolvedPool(nullptr));
    }
    owned_ = g_state.client;
    epoch = g_epoch.load();
  }
  client_ = owned_.get();
  h.cached = client_;
  h.epoch = epoch;
}

Session::~Session() {
  if (!marked_) return;
  Hazard& h = t_hazard;
  if (--h.depth == 0) h.in_use.store(nullptr, std::memory_order_release);
}

size_t EffectiveMaxAlloc(const Client& client) {
  return std::min<size_t>(g_max_alloc.load(std::memory_order_relaxed),
                          client.pool().max_alloc_bytes);
}

std::string NotOurs(const void* ptr, const char* fn) {
  return absl::StrFormat("%s(%p): not a pointer memd returned (foreign, interior or already "
                         "freed); nothing was done",
                         fn, ptr);
}

}  // namespace memd::capi

using memd::capi::g_state;
using memd::capi::SetError;

extern "C" {

int memd_init(const char* address, const char* pool) {
  std::string resolved_address = memd::capi::ResolvedAddress(address);
  std::string resolved_pool = memd::capi::ResolvedPool(pool);
  if (absl::Status s = memd::ParseAddress(resolved_address).status(); !s.ok()) {
    SetError(std::string(s.message()));
    return -EINVAL;
  }
  if (absl::Status s = memd::ValidateName("pool name", resolved_pool); !s.ok()) {
    SetError(std::string(s.message()));
    return -EINVAL;
  }
  memd::MutexLock lock(&g_state.mu);
  return memd::capi::InitLocked(resolved_address, resolved_pool);
}

void memd_uninit(void) {
  std::shared_ptr<memd::Client> client;
  {
    memd::MutexLock lock(&g_state.mu);
    client = std::move(g_state.client);
    g_state.address.clear();
    g_state.pool.clear();
    memd::capi::g_epoch.fetch_add(1);  // no thread takes the fast path to it any more
  }
  if (client) memd::capi::WaitUnmarked(client.get());
  // The last shared_ptr (here, or a thread still in a call) ends the session.
}

const char* memd_version(void) { return MEMD_VERSION_STRING; }

const char* memd_last_error(void) { return memd::capi::t_last_error.c_str(); }

void memd_max_alloc(size_t max) {
  memd::capi::g_max_alloc.store(max, std::memory_order_relaxed);
}

}  // extern "C"
