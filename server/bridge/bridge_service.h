// The gRPC adapters of the bridge engine (proto/memd/v1/bridge.proto): the
// Bridge service peers call and the BridgeAdmin service memctl calls. They
// only authenticate, read the hello and convert statuses (the one place
// absl::Status becomes grpc::Status for them); the Engine decides.
//
// Ownership: owned by the Daemon, registered with its gRPC server, outliving
// it; the Engine outlives them. Thread-safe (sync handlers on gRPC threads).
#ifndef MEMD_SERVER_BRIDGE_BRIDGE_SERVICE_H_
#define MEMD_SERVER_BRIDGE_BRIDGE_SERVICE_H_

#include "bridge/engine.h"
#include "memd/v1/bridge.grpc.pb.h"
#include "service/admin_service.h"

namespace memd::bridge {

class BridgeService final : public v1::Bridge::Service {
 public:
  explicit BridgeService(Engine& engine) : engine_(engine) {}
  grpc::Status Deliver(grpc::ServerContext* context, Inbound::Stream* stream) override;
  grpc::Status Read(grpc::ServerContext* context, const v1::BridgeReadRequest* request,
                    grpc::ServerWriter<v1::BridgeChunk>* writer) override;

 private:
  Engine& engine_;
};

// `admin` decides who may add and remove bridges (the rule of every admin
// operation); it outlives this service.
class BridgeAdminService final : public v1::BridgeAdmin::Service {
 public:
  BridgeAdminService(Engine& engine, const AdminService& admin) : engine_(engine), admin_(admin) {}
  grpc::Status ListBridges(grpc::ServerContext* context, const v1::ListBridgesRequest* request,
                           v1::ListBridgesResponse* response) override;
  grpc::Status AddBridge(grpc::ServerContext* context, const v1::AddBridgeRequest* request,
                         v1::AddBridgeResponse* response) override;
  grpc::Status RemoveBridge(grpc::ServerContext* context, const v1::RemoveBridgeRequest* request,
                            v1::RemoveBridgeResponse* response) override;

 private:
  Engine& engine_;
  const AdminService& admin_;
};

}  // namespace memd::bridge

#endif  // MEMD_SERVER_BRIDGE_BRIDGE_SERVICE_H_
