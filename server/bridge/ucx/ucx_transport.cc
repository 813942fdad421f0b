// UcxTransport: the PullTransport over one UcxWorker. Owns the worker, the
// UCX memory registrations of the exposed pools, and this daemon's packed
// worker address. Thread-safe (transport.h): `mu_` guards the registrations.
#include "bridge/ucx/ucx_transport.h"

#include <ucp/api/ucp.h>

#include "absl/container/flat_hash_map.h"
#include "absl/strings/str_cat.h"
#include "bridge/ucx/ucx_connection.h"
#include "bridge/ucx/ucx_wire.h"
#include "bridge/ucx/ucx_worker.h"
#include "memd/shared/mutex.h"
#include "memd/shared/names.h"

namespace memd::bridge {
namespace {

using ucx::UcxWorker;

class UcxTransport : public PullTransport {
 public:
  explicit UcxTransport(std::unique_ptr<UcxWorker> worker) : worker_(std::move(worker)) {}

  ~UcxTransport() override {
    MutexLock lock(&mu_);
    for (auto& [pool, memh] : exposed_) ucp_mem_unmap(worker_->context(), memh);
  }

  std::string_view name() const override { return "ucx"; }

  absl::StatusOr<std::string> Expose(std::string_view pool_name, void* base,
                                     size_t size) override {
    if (absl::Status s = ValidateName("pool name", pool_name); !s.ok()) return s;
    const std::string pool(pool_name);
    if (base == nullptr || size == 0) {
      return absl::InvalidArgumentError(absl::StrCat(
          "cannot expose pool '", pool, "': ", size, " bytes at address ",
          reinterpret_cast<uintptr_t>(base), " (a mapped pool of at least 1 byte is needed)"));
    }
    MutexLock lock(&mu_);
    if (exposed_.contains(pool)) {
      return absl::AlreadyExistsError(
          absl::StrCat("pool '", pool, "' is already exposed by ucx transport '",
                       worker_->name(), "'"));
    }
    ucp_mem_map_params_t params{};
    params.field_mask = UCP_MEM_MAP_PARAM_FIELD_ADDRESS | UCP_MEM_MAP_PARAM_FIELD_LENGTH;
    params.address = base;
    params.length = size;
    ucp_mem_h memh = nullptr;
    if (ucs_status_t s = ucp_mem_map(worker_->context(), &params, &memh); s != UCS_OK) {
      return ucx::UcxError(absl::StrCat("ucx transport '", worker_->name(),
                                        "': registering pool '", pool, "' (", size, " bytes)"),
                           s);
    }
    void* packed = nullptr;
    size_t packed_bytes = 0;
    if (ucs_status_t s = ucp_rkey_pack(worker_->context(), memh, &packed, &packed_bytes);
        s != UCS_OK) {
      ucp_mem_unmap(worker_->context(), memh);
      return ucx::UcxError(absl::StrCat("ucx transport '", worker_->name(),
                                        "': packing the remote key of pool '", pool, "'"),
                           s);
    }
    ucx::Region region{pool, reinterpret_cast<uintptr_t>(base), size,
                       std::string(static_cast<const char*>(packed), packed_bytes)};
    ucp_rkey_buffer_release(packed);
    if (packed_bytes == 0 || packed_bytes > ucx::kMaxRkeyBytes) {
      ucp_mem_unmap(worker_->context(), memh);
      return absl::InternalError(absl::StrCat(
          "ucx transport '", worker_->name(), "': the remote key of pool '", pool, "' is ",
          packed_bytes, " bytes; the descriptor holds 1 to ", ucx::kMaxRkeyBytes));
    }
    exposed_.emplace(pool, memh);
    return ucx::EncodeRegion(region);
  }

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
        ucx::UcxConnection::Open(worker_.get(), std::string(peer_name), *address);
    if (!connection.ok()) return connection.status();
    return std::unique_ptr<PullConnection>(std::move(*connection));
  }

 private:
  // Declared first: destroyed after the registrations below are unmapped.
  const std::unique_ptr<UcxWorker> worker_;
  Mutex mu_;
  // Pool name → its UCX registration, unmapped when the transport goes.
  absl::flat_hash_map<std::string, ucp_mem_h> exposed_ ABSL_GUARDED_BY(mu_);
};

}  // namespace

absl::StatusOr<std::unique_ptr<PullTransport>> MakeUcxTransport(UcxOptions options) {
  absl::StatusOr<std::unique_ptr<UcxWorker>> worker = UcxWorker::Start(std::move(options.name));
  if (!worker.ok()) return worker.status();
  return std::unique_ptr<PullTransport>(new UcxTransport(std::move(*worker)));
}

}  // namespace memd::bridge
