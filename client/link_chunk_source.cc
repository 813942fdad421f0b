#include "link_chunk_source.h"

#include "session_link.h"

namespace memd {
absl::StatusOr<ChunkSource::Chunk> LinkChunkSource::Grant(uint64_t bytes) {
  v1::SessionRequest request;
  request.mutable_allocate()->set_size_bytes(bytes);
  absl::StatusOr<v1::SessionResponse> granted = link_.CallOk(std::move(request));
  if (!granted.ok()) return granted.status();
  link_.holdings().MarkChunk(granted->buffer().handle());
  return Chunk{granted->buffer().handle(), granted->buffer().offset_bytes(),
               granted->buffer().capacity_bytes()};
}

absl::StatusOr<uint64_t> LinkChunkSource::Register(const v1::ArenaRegisterRequest& range) {
  v1::SessionRequest request;
  *request.mutable_arena_register() = range;
  absl::StatusOr<v1::SessionResponse> answer = link_.CallOk(std::move(request));
  if (!answer.ok()) return answer.status();
  return answer->arena_registered().range().handle();
}

absl::StatusOr<std::vector<uint64_t>> LinkChunkSource::Report(const std::vector<uint64_t>& idle,
                                                              const std::vector<uint64_t>& use,
                                                              const ArenaStats& counters) {
  v1::SessionRequest request;
  v1::ArenaReportRequest* report = request.mutable_arena_report();
  for (uint64_t h : idle) report->add_idle(h);
  for (uint64_t h : use) report->add_use(h);
  report->mutable_counters()->set_reserved_bytes(counters.reserved_bytes);
  report->mutable_counters()->set_in_use_bytes(counters.in_use_bytes);
  report->mutable_counters()->set_local_allocs(counters.local_allocs);
  absl::StatusOr<v1::SessionResponse> answer = link_.CallOk(std::move(request));
  if (!answer.ok()) return answer.status();
  return std::vector<uint64_t>(answer->arena_reported().taken().begin(),
                               answer->arena_reported().taken().end());
}

absl::StatusOr<std::vector<uint32_t>> LinkChunkSource::Query(const std::vector<uint64_t>& handles) {
  v1::SessionRequest request;
  for (uint64_t h : handles) request.mutable_query()->add_handles(h);
  absl::StatusOr<v1::SessionResponse> answer = link_.CallOk(std::move(request));
  if (!answer.ok()) return answer.status();
  std::vector<uint32_t> counts;
  counts.reserve(answer->references().handles_size());
  for (const v1::HandleReferences& r : answer->references().handles()) {
    counts.push_back(r.references());
  }
  return counts;
}

void LinkChunkSource::Release(uint64_t handle) { link_.Release(handle).IgnoreError(); }

void LinkChunkSource::ReleaseLater(uint64_t handle) { link_.DeferRelease({handle}); }

}  // namespace memd
