// Descriptor handoff: how a client gets the memory objects of its session
// (the pool's sealed memfd, its lane's) and how it hands a pool's memfd back
// to a restarted daemon. Pool and lane memory have no name anyone could open
// or truncate (docs/security.md): the only way to map them is a descriptor
// the daemon passes with SCM_RIGHTS after its checks.
//
// It travels on a connection of its own to the daemon's Unix socket, the
// same path the gRPC channel dials: the daemon's listener peeks at the first
// bytes of every new connection and serves one that starts with kMagic
// itself (gRPC's start with the HTTP/2 preface "PRI * HTTP/2.0"). One
// request, one reply, then both sides close:
//
//   client → daemon: Request (48 bytes), plus one descriptor for kReturnPool
//   daemon → client: Reply (16 bytes) + message_bytes of text, plus one
//                    descriptor when status_code is 0 and the kind asks for one
//
// Integers are the host's (both ends share a kernel). Thread-safe: plain
// functions on descriptors the caller owns.
#ifndef MEMD_SHARED_FD_HANDOFF_H_
#define MEMD_SHARED_FD_HANDOFF_H_

#include <cstdint>
#include <string>

#include "absl/status/statusor.h"
#include "memd/shared/unique_fd.h"

namespace memd::fd_handoff {

inline constexpr char kMagic[8] = {'M', 'E', 'M', 'D', 'F', 'D', '0', '1'};
// Bytes of session secret a request proves its session with (AttachResponse.ticket).
inline constexpr size_t kTicketBytes = 16;
// Longest reply text (bytes); a longer message is cut.
inline constexpr uint32_t kMaxMessageBytes = 1024;

enum class Kind : uint32_t {
  kPoolMemory = 1,  // the memfd of the session's pool
  kLaneMemory = 2,  // the memfd of the session's lane (after open_lane)
  // A client of a daemon that restarted offers the pool memfd it kept:
  // `session_id` is 0, `segment_id` the segment it mapped, `pool_index` the
  // pool's index; the descriptor rides with the request.
  kReturnPool = 3,
};

struct Request {
  char magic[8];
  uint32_t kind;        // a Kind
  uint32_t pool_index;  // kReturnPool only
  uint64_t session_id;  // kPoolMemory, kLaneMemory
  uint8_t ticket[kTicketBytes];
  uint64_t segment_id;  // kReturnPool only
};
static_assert(sizeof(Request) == 48, "the request is a fixed 48 bytes on the wire");

struct Reply {
  int32_t status_code;     // google.rpc.Code numbering; 0 = OK
  uint32_t message_bytes;  // text that follows, at most kMaxMessageBytes
  uint64_t size_bytes;     // size of the object passed (bytes); 0 without one
};
static_assert(sizeof(Reply) == 16, "the reply header is a fixed 16 bytes on the wire");

// Client side: connects to the Unix socket at `socket_path`, sends `request`
// (with `give`, when valid, attached) and returns the descriptor the daemon
// passed back: an invalid UniqueFd when the kind passes none. The daemon's
// refusal comes back as its status; a socket error as UNAVAILABLE.
absl::StatusOr<UniqueFd> Exchange(const std::string& socket_path, const Request& request,
                                  int give = -1);

// Daemon side. Reads a whole Request from a connection whose bytes are
// already there (the listener waited for them), with the descriptor that may
// ride with it (invalid when none came).
absl::StatusOr<Request> ReadRequest(int connection, UniqueFd* passed);
// Writes the reply (and `fd` when valid) without blocking: the connection's
// send buffer is empty, so a reply always fits.
void WriteReply(int connection, const absl::Status& status, int fd, uint64_t size_bytes);

// A Request with magic and kind set and everything else 0.
Request MakeRequest(Kind kind);

}  // namespace memd::fd_handoff

#endif  // MEMD_SHARED_FD_HANDOFF_H_
