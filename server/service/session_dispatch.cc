// SessionHandler::Handle: the checks every request gets (closed, attached,
// release_first), then one function per operation. The wire limits are
// memd/shared/limits.h's; each refusal names the value and the limit.
#include "absl/strings/str_format.h"
#include "memd/shared/limits.h"
#include "service/session_handler.h"
#include "service/status_convert.h"
#include "trace/trace_points.h"

#include <spdlog/spdlog.h>

namespace memd {
namespace {

Rpc RpcOf(const v1::SessionRequest& request) {
  switch (request.op_case()) {
    case v1::SessionRequest::kAllocate: return Rpc::kAllocate;
    case v1::SessionRequest::kRealloc: return Rpc::kRealloc;
    case v1::SessionRequest::kRetain: return Rpc::kRetain;
    case v1::SessionRequest::kRelease: return Rpc::kRelease;
    case v1::SessionRequest::kReclaim: return Rpc::kReclaim;
    case v1::SessionRequest::kAllocateBatch: return Rpc::kAllocateBatch;
    case v1::SessionRequest::kReleaseBatch: return Rpc::kReleaseBatch;
    case v1::SessionRequest::kSend: return Rpc::kSend;
    case v1::SessionRequest::kReceive: return Rpc::kReceive;
    case v1::SessionRequest::kQuery: return Rpc::kQuery;
    case v1::SessionRequest::kClose: return Rpc::kRelease;
    case v1::SessionRequest::kArenaRegister: return Rpc::kRetain;  // a new reference, like retain
    case v1::SessionRequest::kArenaReport: return Rpc::kQuery;
    default: return Rpc::kAttach;  // attach, and requests without an operation
  }
}

// The operations a reader may not do (AttachRequest.read_only): they make
// or change buffers of pool memory. The name for the refusal, or null.
const char* PoolWriteOf(const v1::SessionRequest& request) {
  switch (request.op_case()) {
    case v1::SessionRequest::kAllocate: return "allocate";
    case v1::SessionRequest::kRealloc: return "realloc";
    case v1::SessionRequest::kAllocateBatch: return "allocate_batch";
    case v1::SessionRequest::kArenaRegister: return "arena_register";
    case v1::SessionRequest::kArenaReport: return "arena_report";
    case v1::SessionRequest::kSend:
      return request.send().register_first_size() > 0 ? "a send's register_first" : nullptr;
    default: return nullptr;
  }
}

// Allocate, realloc and retain all answer with the buffer they hold.
absl::Status ReplyBuffer(const absl::StatusOr<BufferInfo>& info, v1::SessionResponse* response) {
  if (info.ok()) FillBuffer(*info, response->mutable_buffer());
  return info.status();
}

}  // namespace

bool SessionHandler::Handle(const v1::SessionRequest& request, v1::SessionResponse* response,
                            const std::function<void(v1::SessionResponse)>& later) {
  RpcTimer timer(metrics_, RpcOf(request));
  response->set_request_id(request.request_id());
  if (!closed_ && pool_ != nullptr && request.release_first_size() > 0) {
    if (absl::Status s = ReleaseFirst(request); !s.ok()) {
      timer.set_code(s.code());
      SetResponseStatus(s, response);
      return true;
    }
  }
  if (const char* write = PoolWriteOf(request);
      !closed_ && pool_ != nullptr && read_only_ && write != nullptr) {
    absl::Status s = absl::PermissionDeniedError(absl::StrFormat(
        "session %u is a reader of pool '%s' (read-only access): %s needs a writer's session",
        session_id_, pool_->name(), write));
    timer.set_code(s.code());
    SetResponseStatus(s, response);
    return true;
  }
  if (!closed_ && pool_ != nullptr && channels_ != nullptr &&
      (request.has_send() || request.has_receive())) {
    return HandleChannel(request, response, later, timer);
  }
  absl::Status status;
  if (closed_) {
    status = absl::FailedPreconditionError("session is closed");
  } else if (request.has_attach()) {
    status = Attach(request.attach(), response->mutable_attach());
  } else if (pool_ == nullptr) {
    status = absl::FailedPreconditionError(
        "the first request of a session must be attach (name the pool to use)");
  } else {
    status = Dispatch(request, response);
  }
  if (!status.ok()) {
    spdlog::debug("session {}: request {} failed: {}", session_id_, request.request_id(),
                  status.ToString());
  }
  timer.set_code(status.code());
  SetResponseStatus(status, response);
  return true;
}

absl::Status SessionHandler::Dispatch(const v1::SessionRequest& request,
                                      v1::SessionResponse* response) {
  switch (request.op_case()) {
    case v1::SessionRequest::kAllocate: return Allocate(request.allocate(), response);
    case v1::SessionRequest::kRealloc: return Realloc(request.realloc(), response);
    case v1::SessionRequest::kRetain: return Retain(request.retain(), response);
    case v1::SessionRequest::kReclaim: return Reclaim(request.reclaim(), response->mutable_reclaim());
    case v1::SessionRequest::kAllocateBatch:
      return AllocateBatch(request.allocate_batch(), response);
    case v1::SessionRequest::kReleaseBatch: return ReleaseBatch(request.release_batch(), response);
    case v1::SessionRequest::kQuery: return Query(request.query(), response);
    case v1::SessionRequest::kRelease: return Release(request.release(), response);
    case v1::SessionRequest::kClose: return CloseByClient(response);
    case v1::SessionRequest::kArenaRegister:
      return ArenaRegister(request.arena_register(), response->mutable_arena_registered());
    case v1::SessionRequest::kArenaReport:
      return ArenaReport(request.arena_report(), response->mutable_arena_reported());
    default:
      return absl::InvalidArgumentError(absl::StrFormat(
          "request %u carries no operation (op field %d unknown to this daemon)",
          request.request_id(), static_cast<int>(request.op_case())));
  }
}

absl::Status SessionHandler::Allocate(const v1::AllocateRequest& allocate,
                                      v1::SessionResponse* response) {
  absl::StatusOr<BufferInfo> info = pool_->Allocate(holder_, allocate.size_bytes(), allocate.zero());
  if (info.ok()) trace::Allocated(pool_->index(), session_id_, info->handle, info->size_bytes);
  return ReplyBuffer(info, response);
}

absl::Status SessionHandler::Realloc(const v1::ReallocRequest& realloc,
                                     v1::SessionResponse* response) {
  return ReplyBuffer(pool_->Realloc(holder_, realloc.handle(), realloc.size_bytes()), response);
}

absl::Status SessionHandler::Retain(const v1::RetainRequest& retain,
                                    v1::SessionResponse* response) {
  absl::StatusOr<BufferInfo> info = pool_->Retain(holder_, retain.handle());
  if (info.ok()) trace::Retained(pool_->index(), session_id_, info->handle, info->size_bytes);
  return ReplyBuffer(info, response);
}

absl::Status SessionHandler::AllocateBatch(const v1::AllocateBatchRequest& batch,
                                           v1::SessionResponse* response) {
  if (batch.count() == 0 || batch.count() > limits::kMaxBatch) {
    return absl::InvalidArgumentError(absl::StrFormat(
        "allocate_batch count %u must be from 1 to %u", batch.count(), limits::kMaxBatch));
  }
  auto infos = pool_->AllocateMany(holder_, batch.size_bytes(), batch.count(), batch.zero());
  if (infos.ok()) {
    for (const BufferInfo& info : *infos) {
      trace::Allocated(pool_->index(), session_id_, info.handle, info.size_bytes);
      FillBuffer(info, response->mutable_buffers()->add_buffers());
    }
  }
  return infos.status();
}

absl::Status SessionHandler::ReleaseBatch(const v1::ReleaseBatchRequest& batch,
                                          v1::SessionResponse* response) {
  const auto& handles = batch.handles();
  if (handles.empty() || static_cast<uint32_t>(handles.size()) > limits::kMaxBatch) {
    return absl::InvalidArgumentError(absl::StrFormat(
        "release_batch of %d handles; from 1 to %u are allowed", handles.size(), limits::kMaxBatch));
  }
  auto freed = pool_->ReleaseMany(holder_, std::vector<uint64_t>(handles.begin(), handles.end()));
  if (freed.ok()) {
    for (uint64_t handle : handles) trace::Released(pool_->index(), session_id_, handle);
    response->mutable_release_batch()->set_freed(*freed);
  }
  return freed.status();
}

absl::Status SessionHandler::Query(const v1::QueryRequest& query, v1::SessionResponse* response) {
  const auto& handles = query.handles();
  if (handles.empty() || static_cast<uint32_t>(handles.size()) > limits::kMaxBatch) {
    return absl::InvalidArgumentError(absl::StrFormat(
        "query of %d handles; from 1 to %u are allowed", handles.size(), limits::kMaxBatch));
  }
  std::vector<uint64_t> wanted(handles.begin(), handles.end());
  std::vector<Pool::References> counts = pool_->Query(holder_, wanted);
  for (size_t i = 0; i < wanted.size(); ++i) {
    v1::HandleReferences* r = response->mutable_references()->add_handles();
    r->set_handle(wanted[i]);
    r->set_references(counts[i].total);
    r->set_held(counts[i].held);
  }
  return absl::OkStatus();
}

absl::Status SessionHandler::Release(const v1::ReleaseRequest& release,
                                     v1::SessionResponse* response) {
  auto freed = pool_->Release(holder_, release.handle());
  if (freed.ok()) {
    trace::Released(pool_->index(), session_id_, release.handle());
    response->mutable_release()->set_freed(*freed);
  }
  return freed.status();
}

absl::Status SessionHandler::CloseByClient(v1::SessionResponse* response) {
  // The client ends the session on purpose: nothing of it is kept.
  closed_by_client_ = true;
  response->mutable_closed()->set_released(pool_->ReleaseAll(holder_));
  return absl::OkStatus();
}

absl::Status SessionHandler::ReleaseFirst(const v1::SessionRequest& request) {
  const auto& handles = request.release_first();
  if (static_cast<uint32_t>(handles.size()) > limits::kMaxBatch) {
    return absl::InvalidArgumentError(absl::StrFormat(
        "release_first of %d handles; at most %u are allowed", handles.size(), limits::kMaxBatch));
  }
  absl::StatusOr<uint32_t> freed =
      pool_->ReleaseMany(holder_, std::vector<uint64_t>(handles.begin(), handles.end()));
  if (freed.ok()) {
    for (uint64_t handle : handles) trace::Released(pool_->index(), session_id_, handle);
  }
  return freed.status();
}

bool SessionHandler::HandleChannel(const v1::SessionRequest& request,
                                   v1::SessionResponse* response,
                                   const std::function<void(v1::SessionResponse)>& later,
                                   RpcTimer& timer) {
  uint64_t id = request.request_id();
  if (request.has_send()) {
    const v1::ChannelSendRequest& send = request.send();
    std::vector<uint64_t> handles(send.handles().begin(), send.handles().end());
    // Arena blocks sent for the first time get their handles here, in this
    // round trip (register_first); a failed send releases them again.
    std::vector<BufferInfo> registered;
    if (send.register_first_size() > 0) {
      absl::StatusOr<std::vector<BufferInfo>> ranges = RegisterForSend(send, &handles);
      if (!ranges.ok()) {
        timer.set_code(ranges.status().code());
        SetResponseStatus(ranges.status(), response);
        return true;
      }
      registered = std::move(*ranges);
    }
    // Fills the answer; undoes the registrations of a failed send. Runs on
    // this thread, or later on the thread that ended the wait.
    auto answer = [pool = pool_, holder = holder_, registered](absl::Status status,
                                                               v1::SessionResponse* r) {
      if (status.ok()) {
        v1::ChannelSendResponse* sent = r->mutable_sent();
        for (const BufferInfo& info : registered) FillBuffer(info, sent->add_registered());
      } else {
        ReleaseRegistered(*pool, holder, registered);
      }
      SetResponseStatus(status, r);
    };
    auto done = [later, id, answer](absl::Status status) {
      v1::SessionResponse r;
      r.set_request_id(id);
      answer(status, &r);
      if (later) later(std::move(r));
    };
    std::optional<absl::Status> now = channels_->Send(
        *pool_, holder_, session_id_, send.channel(), std::move(handles), send.metadata(),
        send.capacity(), later ? absl::Milliseconds(send.timeout_ms()) : absl::ZeroDuration(),
        send.share() ? Pool::TransferMode::kShare : Pool::TransferMode::kMove, done);
    if (!now) return false;
    timer.set_code(now->code());
    answer(*now, response);
    return true;
  }
  const v1::ChannelReceiveRequest& receive = request.receive();
  auto fill = [](const absl::StatusOr<ReceivedMessage>& got, v1::SessionResponse* r) {
    if (got.ok()) {
      for (const BufferInfo& info : got->buffers) FillBuffer(info, r->mutable_message()->add_buffers());
      r->mutable_message()->set_metadata(got->metadata);
    }
    SetResponseStatus(got.status(), r);
  };
  auto done = [later, id, fill](absl::StatusOr<ReceivedMessage> got) {
    v1::SessionResponse r;
    r.set_request_id(id);
    fill(got, &r);
    if (later) later(std::move(r));
  };
  std::optional<absl::StatusOr<ReceivedMessage>> now = channels_->Receive(
      *pool_, holder_, session_id_, receive.channel(), receive.capacity(),
      later ? absl::Milliseconds(receive.timeout_ms()) : absl::ZeroDuration(), done);
  if (!now) return false;
  timer.set_code(now->status().code());
  fill(*now, response);
  return true;
}

}  // namespace memd
