// Housekeeper: a thread that runs a Client's periodic work (the arena's
// tick) every `period`, so nothing below the Client calls up into it: the
// session link keeps its own monitor thread for the connection only.
// Private to libmemd. Owned by Client::Impl; the work runs on this thread
// only, and never after the destructor returns.
#ifndef MEMD_CLIENT_HOUSEKEEPER_H_
#define MEMD_CLIENT_HOUSEKEEPER_H_

#include <functional>
#include <thread>

#include "absl/base/thread_annotations.h"
#include "absl/time/time.h"
#include "memd/shared/mutex.h"

namespace memd {

class Housekeeper {
 public:
  Housekeeper(absl::Duration period, std::function<void()> work);
  // Stops the thread, waiting for a running `work` to return.
  ~Housekeeper();
  Housekeeper(const Housekeeper&) = delete;
  Housekeeper& operator=(const Housekeeper&) = delete;

 private:
  void Run();

  const absl::Duration period_;
  const std::function<void()> work_;
  Mutex mu_;
  CondVar cv_;
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;
  std::thread thread_;  // last: started once the rest is set
};

}  // namespace memd

#endif  // MEMD_CLIENT_HOUSEKEEPER_H_
