// The one place where absl::Status (and a pool's BufferInfo) crosses into
// the wire formats. Both
// functions pass the message through ValidUtf8 (memd/shared/text.h): a
// message that quoted a client's bytes unescaped must still parse.
#ifndef MEMD_SERVER_SERVICE_STATUS_CONVERT_H_
#define MEMD_SERVER_SERVICE_STATUS_CONVERT_H_

#include <grpcpp/support/status.h>

#include "absl/status/status.h"
#include "memd/v1/memory.pb.h"
#include "pool/pool.h"

namespace memd {

grpc::Status ToGrpcStatus(const absl::Status& status);

// Fills status_code/status_message of a session response.
void SetResponseStatus(const absl::Status& status, v1::SessionResponse* response);

// A buffer a pool answered with, as the wire carries it.
void FillBuffer(const BufferInfo& info, v1::BufferInfo* out);

}  // namespace memd

#endif  // MEMD_SERVER_SERVICE_STATUS_CONVERT_H_
