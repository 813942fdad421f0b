#include "memd/buffer_pool.h"

#include <utility>
#include <vector>

#include "absl/strings/str_format.h"
#include "memd/shared/limits.h"
#include "memd/shared/mutex.h"

namespace memd {
namespace {

// Lent buffers are checked with one daemon query once this many more are
// parked, and before the pool grows (no idle buffer left).
constexpr size_t kParkedPerQuery = 4;

struct Idle {
  uint64_t handle;
  uint8_t* data;
};

}  // namespace

// Hidden: nested in an exported class, it would be exported otherwise.
struct __attribute__((visibility("hidden"))) BufferPool::Impl {
  Client& client;
  const uint32_t batch;

  mutable Mutex mu;
  std::vector<Idle> idle ABSL_GUARDED_BY(mu);
  std::vector<Idle> parked ABSL_GUARDED_BY(mu);  // lent, maybe still held elsewhere
  size_t query_at_parked ABSL_GUARDED_BY(mu) = kParkedPerQuery;
  BufferPoolStats stats ABSL_GUARDED_BY(mu);

  // Moves the parked buffers nobody else holds to `idle`.
  void ReturnLent() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu) {
    ++stats.queries;
    std::vector<uint64_t> handles;
    for (const Idle& b : parked) handles.push_back(b.handle);
    std::vector<bool> back = client.Returned(handles);
    std::vector<Idle> still;
    for (size_t i = 0; i < parked.size(); ++i) (back[i] ? idle : still).push_back(parked[i]);
    parked = std::move(still);
    stats.lent = parked.size();
    query_at_parked = parked.size() + kParkedPerQuery;
  }
};

PooledBuffer& PooledBuffer::operator=(PooledBuffer&& other) noexcept {
  if (this != &other) {
    if (pool_ != nullptr) pool_->Return(handle_, data_, lent_);
    pool_ = std::exchange(other.pool_, nullptr);
    handle_ = std::exchange(other.handle_, 0);
    data_ = std::exchange(other.data_, nullptr);
    lent_ = std::exchange(other.lent_, false);
  }
  return *this;
}

PooledBuffer::~PooledBuffer() {
  if (pool_ != nullptr) pool_->Return(handle_, data_, lent_);
}

size_t PooledBuffer::size() const { return pool_ != nullptr ? pool_->buffer_bytes() : 0; }

uint64_t PooledBuffer::Lend() {
  lent_ = true;
  return handle_;
}

BufferPool::BufferPool(Client& client, size_t buffer_bytes, uint32_t batch)
    : buffer_bytes_(buffer_bytes), impl_(new Impl{client, batch}) {}

absl::StatusOr<std::unique_ptr<BufferPool>> BufferPool::Create(Client& client, size_t buffer_bytes,
                                                               uint32_t batch) {
  uint64_t max_alloc = client.pool().max_alloc_bytes;
  if (buffer_bytes == 0 || buffer_bytes > max_alloc) {
    return absl::InvalidArgumentError(absl::StrFormat(
        "buffer pool of %u-byte buffers: the size must be from 1 to max_alloc %u of pool '%s'",
        buffer_bytes, max_alloc, client.pool().name));
  }
  if (batch == 0 || batch > limits::kMaxBatch) {
    return absl::InvalidArgumentError(absl::StrFormat(
        "buffer pool batch of %u buffers: from 1 to %u are allowed", batch, limits::kMaxBatch));
  }
  return std::unique_ptr<BufferPool>(new BufferPool(client, buffer_bytes, batch));
}

BufferPool::~BufferPool() { Trim().IgnoreError(); }

absl::StatusOr<PooledBuffer> BufferPool::Get() {
  Impl& p = *impl_;
  MutexLock lock(&p.mu);
  if (p.parked.size() >= p.query_at_parked || (p.idle.empty() && !p.parked.empty())) {
    p.ReturnLent();
  }
  if (p.idle.empty()) {
    absl::StatusOr<std::vector<BufferRef>> refs = p.client.AllocateRefs(buffer_bytes_, p.batch);
    if (!refs.ok()) return refs.status();
    for (auto it = refs->rbegin(); it != refs->rend(); ++it) {
      p.idle.push_back(Idle{it->handle, p.client.Pointer(it->offset_bytes)});
    }
    p.stats.allocated += refs->size();
  }
  Idle buffer = p.idle.back();
  p.idle.pop_back();
  ++p.stats.in_use;
  return PooledBuffer(this, buffer.handle, buffer.data);
}

void BufferPool::Return(uint64_t handle, uint8_t* data, bool lent) {
  Impl& p = *impl_;
  MutexLock lock(&p.mu);
  --p.stats.in_use;
  if (lent) {
    p.parked.push_back(Idle{handle, data});
    p.stats.lent = p.parked.size();
  } else {
    p.idle.push_back(Idle{handle, data});
  }
}

absl::Status BufferPool::Trim() {
  Impl& p = *impl_;
  std::vector<uint64_t> handles;
  {
    MutexLock lock(&p.mu);
    for (const Idle& b : p.idle) handles.push_back(b.handle);
    for (const Idle& b : p.parked) handles.push_back(b.handle);
    p.idle.clear();
    p.parked.clear();
    p.stats.lent = 0;
  }
  for (size_t start = 0; start < handles.size(); start += limits::kMaxBatch) {
    std::vector<uint64_t> part(handles.begin() + start,
                               handles.begin() + std::min(handles.size(), start + limits::kMaxBatch));
    if (absl::Status s = p.client.ReleaseRefs(part).status(); !s.ok()) return s;
  }
  return absl::OkStatus();
}

BufferPoolStats BufferPool::stats() const {
  MutexLock lock(&impl_->mu);
  BufferPoolStats s = impl_->stats;
  s.idle = impl_->idle.size();
  return s;
}

}  // namespace memd
