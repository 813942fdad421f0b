// SessionStream: the client end of one Memory.Session stream, shared by all
// threads of a Client. Private to libmemd.
//
// Requests are written under a write lock and matched to responses by
// request_id (CallRouter: leader/follower reading, no reader thread).
//
// Thread-safe. Once the stream breaks, every call fails with UNAVAILABLE.
#ifndef MEMD_CLIENT_SESSION_STREAM_H_
#define MEMD_CLIENT_SESSION_STREAM_H_

#include <cstdint>
#include <memory>
#include <string>

#include <grpcpp/grpcpp.h>

#include "absl/base/thread_annotations.h"
#include "call_router.h"
#include "absl/status/statusor.h"
#include "memd/shared/mutex.h"
#include "memd/v1/memory.grpc.pb.h"

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
  // A request whose answer Collect(id) returns later (CallRouter::Post).
  absl::StatusOr<uint64_t> Post(v1::SessionRequest request) {
    return router_.Post(std::move(request));
  }
  absl::StatusOr<v1::SessionResponse> Collect(uint64_t id) { return router_.Collect(id); }

  // The operation status carried in a response.
  static absl::Status StatusOf(const v1::SessionResponse& response);

 private:
  const std::string address_;
  std::unique_ptr<v1::Memory::Stub> stub_;
  grpc::ClientContext context_;
  std::unique_ptr<grpc::ClientReaderWriter<v1::SessionRequest, v1::SessionResponse>> stream_;

  Mutex write_mu_;  // serializes Write() (gRPC allows one writer at a time)
  CallRouter router_;
};

}  // namespace memd

#endif  // MEMD_CLIENT_SESSION_STREAM_H_
