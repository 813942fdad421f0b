// SessionStream: the client end of one Memory.Session stream, shared by all
// threads of a Client. Private to libmemd.
//
// Requests are written under a write lock and matched to responses by
// request_id. There is no reader thread: a caller waiting for its response
// becomes the reader when nobody else is reading and hands other callers'
// responses over (leader/follower). One thread pays no thread hop; several
// threads pipeline their requests on the one stream.
//
// Thread-safe. Once the stream breaks, every call fails with UNAVAILABLE.
#ifndef MEMD_CLIENT_SESSION_STREAM_H_
#define MEMD_CLIENT_SESSION_STREAM_H_

#include <cstdint>
#include <memory>
#include <string>

#include <grpcpp/grpcpp.h>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/status/statusor.h"
#include "memd/shared/mutex.h"
#include "memd/v1/memd.grpc.pb.h"

namespace memd {

class SessionStream {
 public:
  // Opens the stream on `channel`. `address` is only used in messages.
  SessionStream(std::shared_ptr<grpc::Channel> channel, std::string address);
  ~SessionStream();

  // Sends `request` (its request_id is assigned here) and waits for the reply.
  // The transport status comes back as the error; the operation's own status
  // is in the response's status_code (see StatusOf).
  absl::StatusOr<v1::SessionResponse> Call(v1::SessionRequest request);

  // The operation status carried in a response.
  static absl::Status StatusOf(const v1::SessionResponse& response);

 private:
  struct Waiter {
    v1::SessionResponse response;
    bool done = false;
  };

  // REQUIRES: mu_ held. Marks the stream broken and wakes every waiter.
  void BreakLocked(const std::string& why) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  const std::string address_;
  std::unique_ptr<v1::Memory::Stub> stub_;
  grpc::ClientContext context_;
  std::unique_ptr<grpc::ClientReaderWriter<v1::SessionRequest, v1::SessionResponse>> stream_;

  Mutex write_mu_;  // serializes Write() (gRPC allows one writer at a time)
  Mutex mu_;
  CondVar cv_;
  uint64_t next_request_id_ ABSL_GUARDED_BY(mu_) = 1;
  absl::flat_hash_map<uint64_t, Waiter*> waiters_ ABSL_GUARDED_BY(mu_);
  bool reading_ ABSL_GUARDED_BY(mu_) = false;
  bool broken_ ABSL_GUARDED_BY(mu_) = false;
  std::string broken_reason_ ABSL_GUARDED_BY(mu_);
};

}  // namespace memd

#endif  // MEMD_CLIENT_SESSION_STREAM_H_
