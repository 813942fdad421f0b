// memctl's calls to the daemon's Admin service: one channel, a deadline per
// call (--timeout), and the exit code for a failed call (memctl.h).
// Single-threaded: memctl's main thread only.
#ifndef MEMD_CLIENT_MEMCTL_ADMIN_CALL_H_
#define MEMD_CLIENT_MEMCTL_ADMIN_CALL_H_

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <memory>
#include <string>

#include <grpcpp/grpcpp.h>

#include "absl/time/time.h"
#include "memd/v1/admin.grpc.pb.h"
#include "memctl/memctl.h"

namespace memd {

struct Connection {
  std::string address;  // as the user gave it, for messages
  std::unique_ptr<v1::Admin::Stub> stub;
  absl::Duration timeout;  // each call's deadline (--timeout)
};

// Exit code for a failed RPC, with the message on stderr.
int ReportRpcError(const Connection& conn, const grpc::Status& status);

// Runs one unary Admin call within conn.timeout; returns the exit code.
template <typename Request, typename Response, typename Method>
int Call(Connection& conn, Method method, const Request& request, Response* response) {
  grpc::ClientContext context;
  context.set_deadline(std::chrono::system_clock::now() + absl::ToChronoNanoseconds(conn.timeout));
  grpc::Status status = (conn.stub.get()->*method)(&context, request, response);
  return status.ok() ? kExitOk : ReportRpcError(conn, status);
}

// Pages through a listing (ListSessions, ListBuffers): asks for pages of at
// most `page_size` entries (0: as many as the daemon gives a page) until the
// daemon says the list ends or `want` entries came (0: all), and gathers them
// in *all, whose next_page_token says whether more were left. `entries`
// picks a page's repeated field. Returns the exit code of the first failed
// call, or kExitOk.
template <typename Request, typename Response, typename Method, typename Entries>
int CallPaged(Connection& conn, Method method, Request request, uint32_t page_size, uint64_t want,
              Entries entries, Response* all) {
  uint64_t have = 0;
  do {
    uint64_t left = page_size == 0 ? UINT32_MAX : page_size;
    if (want != 0) left = std::min(left, want - have);
    request.set_limit(static_cast<uint32_t>(left));
    Response page;
    if (int code = Call(conn, method, request, &page); code != kExitOk) return code;
    have += static_cast<uint64_t>(entries(&page)->size());
    for (auto& entry : *entries(&page)) *entries(all)->Add() = std::move(entry);
    all->set_next_page_token(page.next_page_token());
    request.set_page_token(page.next_page_token());
  } while (all->next_page_token() != 0 && (want == 0 || have < want));
  return kExitOk;
}

}  // namespace memd

#endif  // MEMD_CLIENT_MEMCTL_ADMIN_CALL_H_
