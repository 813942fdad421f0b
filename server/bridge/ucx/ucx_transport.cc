// UcxTransport: the PullTransport over one UcxWorker. Owns the worker, the
// RegionServer (the pools this daemon exposes, the grants of its links, and
// the answers to peers' pull requests) and PendingPulls (this daemon's pulls
// in flight).
// Thread-safe (transport.h): its members are.
#include "bridge/ucx/ucx_transport.h"

#include <ucp/api/ucp.h>

#include "absl/strings/str_cat.h"
#include "bridge/ucx/ucx_connection.h"
#include "bridge/ucx/ucx_pending.h"
#include "bridge/ucx/ucx_server.h"
#include "bridge/ucx/ucx_wire.h"
#include "bridge/ucx/ucx_worker.h"
#include "memd/shared/names.h"

namespace memd::bridge {
namespace {

using ucx::UcxWorker;

class UcxTransport : public PullTransport {
 public:
  UcxTransport(std::unique_ptr<UcxWorker> worker, ReadCheck may_read)
      : worker_(std::move(worker)), server_(worker_.get(), std::move(may_read)),
        pending_(worker_.get()) {}

  // Registers the two active-message handlers (sender and receiver side).
  absl::Status Start() {
    if (absl::Status s = server_.Start(); !s.ok()) return s;
    return pending_.Start();
  }

  std::string_view name() const override { return "ucx"; }

  absl::Status Expose(std::string_view pool_name, void* base, size_t size) override {
    if (absl::Status s = ValidateName("pool name", pool_name); !s.ok()) return s;
    const std::string pool(pool_name);
    if (base == nullptr || size == 0) {
      return absl::InvalidArgumentError(absl::StrCat(
          "cannot expose pool '", pool, "': ", size, " bytes at address ",
          reinterpret_cast<uintptr_t>(base), " (a mapped pool of at least 1 byte is needed)"));
    }
    return server_.Add(pool, base, size);
  }

  absl::StatusOr<std::string> Grant(std::string_view pool, std::string_view peer,
                                    bool seal) override {
    return server_.Grant(std::string(pool), std::string(peer), seal);
  }
  void Revoke(std::string_view region) override { server_.Revoke(region); }
  bool Encrypted(bool seal) const override { return seal; }

  absl::StatusOr<std::string> LocalAddress() override {
    ucp_address_t* address = nullptr;
    size_t address_bytes = 0;
    if (ucs_status_t s = ucp_worker_get_address(worker_->worker(), &address, &address_bytes);
        s != UCS_OK) {
      return ucx::UcxError(
          absl::StrCat("ucx transport '", worker_->name(), "': ucp_worker_get_address"), s);
    }
    std::string envelope = ucx::EncodeWorkerAddress(
        std::string_view(reinterpret_cast<const char*>(address), address_bytes));
    ucp_worker_release_address(worker_->worker(), address);
    if (address_bytes == 0 || address_bytes > ucx::kMaxWorkerAddressBytes) {
      return absl::InternalError(absl::StrCat(
          "ucx transport '", worker_->name(), "': the worker address is ", address_bytes,
          " bytes; the envelope holds 1 to ", ucx::kMaxWorkerAddressBytes,
          " (restrict UCX_TLS or UCX_NET_DEVICES)"));
    }
    return envelope;
  }

  absl::StatusOr<std::unique_ptr<PullConnection>> Connect(std::string_view peer_name,
                                                          std::string_view peer_address) override {
    absl::StatusOr<std::string_view> address = ucx::ParseWorkerAddress(peer_address);
    if (!address.ok()) {
      return absl::InvalidArgumentError(
          absl::StrCat("peer '", std::string(peer_name), "': ", address.status().message()));
    }
    absl::StatusOr<std::unique_ptr<ucx::UcxConnection>> connection =
        ucx::UcxConnection::Open(worker_.get(), &pending_, std::string(peer_name), *address);
    if (!connection.ok()) return connection.status();
    return std::unique_ptr<PullConnection>(std::move(*connection));
  }

 private:
  // Declared first: destroyed last, so no handler runs on a destroyed member.
  const std::unique_ptr<UcxWorker> worker_;
  ucx::RegionServer server_;   // the pools this daemon exposes
  ucx::PendingPulls pending_;  // this daemon's pulls in flight
};

}  // namespace

absl::StatusOr<std::unique_ptr<PullTransport>> MakeUcxTransport(UcxOptions options) {
  if (!options.may_read) {
    return absl::InvalidArgumentError(absl::StrCat(
        "ucx transport '", options.name, "' needs a read check (UcxOptions::may_read)"));
  }
  ReadCheck may_read = std::move(options.may_read);
  absl::StatusOr<std::unique_ptr<UcxWorker>> worker = UcxWorker::Start(std::move(options.name));
  if (!worker.ok()) return worker.status();
  auto transport = std::make_unique<UcxTransport>(std::move(*worker), std::move(may_read));
  if (absl::Status s = transport->Start(); !s.ok()) return s;
  return std::unique_ptr<PullTransport>(std::move(transport));
}

}  // namespace memd::bridge
