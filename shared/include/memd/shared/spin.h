// AdaptiveSpin: how long a lane side busy-polls before it sleeps on its futex
// (issue 15, "The round trip itself"; docs/architecture.md, "Lanes").
//
// A lane round trip that sleeps costs two futex wake-ups, most of its time.
// Polling the other side's word for a few microseconds first answers most
// requests without sleeping; polling for long burns a core for nothing. The
// budget adapts: a poll that saw the word change within the budget keeps (or
// grows) it, a poll that ran out halves it, down to a floor, and a thread
// that has run out several times in a row stops polling until its next
// success after sleeping. Bounded everywhere: an idle side polls once, at
// most `max`, then sleeps on the futex as before.
//
// At most `limit` threads of one process poll at once (Spinners): on a
// machine with few cores, more pollers than cores would take the CPU from
// the thread that is to answer.
//
// One AdaptiveSpin per polling thread (or per lane under its reader's lock);
// not thread-safe. Spinners is process-wide and thread-safe.
#ifndef MEMD_SHARED_SPIN_H_
#define MEMD_SHARED_SPIN_H_

#include <sched.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdint>

namespace memd {

class Spinners {
 public:
  // The process-wide limit: half the CPUs this process may run on, at least 1.
  static Spinners& Process();

  explicit Spinners(int limit) : limit_(limit) {}
  bool TryEnter() {
    int now = active_.fetch_add(1, std::memory_order_relaxed);
    if (now < limit_) return true;
    active_.fetch_sub(1, std::memory_order_relaxed);
    return false;
  }
  void Leave() { active_.fetch_sub(1, std::memory_order_relaxed); }
  int limit() const { return limit_; }

 private:
  const int limit_;
  std::atomic<int> active_{0};
};

class AdaptiveSpin {
 public:
  // `max_us` 0 turns polling off.
  explicit AdaptiveSpin(uint32_t max_us, Spinners* spinners = &Spinners::Process())
      : max_ns_(int64_t{max_us} * 1000), budget_ns_(max_ns_), spinners_(spinners) {}

  // Polls `ready()` until it returns true or the budget runs out; returns
  // whether it did. The caller then sleeps as before when it did not.
  template <typename Ready>
  bool Poll(Ready&& ready) {
    if (budget_ns_ == 0 || misses_ >= kMaxMisses || !spinners_->TryEnter()) return false;
    auto start = std::chrono::steady_clock::now();
    bool hit = false;
    for (uint32_t n = 0;; ++n) {
      if (ready()) {
        hit = true;
        break;
      }
      CpuRelax();
      // With more runnable threads than cores, the thread that is to answer
      // may be waiting for this very CPU: hand it over now and then (every
      // few microseconds; a yield with nobody waiting returns at once). On
      // 2 loaded cores a malloc+free pair took 128 us p50 without this and
      // 34 us with it (docs/performance-history.md, "Polling on a loaded machine").
      if ((n & kYieldEvery) == kYieldEvery) sched_yield();
      // Reading the clock costs about as much as a few dozen pauses.
      if ((n & 31) == 31 && Since(start) >= budget_ns_) break;
    }
    spinners_->Leave();
    if (hit) {
      Hit(Since(start));
    } else {
      Miss();
    }
    return hit;
  }

  // Tells a side that gave up polling and slept that the word changed soon
  // after (`waited_ns`): if a longer poll would have caught it, polling
  // resumes with that budget.
  void Slept(int64_t waited_ns) {
    if (max_ns_ == 0) return;
    if (waited_ns + budget_ns_ <= max_ns_) {
      misses_ = 0;
      budget_ns_ = std::min(max_ns_, std::max(kFloorNs, 2 * (budget_ns_ + waited_ns)));
    }
  }

  int64_t budget_ns() const { return budget_ns_; }

 private:
  static constexpr int64_t kFloorNs = 2000;
  static constexpr uint32_t kYieldEvery = 127;  // pauses between yields, minus one (2^k - 1)
  static constexpr int kMaxMisses = 4;

  static int64_t Since(std::chrono::steady_clock::time_point start) {
    return std::chrono::duration_cast<std::chrono::nanoseconds>(
               std::chrono::steady_clock::now() - start).count();
  }
  static void CpuRelax() {
#if defined(__x86_64__) || defined(__i386__)
    __builtin_ia32_pause();
#elif defined(__aarch64__)
    asm volatile("yield");
#endif
  }
  void Hit(int64_t took_ns) {
    misses_ = 0;
    // Keep room for twice what the answer took.
    budget_ns_ = std::min(max_ns_, std::max({budget_ns_, kFloorNs, 2 * took_ns}));
  }
  void Miss() {
    ++misses_;
    budget_ns_ = std::max(kFloorNs, budget_ns_ / 2);
  }

  const int64_t max_ns_;
  int64_t budget_ns_;
  int misses_ = 0;
  Spinners* spinners_;
};

}  // namespace memd

#endif  // MEMD_SHARED_SPIN_H_
