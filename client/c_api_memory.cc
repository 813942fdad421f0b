// The av_* mirror of the C API (memd/memd.h), following libavutil 5.1's
// mem.c function by function, on the C API's session (c_api_state.h). A
// pointer's handle comes from the session's own record (Client::Held).
#include <algorithm>
#include <cerrno>
#include <climits>
#include <cstring>
#include <memory>
#include <string>

#include "absl/strings/str_format.h"
#include "arena.h"
#include "locate.h"
#include "c_api_state.h"
#include "probes.h"
#include "memd/client.h"
#include "memd/memd.h"

namespace {

using memd::Client;
using memd::capi::EffectiveMaxAlloc;
using memd::capi::Session;
using memd::capi::NotOurs;
using memd::capi::SetError;

// nmemb * size into *result, as av_size_mult; false (with the reason set)
// on overflow.
bool ArrayBytes(size_t nmemb, size_t size, size_t* result) {
  if (memd_size_mult(nmemb, size, result) == 0) return true;
  SetError(absl::StrFormat("array of %u x %u bytes overflows size_t", nmemb, size));
  return false;
}

// The size av_fast_realloc and av_fast_malloc grow to for `min_size`:
// min_size + min_size/16 + 32, capped at the allocation limit. False when
// even `min_size` is above the limit (or there is no session).
bool FastGrowth(size_t min_size, size_t* grown) {
  Session client(/*make=*/true);
  size_t max_size = client ? std::min<size_t>(EffectiveMaxAlloc(*client), UINT_MAX) : 0;
  if (min_size > max_size) return false;
  *grown = std::min(max_size, std::max(min_size + min_size / 16 + 32, min_size));
  return true;
}

// Whether `size` is within the allocation limit; false (with the reason,
// "`what` N bytes exceeds max_alloc M bytes", in memd_last_error) otherwise.
bool WithinMaxAlloc(const Client& client, size_t size, const char* what) {
  size_t max = EffectiveMaxAlloc(client);
  if (size > max) {
    SetError(absl::StrFormat("%s %u bytes exceeds max_alloc %u bytes", what, size, max));
    return false;
  }
  return true;
}

void* Allocate(size_t size, bool zero) {
  Session client(/*make=*/true);
  if (!client || !WithinMaxAlloc(*client, size, "allocation of")) return nullptr;
  if (memd::Arena* arena = memd::ArenaOf(*client)) {
    if (void* ptr = arena->Allocate(size)) {
      memd::probes::ArenaAllocated(ptr, size);
      if (zero) std::memset(ptr, 0, size);
      return ptr;
    }
  }
  absl::StatusOr<memd::BufferRef> ref = client->AllocateRef(size, zero);
  if (!ref.ok()) {
    SetError(std::string(ref.status().message()));
    return nullptr;
  }
  return client->Pointer(ref->offset_bytes);
}

// memd_realloc of an arena block (`block`, at `ptr`) to `size` bytes (>= 1):
// in place while the size stays in the block's class and the block has no
// handle (a registered range has the size the daemon recorded, which others
// may see), else a new block (arena or daemon), the content copied, the old
// one freed. A registered block that others hold too is refused, as the
// daemon refuses to move a buffer with several references.
void* ArenaRealloc(Client& client, memd::Arena& arena, void* ptr, const memd::Arena::Block& block,
                   size_t size) {
  if (block.handle == 0 && arena.ResizeInPlace(ptr, size)) return ptr;
  if (block.handle != 0) {
    absl::StatusOr<std::vector<memd::RefCount>> refs = client.QueryRefs({block.handle});
    if (!refs.ok()) {
      SetError(std::string(refs.status().message()));
      return nullptr;
    }
    if ((*refs)[0].references > 1) {
      SetError(absl::StrFormat(
          "realloc of handle 0x%016x in pool '%s' refused: it has %u references and moving it "
          "would pull it from under the other holders",
          block.handle, client.pool().name, (*refs)[0].references));
      return nullptr;
    }
  }
  void* moved = Allocate(size, false);
  if (moved == nullptr) return nullptr;  // the old block is unchanged
  std::memcpy(moved, ptr, std::min<size_t>(block.capacity_bytes, size));
  memd_free(ptr);
  return moved;
}

void FastMalloc(void* ptr, unsigned int* size, size_t min_size, bool zero) {
  void* val;
  std::memcpy(&val, ptr, sizeof(val));
  if (min_size <= *size) return;
  size_t grown = 0;
  if (!FastGrowth(min_size, &grown)) {
    memd_freep(ptr);
    *size = 0;
    return;
  }
  memd_freep(ptr);
  val = Allocate(grown, zero);
  std::memcpy(ptr, &val, sizeof(val));
  *size = val != nullptr ? static_cast<unsigned int>(grown) : 0;
}

}  // namespace

extern "C" {

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
  Session client(/*make=*/true);
  if (!client || !WithinMaxAlloc(*client, size, "realloc to")) return nullptr;
  size_t real_size = size + !size;  // as libavutil: realloc(ptr, size + !size)
  if (ptr == nullptr) return Allocate(real_size, false);
  memd::Located located = memd::Locate(*client, ptr);
  if (located.kind == memd::Located::Kind::kArenaBlock) {
    return ArenaRealloc(*client, *memd::ArenaOf(*client), ptr, located.block, real_size);
  }
  if (located.kind != memd::Located::Kind::kBuffer) {
    SetError(NotOurs(ptr, "memd_realloc"));
    return nullptr;
  }
  absl::StatusOr<memd::BufferRef> ref = client->ReallocRef(located.buffer.handle, real_size);
  if (!ref.ok()) {
    SetError(std::string(ref.status().message()));
    return nullptr;
  }
  return client->Pointer(ref->offset_bytes);
}

void* memd_realloc_array(void* ptr, size_t nmemb, size_t size) {
  size_t result;
  if (!ArrayBytes(nmemb, size, &result)) return nullptr;
  return memd_realloc(ptr, result);
}

void* memd_fast_realloc(void* ptr, unsigned int* size, size_t min_size) {
  if (min_size <= *size) return ptr;
  size_t grown = 0;
  if (!FastGrowth(min_size, &grown)) {
    *size = 0;
    return nullptr;
  }
  ptr = memd_realloc(ptr, grown);
  *size = ptr != nullptr ? static_cast<unsigned int>(grown) : 0;
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
  Session client(/*make=*/false);
  if (!client) {
    SetError(NotOurs(ptr, "memd_free"));
    return;
  }
  // The common case first, without a lookup: a live arena block.
  if (memd::Arena* arena = memd::ArenaOf(*client); arena != nullptr && arena->Free(ptr)) {
    memd::probes::ArenaReleased(ptr);
    return;
  }
  memd::Located located = memd::Locate(*client, ptr);
  if (located.kind != memd::Located::Kind::kBuffer) {
    SetError(NotOurs(ptr, "memd_free"));  // foreign, interior, freed, or sent away
    return;
  }
  if (absl::Status s = client->ReleaseRef(located.buffer.handle).status(); !s.ok()) {
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

uint64_t memd_handle(const void* ptr) {
  Session client(/*make=*/false);
  if (!client || ptr == nullptr) return 0;
  absl::StatusOr<memd::BufferRef> held = client->Held(ptr);
  if (!held.ok()) {
    // A foreign pointer, or an arena block the daemon would not register
    // (a quota, docs/errors.md E76): the reason, as memd.h promises.
    SetError(std::string(held.status().message()));
    return 0;
  }
  return held->handle;
}

void* memd_retain(uint64_t handle, size_t* size) {
  Session client(/*make=*/true);
  if (!client) return nullptr;
  absl::StatusOr<memd::BufferRef> ref = client->RetainRef(handle);
  if (!ref.ok()) {
    SetError(std::string(ref.status().message()));
    return nullptr;
  }
  if (size != nullptr) *size = ref->size_bytes;
  return client->Pointer(ref->offset_bytes);
}

}  // extern "C"
