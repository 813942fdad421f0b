#include "bridge/ucx/ucx_worker.h"

#include <poll.h>

#include <cstdlib>

#include "absl/strings/str_cat.h"

namespace memd::bridge::ucx {
namespace {

// UCX_TCP_TX_SEG_SIZE and UCX_TCP_RX_SEG_SIZE unless the environment sets them.
constexpr char kTcpSegmentSize[] = "256k";

}  // namespace

absl::StatusOr<std::unique_ptr<UcxWorker>> UcxWorker::Start(std::string name) {
  ucp_config_t* config = nullptr;
  if (ucs_status_t s = ucp_config_read(nullptr, nullptr, &config); s != UCS_OK) {
    return UcxError(absl::StrCat("ucx transport '", name, "': reading UCX_* settings"), s);
  }
  // UCX's TCP transport moves messages in segments (TX 8 KiB, RX 64 KiB by
  // default). Across a veth pair, 256 KiB segments pulled 4K frames with less
  // receiver CPU in 7 of 7 paired runs and faster in 5 of 7 (row N,
  // docs/PERFORMANCE.md). In UCX 1.13 only the TCP transport has these two
  // settings; an operator's UCX_TCP_TX_SEG_SIZE / _RX_SEG_SIZE still wins.
  for (const char* setting : {"TX_SEG_SIZE", "RX_SEG_SIZE"}) {
    if (getenv(absl::StrCat("UCX_TCP_", setting).c_str()) != nullptr) continue;
    if (ucs_status_t s = ucp_config_modify(config, setting, kTcpSegmentSize); s != UCS_OK) {
      ucp_config_release(config);
      return UcxError(absl::StrCat("ucx transport '", name, "': setting ", setting), s);
    }
  }
  ucp_params_t params{};
  params.field_mask = UCP_PARAM_FIELD_FEATURES | UCP_PARAM_FIELD_NAME;
  // Active messages only: with UCP_FEATURE_RMA UCX would also serve any
  // peer's emulated get of any address (docs/ucx-transport.md).
  params.features = UCP_FEATURE_AM | UCP_FEATURE_WAKEUP;
  params.name = name.c_str();
  ucp_context_h context = nullptr;
  ucs_status_t s = ucp_init(&params, config, &context);
  ucp_config_release(config);
  if (s != UCS_OK) {
    return UcxError(absl::StrCat("ucx transport '", name, "': ucp_init (check UCX_TLS)"), s);
  }

  ucp_worker_params_t worker_params{};
  worker_params.field_mask = UCP_WORKER_PARAM_FIELD_THREAD_MODE;
  worker_params.thread_mode = UCS_THREAD_MODE_MULTI;
  ucp_worker_h worker = nullptr;
  if (s = ucp_worker_create(context, &worker_params, &worker); s != UCS_OK) {
    ucp_cleanup(context);
    return UcxError(absl::StrCat("ucx transport '", name, "': ucp_worker_create"), s);
  }
  ucp_worker_attr_t attr{};
  attr.field_mask = UCP_WORKER_ATTR_FIELD_THREAD_MODE;
  int event_fd = -1;
  s = ucp_worker_query(worker, &attr);
  if (s == UCS_OK && attr.thread_mode != UCS_THREAD_MODE_MULTI) {
    ucp_worker_destroy(worker);
    ucp_cleanup(context);
    return absl::FailedPreconditionError(absl::StrCat(
        "ucx transport '", name,
        "': this UCX gives a worker without multi-thread support (thread mode ",
        attr.thread_mode, "); memd needs a UCX built with --enable-mt"));
  }
  if (s == UCS_OK) s = ucp_worker_get_efd(worker, &event_fd);
  if (s != UCS_OK) {
    ucp_worker_destroy(worker);
    ucp_cleanup(context);
    return UcxError(absl::StrCat("ucx transport '", name, "': worker setup"), s);
  }
  return std::unique_ptr<UcxWorker>(new UcxWorker(std::move(name), context, worker, event_fd));
}

UcxWorker::UcxWorker(std::string name, ucp_context_h context, ucp_worker_h worker, int event_fd)
    : name_(std::move(name)), context_(context), worker_(worker), event_fd_(event_fd) {
  thread_ = std::thread([this] { Run(); });
}

UcxWorker::~UcxWorker() {
  stop_.store(true);
  Wake();
  thread_.join();
  ucp_worker_destroy(worker_);
  ucp_cleanup(context_);
}

void UcxWorker::Wake() { ucp_worker_signal(worker_); }

void UcxWorker::Run() {
  while (!stop_.load(std::memory_order_relaxed)) {
    if (ucp_worker_progress(worker_) != 0) continue;
    // Nothing left to do: arm the event descriptor (UCS_ERR_BUSY means events
    // arrived meanwhile) and sleep until the network, a Wake() or, as a
    // safety net for a lost wake-up, 100 ms.
    if (ucp_worker_arm(worker_) == UCS_ERR_BUSY) continue;
    pollfd pfd{event_fd_, POLLIN, 0};
    poll(&pfd, 1, 100);
  }
}

ucs_status_t UcxWorker::WaitRequest(void* request, absl::Time deadline) {
  while (true) {
    ucs_status_t s = ucp_request_check_status(request);
    if (s != UCS_INPROGRESS || absl::Now() >= deadline) return s;
    Wake();
    absl::SleepFor(absl::Milliseconds(1));
  }
}

absl::Status UcxError(absl::string_view what, ucs_status_t status) {
  std::string message = absl::StrCat(what, ": ", ucs_status_string(status));
  switch (status) {
    case UCS_ERR_INVALID_PARAM:
    case UCS_ERR_NO_MEMORY:
    case UCS_ERR_UNSUPPORTED:
    case UCS_ERR_INVALID_ADDR:
      return absl::InternalError(message);
    default:
      return absl::UnavailableError(message);
  }
}

}  // namespace memd::bridge::ucx
