// FramePool's pools: AVBufferPools of memd buffers per size, the wrapping
// of memd references as AVBufferRefs, and lent buffers held back until
// every other holder released them (frame_pool_state.h).
#include <algorithm>
#include <vector>

#include "frame_pool_state.h"

namespace memd::ffmpeg {
namespace {

// Fewer parked buffers are checked every this many gets of their size, so
// they come back too.
constexpr uint64_t kGetsPerQuery = 16;
// A pool that grows allocates this many buffers per daemon call (one
// allocate_batch); the spares wait in the pool's State until it needs them.
constexpr uint32_t kAllocBatch = 4;

}  // namespace

AVBufferRef* FramePool::State::Wrap(const BufferRef& ref, bool pooled,
                                    std::shared_ptr<Group> group) {
  uint8_t* data = client.Pointer(ref.offset_bytes);
  auto* holder = new Holder{self.lock(), ref.handle, group};
  AVBufferRef* buf = av_buffer_create(data, ref.size_bytes, &Free, holder, 0);
  if (buf == nullptr) {
    delete holder;
    client.ReleaseRef(ref.handle).IgnoreError();
    return nullptr;
  }
  if (group != nullptr) {
    group->handles.push_back(ref.handle);
    ++group->remaining;
  }
  MutexLock lock(&tags_mu);
  Tag& tag = tags[data];
  ++tag.buffers;
  tag.pooled |= pooled;
  return buf;
}

void FramePool::State::Free(void* opaque, uint8_t* data) {
  std::unique_ptr<Holder> holder(static_cast<Holder*>(opaque));
  State& state = *holder->state;
  {
    MutexLock lock(&state.tags_mu);
    auto it = state.tags.find(data);
    if (it != state.tags.end() && --it->second.buffers == 0) {
      if (it->second.lent) --state.stats.lent_buffers;
      state.tags.erase(it);
    }
  }
  // Other processes may still hold the block: only this reference goes,
  // deferred so a trimmed pool's buffers go back in batches.
  if (holder->group == nullptr) {
    state.client.ReleaseRefsLater({holder->handle});
  } else if (--holder->group->remaining == 0) {
    // Rides on the next Receive or Send (a frame loop), or goes within 25 ms.
    state.client.ReleaseRefsLater(holder->group->handles);
  }
}

AVBufferRef* FramePool::State::Alloc(void* opaque, size_t size) {
  auto* state = static_cast<State*>(opaque);
  std::vector<BufferRef>& spares = state->pools[size].spares;
  if (spares.empty()) {
    absl::StatusOr<std::vector<BufferRef>> batch = state->client.AllocateRefs(size, kAllocBatch);
    if (!batch.ok()) {  // perhaps room for one, not for a batch
      absl::StatusOr<BufferRef> one = state->client.AllocateRef(size, false);
      if (!one.ok()) return nullptr;
      batch = std::vector<BufferRef>{*one};
    }
    spares.assign(batch->rbegin(), batch->rend());
    MutexLock lock(&state->tags_mu);
    state->stats.allocated_buffers += spares.size();
  }
  BufferRef ref = spares.back();
  spares.pop_back();
  return state->Wrap(ref, /*pooled=*/true);
}

void FramePool::State::ReturnLent() {
  // Every parked buffer in pool order (Client::Returned answers for the
  // first 1024); the second pass below walks them in the same order.
  std::vector<uint64_t> handles;
  for (auto& [size, sp] : pools) {
    sp.gets_since_query = 0;
    for (AVBufferRef* ref : sp.parked) {
      absl::StatusOr<BufferRef> held = client.Held(ref->data);  // a pooled buffer stays held
      handles.push_back(held.ok() ? held->handle : 0);
    }
  }
  {
    MutexLock lock(&tags_mu);
    ++stats.queries;
  }
  std::vector<bool> back = client.Returned(handles);
  size_t at = 0;  // index into handles and back
  for (auto& [size, sp] : pools) {
    std::vector<AVBufferRef*> still_lent;
    for (AVBufferRef* ref : sp.parked) {
      bool returned = back[at] && handles[at] != 0;
      ++at;
      if (!returned) {
        still_lent.push_back(ref);
        continue;
      }
      {
        MutexLock lock(&tags_mu);
        Tag& tag = tags.at(ref->data);
        if (tag.lent) --stats.lent_buffers;
        tag.lent = false;
      }
      av_buffer_unref(&ref);  // back to its AVBufferPool
    }
    sp.parked = std::move(still_lent);
    // Those still lent are asked about again only after more are parked.
    sp.query_at_parked = sp.parked.size() + kParkedPerQuery;
  }
}

void FramePool::State::Trim() {
  MutexLock lock(&pools_mu);
  for (auto& [size, sp] : pools) {
    for (AVBufferRef*& ref : sp.parked) av_buffer_unref(&ref);
    av_buffer_pool_uninit(&sp.pool);  // buffers in use are freed when returned
    std::vector<uint64_t> spares;
    for (const BufferRef& ref : sp.spares) spares.push_back(ref.handle);
    client.ReleaseRefsLater(spares);
  }
  pools.clear();
  client.FlushReleases().IgnoreError();
}

FramePool::FramePool(Client& client) : state_(std::make_shared<State>(client)) {
  state_->self = state_;
}

FramePool::~FramePool() { state_->Trim(); }

void FramePool::Trim() { state_->Trim(); }

Client& FramePool::client() const { return state_->client; }

FramePoolStats FramePool::stats() const {
  MutexLock lock(&state_->tags_mu);
  return state_->stats;
}

AVBufferRef* FramePool::Get(size_t size_bytes) {
  State& s = *state_;
  MutexLock lock(&s.pools_mu);
  State::SizePool& sp = s.pools[size_bytes];
  if (sp.pool == nullptr) {
    sp.pool = av_buffer_pool_init2(size_bytes, &s, &State::Alloc, nullptr);
    if (sp.pool == nullptr) return nullptr;
  }
  if (sp.parked.size() >= sp.query_at_parked ||
      (!sp.parked.empty() && ++sp.gets_since_query >= kGetsPerQuery)) {
    s.ReturnLent();
  }
  for (;;) {
    AVBufferRef* ref = av_buffer_pool_get(sp.pool);
    if (ref == nullptr) return nullptr;
    MutexLock tags_lock(&s.tags_mu);
    if (!s.tags.at(ref->data).lent) {
      ++s.stats.buffer_gets;
      return ref;
    }
    sp.parked.push_back(ref);
  }
}

}  // namespace memd::ffmpeg
