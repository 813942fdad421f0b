// memd::BufferPool: fixed-size pool buffers recycled inside the process
// (AVBufferPool semantics): Get() takes a free buffer without a daemon call
// when one is idle, and a PooledBuffer going out of scope returns to the
// pool, not to the daemon. The pool grows by batches of buffers (one daemon
// call each) and gives idle ones back on Trim() or destruction.
//
// Sharing: a buffer whose handle another process may hold must be lent with
// PooledBuffer::Lend(). When it comes back, the pool keeps it out of
// circulation until the daemon says (one batched query per few buffers)
// that nobody else holds it: a recycled buffer is never under someone else.
//
// Ownership: REQUIRES: the Client outlives the pool, and the pool outlives
// its PooledBuffers. Thread-safe: Get, Trim and buffer destruction may run
// on any thread. Every byte stays attributed to the session in memctl.
//
// Example:
//   auto pool = memd::BufferPool::Create(*client, 65536);
//   auto buffer = (*pool)->Get();        // local after the first batch
//   std::memcpy(buffer->data(), packet, 1500);
//   // ~PooledBuffer: back to the pool
#ifndef MEMD_CLIENT_BUFFER_POOL_H_
#define MEMD_CLIENT_BUFFER_POOL_H_

#include <cstddef>
#include <cstdint>
#include <memory>

#include "absl/status/statusor.h"
#include "memd/client.h"
#include "memd/export.h"

namespace memd {

class BufferPool;

// One buffer of a BufferPool; returns to it on destruction. Move-only.
class MEMD_EXPORT PooledBuffer {
 public:
  PooledBuffer() = default;
  PooledBuffer(PooledBuffer&& other) noexcept { *this = std::move(other); }
  PooledBuffer& operator=(PooledBuffer&& other) noexcept;
  ~PooledBuffer();

  uint8_t* data() const { return data_; }
  size_t size() const;
  uint64_t handle() const { return handle_; }
  explicit operator bool() const { return pool_ != nullptr; }

  // Marks the buffer as handed to another process and returns its handle:
  // the pool will not reuse it until every other holder released it.
  uint64_t Lend();

 private:
  friend class BufferPool;
  PooledBuffer(BufferPool* pool, uint64_t handle, uint8_t* data)
      : pool_(pool), handle_(handle), data_(data) {}

  BufferPool* pool_ = nullptr;
  uint64_t handle_ = 0;
  uint8_t* data_ = nullptr;
  bool lent_ = false;
};

struct BufferPoolStats {
  uint64_t idle = 0;       // buffers ready for Get
  uint64_t in_use = 0;     // PooledBuffers alive
  uint64_t lent = 0;       // returned, waiting for other holders to release
  uint64_t allocated = 0;  // buffers this pool allocated in total
  uint64_t queries = 0;    // daemon queries for lent buffers
};

class MEMD_EXPORT BufferPool {
 public:
  // Buffers of `buffer_bytes` (1 .. the pool's max_alloc), allocated `batch`
  // at a time (1..1024). INVALID_ARGUMENT naming the value otherwise.
  static absl::StatusOr<std::unique_ptr<BufferPool>> Create(Client& client, size_t buffer_bytes,
                                                            uint32_t batch = 8);
  ~BufferPool();  // releases every buffer not in use; lent ones keep their other holders
  BufferPool(const BufferPool&) = delete;
  BufferPool& operator=(const BufferPool&) = delete;

  // An idle buffer, or a new batch from the daemon (its errors: quota, pool full).
  absl::StatusOr<PooledBuffer> Get();
  // Releases the idle buffers (and the parked lent ones' own references).
  absl::Status Trim();

  size_t buffer_bytes() const { return buffer_bytes_; }
  BufferPoolStats stats() const;

 private:
  friend class PooledBuffer;
  struct Impl;
  BufferPool(Client& client, size_t buffer_bytes, uint32_t batch);
  void Return(uint64_t handle, uint8_t* data, bool lent);

  const size_t buffer_bytes_;
  std::unique_ptr<Impl> impl_;
};

}  // namespace memd

#endif  // MEMD_CLIENT_BUFFER_POOL_H_
