#include "bridge/grpc/grpc_transport.h"

#include <cstring>

#include <grpcpp/client_context.h>

#include "absl/strings/str_format.h"
#include "memd/v1/bridge.grpc.pb.h"
#include "service/status_convert.h"

namespace memd::bridge {
namespace {

// One peer's Bridge stub; each Pull is one Read call.
class GrpcConnection : public PullConnection {
 public:
  GrpcConnection(std::string peer, std::shared_ptr<grpc::Channel> channel)
      : peer_(std::move(peer)), stub_(v1::Bridge::NewStub(channel)) {}

  absl::Status Pull(std::string_view region, uint64_t offset, void* dst, size_t length,
                    absl::Time deadline) override {
    grpc::ClientContext context;
    context.set_deadline(absl::ToChronoTime(deadline));
    v1::BridgeReadRequest request;
    request.set_region(std::string(region));
    request.set_offset_bytes(offset);
    request.set_length_bytes(length);
    std::unique_ptr<grpc::ClientReader<v1::BridgeChunk>> reader = stub_->Read(&context, request);
    v1::BridgeChunk chunk;
    size_t got = 0;
    while (reader->Read(&chunk)) {
      if (chunk.data().size() > length - got) {
        context.TryCancel();
        reader->Finish().ok();
        return absl::DataLossError(absl::StrFormat(
            "peer '%s' sent more than the %u bytes asked at offset %u of region '%s'", peer_,
            length, offset, region));
      }
      std::memcpy(static_cast<uint8_t*>(dst) + got, chunk.data().data(), chunk.data().size());
      got += chunk.data().size();
    }
    grpc::Status status = reader->Finish();
    if (!status.ok()) {
      return absl::Status(static_cast<absl::StatusCode>(status.error_code()),
                          absl::StrFormat("pull of %u bytes from peer '%s': %s", length, peer_,
                                          status.error_message()));
    }
    if (got != length) {
      return absl::UnavailableError(absl::StrFormat(
          "pull from peer '%s' ended after %u of %u bytes", peer_, got, length));
    }
    return absl::OkStatus();
  }

 private:
  const std::string peer_;
  std::unique_ptr<v1::Bridge::Stub> stub_;
};

}  // namespace

absl::Status GrpcTransport::Expose(std::string_view pool, void* base, size_t size) {
  MutexLock lock(&mu_);
  regions_[std::string(pool)] = Region{static_cast<const uint8_t*>(base), size};
  return absl::OkStatus();
}

absl::StatusOr<std::string> GrpcTransport::Grant(std::string_view pool, std::string_view peer,
                                                 bool /*seal*/) {
  MutexLock lock(&mu_);
  if (!regions_.contains(pool)) {
    return absl::NotFoundError(absl::StrFormat(
        "cannot grant pool '%s' to peer '%s': the grpc transport has not exposed it", pool, peer));
  }
  return std::string(pool);
}

absl::StatusOr<std::unique_ptr<PullConnection>> GrpcTransport::Connect(
    std::string_view peer_name, std::string_view /*peer_address*/) {
  absl::StatusOr<std::shared_ptr<grpc::Channel>> channel = open_channel_(peer_name);
  if (!channel.ok()) return channel.status();
  return std::make_unique<GrpcConnection>(std::string(peer_name), *channel);
}

absl::Status GrpcTransport::ServeRead(const v1::BridgeReadRequest& request,
                                      grpc::ServerWriter<v1::BridgeChunk>* writer) {
  Region region;
  {
    MutexLock lock(&mu_);
    auto it = regions_.find(request.region());
    if (it == regions_.end()) {
      return absl::NotFoundError(
          absl::StrFormat("no region '%s' is exposed for bridging", request.region()));
    }
    region = it->second;
  }
  uint64_t offset = request.offset_bytes(), length = request.length_bytes();
  if (offset > region.size || length > region.size - offset) {
    return absl::OutOfRangeError(absl::StrFormat(
        "range [%u, %u) is outside region '%s' of %u bytes", offset, offset + length,
        request.region(), region.size));
  }
  v1::BridgeChunk chunk;
  for (uint64_t done = 0; done < length;) {
    size_t n = std::min<uint64_t>(kChunkBytes, length - done);
    chunk.set_data(region.base + offset + done, n);
    if (!writer->Write(chunk)) return absl::CancelledError("the reader went away");
    done += n;
  }
  return absl::OkStatus();
}

}  // namespace memd::bridge
