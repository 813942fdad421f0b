// The hardware floor of row A: a busy-polled ping-pong between two processes
// over a Unix socket pair (both ends spin on non-blocking reads, nobody
// sleeps), so a lane round trip can be reported against what the machine
// can do at all without a shared-memory protocol of its own.
#ifndef MEMD_BENCH_BUSY_POLL_FLOOR_H_
#define MEMD_BENCH_BUSY_POLL_FLOOR_H_

#include <vector>

namespace memd::bench {

// Round-trip times in ns of `calls` 8-byte ping-pongs (after 1000 warm-up
// ones) with an echoing child process; empty on failure.
std::vector<double> BusyPollPingPongNs(int calls);

}  // namespace memd::bench

#endif  // MEMD_BENCH_BUSY_POLL_FLOOR_H_
