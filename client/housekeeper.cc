#include "housekeeper.h"

#include <utility>

namespace memd {

Housekeeper::Housekeeper(absl::Duration period, std::function<void()> work)
    : period_(period), work_(std::move(work)), thread_([this] { Run(); }) {}

Housekeeper::~Housekeeper() {
  {
    MutexLock lock(&mu_);
    stopping_ = true;
    cv_.SignalAll();
  }
  thread_.join();
}

void Housekeeper::Run() {
  MutexLock lock(&mu_);
  while (!stopping_) {
    cv_.WaitFor(&mu_, absl::ToChronoNanoseconds(period_));
    if (stopping_) break;
    mu_.unlock();
    work_();
    mu_.lock();
  }
}

}  // namespace memd
