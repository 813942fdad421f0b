#include "service/admin_service.h"

#include "service/admin_answer.h"
#include "service/status_convert.h"

namespace memd {
namespace {

// Every Admin call ends here: `answer` passes the UTF-8 guard before it goes
// out (when the call succeeded).
grpc::ServerUnaryReactor* Done(RpcTimer& timer, grpc::CallbackServerContext* context,
                               const absl::Status& status, google::protobuf::Message* answer) {
  if (status.ok()) MakeStringsValid(answer);
  timer.set_code(status.code());
  grpc::ServerUnaryReactor* reactor = context->DefaultReactor();
  reactor->Finish(ToGrpcStatus(status));
  return reactor;
}

}  // namespace

AdminCaller AdminService::CallerOf(grpc::CallbackServerContext* context) const {
  return AdminCaller{peers_.Lookup(context->peer()), context->peer()};
}

grpc::ServerUnaryReactor* AdminService::GetStats(grpc::CallbackServerContext* context,
                                                 const v1::GetStatsRequest* request,
                                                 v1::GetStatsResponse* response) {
  RpcTimer timer(metrics_, Rpc::kGetStats);
  return Done(timer, context, handler_.GetStats(*request, response), response);
}

grpc::ServerUnaryReactor* AdminService::CheckPools(grpc::CallbackServerContext* context,
                                                   const v1::CheckPoolsRequest* request,
                                                   v1::CheckPoolsResponse* response) {
  RpcTimer timer(metrics_, Rpc::kCheckPools);
  return Done(timer, context, handler_.CheckPools(*request, response), response);
}

grpc::ServerUnaryReactor* AdminService::ListSessions(grpc::CallbackServerContext* context,
                                                     const v1::ListSessionsRequest* request,
                                                     v1::ListSessionsResponse* response) {
  RpcTimer timer(metrics_, Rpc::kListSessions);
  return Done(timer, context, handler_.ListSessions(*request, response), response);
}

grpc::ServerUnaryReactor* AdminService::ListBuffers(grpc::CallbackServerContext* context,
                                                    const v1::ListBuffersRequest* request,
                                                    v1::ListBuffersResponse* response) {
  RpcTimer timer(metrics_, Rpc::kListBuffers);
  return Done(timer, context, handler_.ListBuffers(*request, response), response);
}

grpc::ServerUnaryReactor* AdminService::SetMaxAlloc(grpc::CallbackServerContext* context,
                                                    const v1::SetMaxAllocRequest* request,
                                                    v1::SetMaxAllocResponse* response) {
  RpcTimer timer(metrics_, Rpc::kSetMaxAlloc);
  return Done(timer, context, handler_.SetMaxAlloc(CallerOf(context), *request, response),
              response);
}

grpc::ServerUnaryReactor* AdminService::EndSession(grpc::CallbackServerContext* context,
                                                   const v1::EndSessionRequest* request,
                                                   v1::EndSessionResponse* response) {
  RpcTimer timer(metrics_, Rpc::kEndSession);
  return Done(timer, context, handler_.EndSession(CallerOf(context), *request, response),
              response);
}

grpc::ServerUnaryReactor* AdminService::DrainChannel(grpc::CallbackServerContext* context,
                                                     const v1::DrainChannelRequest* request,
                                                     v1::DrainChannelResponse* response) {
  RpcTimer timer(metrics_, Rpc::kDrainChannel);
  return Done(timer, context, handler_.DrainChannel(CallerOf(context), *request, response),
              response);
}

grpc::ServerUnaryReactor* AdminService::DeleteChannel(grpc::CallbackServerContext* context,
                                                      const v1::DeleteChannelRequest* request,
                                                      v1::DeleteChannelResponse* response) {
  RpcTimer timer(metrics_, Rpc::kDeleteChannel);
  return Done(timer, context, handler_.DeleteChannel(CallerOf(context), *request, response),
              response);
}

grpc::ServerUnaryReactor* AdminService::Shutdown(grpc::CallbackServerContext* context,
                                                 const v1::ShutdownRequest* request,
                                                 v1::ShutdownResponse* response) {
  RpcTimer timer(metrics_, Rpc::kShutdown);
  return Done(timer, context, handler_.Shutdown(CallerOf(context), *request, response), response);
}

grpc::ServerUnaryReactor* AdminService::StartTrace(grpc::CallbackServerContext* context,
                                                   const v1::StartTraceRequest* request,
                                                   v1::StartTraceResponse* response) {
  RpcTimer timer(metrics_, Rpc::kStartTrace);
  return Done(timer, context, handler_.StartTrace(CallerOf(context), *request, response),
              response);
}

grpc::ServerUnaryReactor* AdminService::ReadTrace(grpc::CallbackServerContext* context,
                                                  const v1::ReadTraceRequest* request,
                                                  v1::ReadTraceResponse* response) {
  RpcTimer timer(metrics_, Rpc::kReadTrace);
  return Done(timer, context, handler_.ReadTrace(CallerOf(context), *request, response),
              response);
}

}  // namespace memd
