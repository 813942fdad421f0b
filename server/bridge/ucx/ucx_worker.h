// UcxWorker: the one UCX context and worker of a UcxTransport, and the thread
// that progresses the worker.
//
// Why UCS_THREAD_MODE_MULTI plus a progress thread: the bridge engine calls
// Pull, Connect and Expose from its own threads, and the SENDING side must be
// progressed even when it has nothing of its own in flight (peers' pull
// requests arrive at any time and are answered from the progress thread). The
// progress thread sleeps on the worker's event descriptor (UCP_FEATURE_WAKEUP)
// when there is nothing to do, so an idle bridge costs no CPU; callers post
// their requests directly (UCX takes the worker's lock) and wake the thread.
// The alternative, a single-threaded worker fed through a queue, adds a hop
// and a queue per pull for no gain at 12 MB per frame.
//
// Thread-safety: every method may be called from any thread. Completion and
// error callbacks run on the progress thread with UCX's worker lock held:
// they must not take a lock that is held around a UCX call.
#ifndef MEMD_SERVER_BRIDGE_UCX_UCX_WORKER_H_
#define MEMD_SERVER_BRIDGE_UCX_UCX_WORKER_H_

#include <ucp/api/ucp.h>

#include <atomic>
#include <memory>
#include <string>
#include <string_view>
#include <thread>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"

namespace memd::bridge::ucx {

class UcxWorker {
 public:
  // Reads UCX's configuration from the environment (UCX_TLS ...), creates the
  // context (RMA and wakeup features) and the worker, starts the thread.
  static absl::StatusOr<std::unique_ptr<UcxWorker>> Start(std::string name);
  // Stops the thread, then destroys the worker and the context. REQUIRES:
  // every endpoint of this worker is closed.
  ~UcxWorker();
  UcxWorker(const UcxWorker&) = delete;
  UcxWorker& operator=(const UcxWorker&) = delete;

  const std::string& name() const { return name_; }
  ucp_context_h context() const { return context_; }
  ucp_worker_h worker() const { return worker_; }

  // Wakes the progress thread: call after posting a request.
  void Wake();

  // Waits for `request` (a pointer returned by a UCX *_nbx call) to leave
  // UCS_INPROGRESS, or for `deadline`; returns its status (UCS_INPROGRESS on
  // timeout) without freeing it. For requests without a callback (close).
  ucs_status_t WaitRequest(void* request, absl::Time deadline);

 private:
  UcxWorker(std::string name, ucp_context_h context, ucp_worker_h worker, int event_fd);
  void Run();  // the progress thread

  const std::string name_;
  ucp_context_h context_;
  ucp_worker_h worker_;
  const int event_fd_;  // the worker's, owned by UCX
  std::atomic<bool> stop_{false};
  std::thread thread_;
};

// The status a caller sees for a UCX failure: UNAVAILABLE for anything that
// a new link may cure (a dead peer, a reset, an unreachable address ...),
// INTERNAL otherwise; the message is `what` + UCX's own words.
absl::Status UcxError(absl::string_view what, ucs_status_t status);

}  // namespace memd::bridge::ucx

#endif  // MEMD_SERVER_BRIDGE_UCX_UCX_WORKER_H_
