#include "locate.h"

#include <cstdint>

#include "absl/strings/str_format.h"
#include "client_impl.h"
#include "client_internals.h"

namespace memd {

Located Locate(const Client& client, const void* ptr) {
  const auto& impl = ClientInternals::ImplOf(client);  // Impl is private: named by auto
  Located located;
  if (impl.arena != nullptr) {
    if (std::optional<absl::StatusOr<Arena::Block>> block = impl.arena->Find(ptr)) {
      if (block->ok()) {
        located.kind = Located::Kind::kArenaBlock;
        located.block = **block;
      } else {
        located.why = block->status();  // inside the arena, but not a live block of ours
      }
      return located;
    }
  }
  const auto p = reinterpret_cast<uintptr_t>(ptr);
  const auto base = reinterpret_cast<uintptr_t>(impl.base);
  const Holdings& holdings = impl.link->holdings();
  if (p >= base && p - base < impl.pool.size_bytes) {
    if (std::optional<Holdings::Entry> held = holdings.AtOffset(p - base)) {
      located.kind = Located::Kind::kBuffer;
      located.buffer = BufferRef{held->handle, held->offset_bytes, held->size_bytes,
                                 held->capacity_bytes};
      return located;
    }
    if (std::optional<uint64_t> lost = holdings.LostAtOffset(p - base)) {
      located.why = Holdings::LostError(ptr, *lost);  // not "released": a restart took it
      return located;
    }
  }
  located.why = absl::NotFoundError(absl::StrFormat(
      "%p is not the start of a buffer this session holds in pool '%s' (foreign, interior or "
      "already released)", ptr, impl.pool.name));
  return located;
}

}  // namespace memd
