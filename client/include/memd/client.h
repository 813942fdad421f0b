// memd C++ client API.
//
// A Client is one session with the daemon, attached to one pool whose segment
// it maps read-write once. Buffers are move-only RAII references; the bytes
// are used in place (no copies over the wire). Destroying the Client (or the
// process dying) releases every reference the session still holds.
//
// Daemon restarts: the mapping stays valid while the daemon is down; the
// client reconnects in the background (bounded backoff) and reclaims every
// reference it holds. Calls during the outage fail with UNAVAILABLE (or wait,
// see ConnectOptions::outage_wait_ms); a release during the outage succeeds
// locally and the reference is dropped on reconnection. If the daemon comes
// back without the pool's segment, calls fail with FAILED_PRECONDITION.
//
// Thread-safety: a Client may be used from many threads at once; requests
// from different threads are pipelined on the one session stream. A Buffer is
// not synchronized: share it between threads the way you would a std::vector.
//
// Example:
//   auto client = memd::Client::Connect({.pool = "video"});
//   if (!client.ok()) return client.status();
//   auto frame = (*client)->Allocate(12'441'600);
//   std::memset(frame->data(), 0x80, frame->size());
//   SendToConsumer(frame->handle());  // the consumer calls Retain(handle)
#ifndef MEMD_CLIENT_CLIENT_H_
#define MEMD_CLIENT_CLIENT_H_

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "memd/export.h"

namespace memd {

struct ConnectOptions {
  // Daemon address: "unix:///path" or "host:port". Empty: $MEMD_ADDRESS, else
  // unix:///run/memd/memd.sock.
  std::string address;
  // Pool to attach to. Empty: $MEMD_POOL, else "default".
  std::string pool;
  // Label shown by memctl for this session (at most 64 bytes).
  std::string client_name;
  // How long Connect waits for a daemon that is not up yet (no socket, nobody
  // accepting) or restarting (its pool waits for its memory to come back),
  // trying again with growing pauses (at most 200 ms apart); after it, Connect
  // fails with UNAVAILABLE naming the address and this timeout. 0: one try.
  // Negative: $MEMD_CONNECT_TIMEOUT (seconds, or with a unit: "500ms", "2m"),
  // else 30 s. At most 1 h.
  int64_t connect_timeout_ms = -1;
  // When the daemon goes away (crash, restart), the client keeps its mapping
  // and reconnects by itself, reclaiming the references it holds. A call made
  // meanwhile waits up to this long for the reconnection, then fails with
  // UNAVAILABLE. 0: fail at once. Negative: $MEMD_OUTAGE_WAIT_MS, else 0.
  int64_t outage_wait_ms = -1;
  // Reconnection attempts start this far apart and double up to the maximum.
  int64_t reconnect_min_backoff_ms = 10;
  int64_t reconnect_max_backoff_ms = 1000;
  // When the daemon reserved the pool's pages, map them all at connect
  // (MADV_POPULATE_WRITE), so no copy into a buffer pays first-touch page
  // faults. Costs about 0.1 ms of CPU and 2 KiB of page tables per MiB of
  // pool, once per process, so it is off by default; $MEMD_POPULATE=1 turns
  // it on for C programs.
  bool populate = false;
  // Ask the daemon for a lane: a shared-memory transport for this session's
  // requests, which costs a futex wake-up where the gRPC stream costs a
  // message through gRPC's threads (docs/architecture.md, "Lanes"). Without
  // one (refused, or off here or by $MEMD_LANE=0) every request takes the
  // stream; the two behave alike.
  bool lane = true;
  // Allocations of at most this many bytes through the C API (memd_malloc
  // and the rest of memd/memd.h) are served from session arenas: chunks of
  // the pool this session holds, sub-allocated in this process without a
  // daemon round trip (docs/architecture.md, "Arenas"). 0 turns arenas off.
  // Negative: $MEMD_ARENA_THRESHOLD (bytes, or with a unit: "16KiB"), else
  // 64 KiB. At most 256 KiB (INVALID_ARGUMENT above).
  int64_t arena_threshold_bytes = -1;
  // Attach as a reader: the pool is mapped from a read-only descriptor, so
  // the kernel refuses writes (a store faults, mprotect to write fails), and
  // the daemon refuses allocations (PERMISSION_DENIED); receive, retain,
  // query, release and sends of buffers held work. A consumer of a frame
  // that fan-out shares with others cannot scribble on it. The pool's access
  // (read but not write permission for this uid) makes a session a reader
  // too; Client::read_only() tells. $MEMD_READ_ONLY=1 turns it on as well.
  bool read_only = false;
};

// What the daemon said about the attached pool.
struct PoolInfo {
  std::string name;
  std::string shm_name;          // label of the pool's sealed memfd, "memd.<instance>.<pool>"
  uint64_t size_bytes = 0;
  uint64_t alignment_bytes = 0;  // every buffer's address is a multiple of this
  uint64_t max_alloc_bytes = 0;
  uint32_t index = 0;
};

// One reference-holding answer of the daemon (allocate, realloc, retain).
struct BufferRef {
  uint64_t handle = 0;
  uint64_t offset_bytes = 0;    // from the start of the segment
  uint64_t size_bytes = 0;      // size asked for
  uint64_t capacity_bytes = 0;  // usable bytes (>= size_bytes)
};

// A message taken from a channel: the buffers (now referenced by this
// session) and the sender's metadata.
struct ChannelMessage {
  std::vector<BufferRef> buffers;
  std::string metadata;
};

// References of one buffer now (Client::QueryRefs).
struct RefCount {
  uint64_t handle = 0;
  uint32_t references = 0;  // all holders together; 0 when the buffer is gone
  uint32_t held = 0;        // by this session
};

// What a channel send does with the sender's references.
enum class SendMode {
  kMove,   // each reference moves into the channel: no longer this session's
  kShare,  // this session keeps its references; the channel gets new ones
};

// When a posted send (Client::Post) wakes the daemon.
enum class PostWake {
  kNow,           // at once: a producer that goes on with other work
  kWithNextCall,  // with this Client's next request, which should follow at
                  // once (a filter that posts a frame, then asks for the
                  // next: one wake-up for both), or with collecting it;
                  // at the latest within 25 ms
};

class Client;

// A reference to a pool buffer that releases itself on destruction.
class MEMD_EXPORT Buffer {
 public:
  Buffer() = default;
  Buffer(Buffer&& other) noexcept { *this = std::move(other); }
  Buffer& operator=(Buffer&& other) noexcept;
  Buffer(const Buffer&) = delete;
  Buffer& operator=(const Buffer&) = delete;
  ~Buffer();

  uint8_t* data() const { return data_; }
  size_t size() const { return ref_.size_bytes; }
  size_t capacity() const { return ref_.capacity_bytes; }
  // The 8-byte value to hand to another process, which calls Client::Retain.
  uint64_t handle() const { return ref_.handle; }
  explicit operator bool() const { return client_ != nullptr; }

  // Releases the reference now and reports the daemon's answer. Afterwards
  // the Buffer is empty. Releasing an empty Buffer is OK.
  absl::Status Release();

  // Gives up ownership without releasing: the session keeps the reference
  // (until Client::ReleaseRef or session end). Returns the handle.
  uint64_t Detach();

 private:
  friend class Client;
  Buffer(Client* client, BufferRef ref, uint8_t* data) : client_(client), ref_(ref), data_(data) {}

  Client* client_ = nullptr;
  BufferRef ref_;
  uint8_t* data_ = nullptr;
};

class MEMD_EXPORT Client {
 public:
  // Opens a session, attaches to the pool and maps its segment.
  // Errors: UNAVAILABLE (daemon not reachable at the address), NOT_FOUND
  // (no such pool), PERMISSION_DENIED (cannot open the segment), ...
  static absl::StatusOr<std::unique_ptr<Client>> Connect(ConnectOptions options = {});

  ~Client();
  Client(const Client&) = delete;
  Client& operator=(const Client&) = delete;

  // Allocates `size_bytes` (0 gives a minimal block), zeroed when asked.
  absl::StatusOr<Buffer> Allocate(size_t size_bytes, bool zero = false);
  // Takes a reference to a buffer another process (or this one) allocated.
  absl::StatusOr<Buffer> Retain(uint64_t handle);
  // Resizes a buffer only this session holds; on failure it is unchanged.
  absl::Status Realloc(Buffer& buffer, size_t size_bytes);

  // Reference-level calls without RAII (the C API is built on these). Each
  // successful Allocate/Retain must be balanced by one ReleaseRef.
  absl::StatusOr<BufferRef> AllocateRef(uint64_t size_bytes, bool zero);
  absl::StatusOr<BufferRef> RetainRef(uint64_t handle);
  absl::StatusOr<BufferRef> ReallocRef(uint64_t handle, uint64_t size_bytes);
  // Returns true when this release freed the block.
  absl::StatusOr<bool> ReleaseRef(uint64_t handle);

  // Batches: one round trip for up to 1024 operations, all or nothing.
  // `count` buffers of `size_bytes` each, held once by this session.
  absl::StatusOr<std::vector<BufferRef>> AllocateRefs(uint64_t size_bytes, uint32_t count,
                                                      bool zero = false);
  // One release per handle (repeats allowed); returns how many blocks were
  // freed. While the daemon is away (the session broke before the answer)
  // the releases are noted locally and 0 is returned, as ReleaseRef returns
  // false: the reconnected session does not reclaim those references.
  absl::StatusOr<uint32_t> ReleaseRefs(const std::vector<uint64_t>& handles);
  // Drops one reference per handle without a round trip of its own: the
  // releases travel with this session's next request, and are sent by
  // themselves within 25 ms when no request comes. For consumers that free
  // buffers and then ask for more (a frame loop). Handles not held are ignored.
  void ReleaseRefsLater(const std::vector<uint64_t>& handles);
  // Sends the deferred releases now.
  absl::Status FlushReleases();
  // How many references each buffer has now (1..1024 handles, one round trip):
  // a process that lent buffers knows from `references == held` that nobody
  // else uses them any more.
  absl::StatusOr<std::vector<RefCount>> QueryRefs(const std::vector<uint64_t>& handles);

  // The buffer this session holds that starts at `ptr` (an address
  // Pointer() gave): its handle, offset and sizes, from the session's own
  // record (no round trip). NOT_FOUND for a foreign or interior pointer, or
  // a buffer no longer held.
  absl::StatusOr<BufferRef> Held(const void* ptr) const;

  // Lending. A buffer this session holds and handed to other processes (a
  // shared send, or its handle given away) is lent until they released it:
  // a pool must not reuse it before. Answers, for each of `handles`, whether
  // nobody but this session holds it now: one QueryRefs round trip for the
  // first 1024; the rest, and all when the daemon cannot be asked, answer
  // false (still lent, ask again later).
  std::vector<bool> Returned(const std::vector<uint64_t>& handles);

  // Channels: named queues of buffer references in the daemon (created by
  // their first user with `capacity` messages, 0 = 16). Send moves this
  // session's reference to each handle into the channel (so the handles are
  // no longer this session's to release), or with SendMode::kShare gives the
  // channel new references and keeps this session's; a message may carry
  // metadata only (no handles). When the channel is full it waits up to
  // `timeout_ms` for room (RESOURCE_EXHAUSTED after). Receive takes the
  // oldest message, waiting up to `timeout_ms` for one (DEADLINE_EXCEEDED after).
  absl::Status Send(const std::string& channel, const std::vector<uint64_t>& handles,
                    std::string_view metadata = {}, int64_t timeout_ms = 0,
                    uint32_t capacity = 0, SendMode mode = SendMode::kMove);
  absl::StatusOr<ChannelMessage> Receive(const std::string& channel, int64_t timeout_ms = 0,
                                         uint32_t capacity = 0);

  // A send whose answer is collected later: Post returns once the request is
  // on its way, and the daemon does not wake this process for the answer (a
  // producer that posts a frame and goes on decoding, or a filter that posts
  // a frame and then waits in Receive, sleeps through it). Same arguments
  // and outcomes as Send. One posted send is outstanding per Client: Post,
  // Send and CollectPosted first collect it (waiting while it is parked on a
  // full channel, so backpressure holds), and when it failed they return its
  // error (naming the channel) and do nothing else. The daemon runs one
  // session's requests in order, so a posted send is in the channel (or
  // parked there, holding its references) before any later request of this
  // Client runs. Destroying the Client without collecting drops the answer;
  // a send still parked then is cancelled and its references go with the
  // session.
  absl::Status Post(const std::string& channel, const std::vector<uint64_t>& handles,
                    std::string_view metadata = {}, int64_t timeout_ms = 0,
                    uint32_t capacity = 0, SendMode mode = SendMode::kMove,
                    PostWake wake = PostWake::kNow);
  // Waits for the outstanding posted send's answer; OK when there is none.
  absl::Status CollectPosted();

  // Start of this process's mapping of the segment.
  uint8_t* base() const;
  // Whether this session is a reader (ConnectOptions::read_only): base() is
  // then mapped PROT_READ.
  bool read_only() const;
  uint8_t* Pointer(uint64_t offset_bytes) const { return base() + offset_bytes; }
  const PoolInfo& pool() const;
  // The current session's id (a reconnection opens a new session).
  uint64_t session_id() const;
  const std::string& address() const;

  // Whether the session is up (false while reconnecting or after the pool
  // was lost), and how many times it reconnected.
  bool connected() const;
  uint64_t reconnects() const;

 private:
  struct Impl;
  explicit Client(std::unique_ptr<Impl> impl);
  // libmemd's own code (the C API, arena sends) reaches the session's
  // internals through this one key, defined in its private header
  // client/client_internals.h; nothing outside libmemd can define it.
  friend struct ClientInternals;
  std::unique_ptr<Impl> impl_;
};

}  // namespace memd

#endif  // MEMD_CLIENT_CLIENT_H_
