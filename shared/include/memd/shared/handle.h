// Handle encoding shared by the daemon and the client.
//
// A handle is 64 bits: | pool index (8) | generation (24) | slot (32) |.
// The daemon bumps a slot's generation every time the slot is freed and
// retires the slot when its generation is exhausted, so a handle value is
// never issued twice: a stale handle is NOT_FOUND, never another buffer.
// Generation 0 is never issued, so 0 is never a valid handle.
#ifndef MEMD_SHARED_HANDLE_H_
#define MEMD_SHARED_HANDLE_H_

#include <cstdint>

namespace memd {

inline constexpr uint32_t kMaxGeneration = (1u << 24) - 1;
inline constexpr uint32_t kMaxPools = 256;

struct HandleParts {
  uint32_t pool_index;  // 0..255
  uint32_t generation;  // 1..kMaxGeneration for issued handles
  uint32_t slot;        // index into the pool's handle table
};

constexpr uint64_t EncodeHandle(HandleParts parts) {
  return (static_cast<uint64_t>(parts.pool_index & 0xffu) << 56) |
         (static_cast<uint64_t>(parts.generation & kMaxGeneration) << 32) |
         static_cast<uint64_t>(parts.slot);
}

constexpr HandleParts DecodeHandle(uint64_t handle) {
  return HandleParts{static_cast<uint32_t>(handle >> 56),
                     static_cast<uint32_t>((handle >> 32) & kMaxGeneration),
                     static_cast<uint32_t>(handle & 0xffffffffu)};
}

static_assert(DecodeHandle(EncodeHandle({3, 77, 12345})).pool_index == 3);
static_assert(DecodeHandle(EncodeHandle({3, 77, 12345})).generation == 77);
static_assert(DecodeHandle(EncodeHandle({3, 77, 12345})).slot == 12345);

}  // namespace memd

#endif  // MEMD_SHARED_HANDLE_H_
