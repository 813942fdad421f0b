// ExitPoint: a test-only kill point for the bridge kill tests (issue 24;
// tests/integration/bridge_kill_test.cc). With MEMD_TEST_EXIT_AT="STEP:N" in
// memd's environment, the Nth time memd reaches STEP it logs it and ends
// with _exit(86), exactly as a kill -9 there would leave things (nothing
// flushed, no destructor). The steps of a frame's way (docs/multi-node.md):
//   out-taken      sender: the bridge took the message, before its journal
//                  write (the producer's send is not answered yet)
//   out-journaled  sender: the journal holds it, the send not yet answered
//   out-acked      sender: the peer's ack arrived, before the journal records it
//   in-pulled      receiver: the first buffer pulled, the message not yet in
//                  the channel (mid-pull)
//   in-enqueued    receiver: the message is in its channel, no consumer took
//                  it, the sender has no ack for it
// The variable is read once, at the first call; without it a call costs a
// string compare of an empty step. Thread-safe.
#ifndef MEMD_SERVER_BRIDGE_EXIT_POINT_H_
#define MEMD_SERVER_BRIDGE_EXIT_POINT_H_

#include <string_view>

namespace memd::bridge {

void ExitPoint(std::string_view step);

}  // namespace memd::bridge

#endif  // MEMD_SERVER_BRIDGE_EXIT_POINT_H_
