#include "memctl/admin_call.h"

#include <iostream>

namespace memd {

int ReportRpcError(const Connection& conn, const grpc::Status& status) {
  bool unreachable = status.error_code() == grpc::StatusCode::UNAVAILABLE ||
                     status.error_code() == grpc::StatusCode::DEADLINE_EXCEEDED;
  std::cerr << "memctl: " << (unreachable ? "cannot reach memd at " : "memd at ") << conn.address
            << (unreachable ? ": " : " failed: ") << status.error_message();
  if (status.error_code() == grpc::StatusCode::DEADLINE_EXCEEDED) {
    std::cerr << " (no answer within --timeout " << absl::FormatDuration(conn.timeout) << ")";
  }
  std::cerr << "\n";
  return unreachable ? kExitUnreachable : kExitDaemonError;
}

}  // namespace memd
