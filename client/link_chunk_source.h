// LinkChunkSource: the arena's ChunkSource over the session link; every
// answer is recorded in the link's Holdings by the link itself (Apply), and
// chunks are marked as such. Private to libmemd. Thread-safe (the link is).
#ifndef MEMD_CLIENT_LINK_CHUNK_SOURCE_H_
#define MEMD_CLIENT_LINK_CHUNK_SOURCE_H_

#include "chunk_source.h"

namespace memd {

class SessionLink;

class LinkChunkSource final : public ChunkSource {
 public:
  // REQUIRES: `link` outlives this.
  explicit LinkChunkSource(SessionLink& link) : link_(link) {}

  absl::StatusOr<Chunk> Grant(uint64_t bytes) override;
  absl::StatusOr<uint64_t> Register(const v1::ArenaRegisterRequest& range) override;
  absl::StatusOr<std::vector<uint64_t>> Report(const std::vector<uint64_t>& idle,
                                               const std::vector<uint64_t>& use,
                                               const ArenaStats& counters) override;
  absl::StatusOr<std::vector<uint32_t>> Query(const std::vector<uint64_t>& handles) override;
  void Release(uint64_t handle) override;
  void ReleaseLater(uint64_t handle) override;

 private:
  SessionLink& link_;
};

}  // namespace memd

#endif  // MEMD_CLIENT_LINK_CHUNK_SOURCE_H_
