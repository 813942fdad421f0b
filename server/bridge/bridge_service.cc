#include "bridge/bridge_service.h"

#include <spdlog/spdlog.h>

#include "memd/shared/names.h"
#include "service/status_convert.h"

namespace memd::bridge {

grpc::Status BridgeService::Deliver(grpc::ServerContext* context, Inbound::Stream* stream) {
  absl::StatusOr<std::string> peer = engine_.PeerOf(*context);
  if (!peer.ok()) {
    spdlog::warn("bridge stream from {} refused: {}", context->peer(),
                 std::string(peer.status().message()));
    return ToGrpcStatus(peer.status());
  }
  v1::BridgeOffer first;
  if (!stream->Read(&first)) return grpc::Status::CANCELLED;
  if (!first.has_hello()) {
    return ToGrpcStatus(absl::InvalidArgumentError(
        "the first message of a bridge stream must carry the hello"));
  }
  absl::Status s = engine_.Deliver(*peer, context, stream, first.hello());
  if (!s.ok() && !absl::IsCancelled(s)) {
    spdlog::warn("bridge '{}' from node '{}': {}", first.hello().bridge(), *peer,
                 std::string(s.message()));
  }
  return ToGrpcStatus(s);
}

grpc::Status BridgeService::Read(grpc::ServerContext* context,
                                 const v1::BridgeReadRequest* request,
                                 grpc::ServerWriter<v1::BridgeChunk>* writer) {
  absl::StatusOr<std::string> peer = engine_.PeerOf(*context);
  if (!peer.ok()) return ToGrpcStatus(peer.status());
  return ToGrpcStatus(engine_.Read(*peer, *request, writer));
}

grpc::Status BridgeAdminService::ListBridges(grpc::ServerContext*,
                                             const v1::ListBridgesRequest*,
                                             v1::ListBridgesResponse* response) {
  *response = engine_.List();
  return grpc::Status::OK;
}

}  // namespace memd::bridge

namespace memd::bridge {

grpc::Status BridgeAdminService::AddBridge(grpc::ServerContext* context,
                                           const v1::AddBridgeRequest* request,
                                           v1::AddBridgeResponse*) {
  if (absl::Status s = admin_.AuthorizeAdmin(*context, "bridge add"); !s.ok()) {
    return ToGrpcStatus(s);
  }
  BridgeSpec spec{request->pool(), request->channel(), request->peer()};
  for (auto [what, value] : {std::pair{"bridge pool", &spec.pool},
                             std::pair{"bridge channel", &spec.channel},
                             std::pair{"bridge peer", &spec.peer}}) {
    if (absl::Status s = ValidateName(what, *value); !s.ok()) return ToGrpcStatus(s);
  }
  absl::Status s = engine_.Add(spec);
  if (s.ok()) spdlog::info("bridge '{}' to peer '{}' added", spec.name(), spec.peer);
  return ToGrpcStatus(s);
}

grpc::Status BridgeAdminService::RemoveBridge(grpc::ServerContext* context,
                                              const v1::RemoveBridgeRequest* request,
                                              v1::RemoveBridgeResponse* response) {
  if (absl::Status s = admin_.AuthorizeAdmin(*context, "bridge remove"); !s.ok()) {
    return ToGrpcStatus(s);
  }
  absl::StatusOr<uint64_t> dropped = engine_.Remove(request->name());
  if (!dropped.ok()) return ToGrpcStatus(dropped.status());
  response->set_dropped_messages(*dropped);
  spdlog::info("bridge '{}' removed", request->name());
  return grpc::Status::OK;
}

}  // namespace memd::bridge
