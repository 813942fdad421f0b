// What the client helper programs (memd_test_client, test_client.cc;
// memd_arena_client, arena_client.cc) share: the one copy of a command both
// offer, and the stdin convention they all follow (a test closes the
// child's stdin to say "go on"). Plain C API code: the helpers link only
// libmemd, not the test support library.
#ifndef MEMD_TESTS_SUPPORT_CLIENT_COMMANDS_H_
#define MEMD_TESTS_SUPPORT_CLIENT_COMMANDS_H_

namespace memd::testing {

// Returns when stdin reaches EOF (or fails).
void WaitForStdinEof();
// Without waiting: whether stdin has reached EOF (poll says it is readable:
// a test writes nothing, it only closes it).
bool StdinClosed();

// `hold COUNT SIZE BYTE`: memd_malloc COUNT buffers of SIZE bytes (arena
// blocks when the session has arenas and SIZE is at most the threshold),
// fill them with BYTE, print "handle <memd_handle>" for each and "ready";
// exit 0 at stdin EOF without freeing (the session's end releases them).
// Prints "error <call>: <memd_last_error()>" and returns 1 when a call fails.
// The numbers are parsed as strtoull with base 0 (decimal, 0x hex).
int Hold(const char* count, const char* size, const char* byte);

}  // namespace memd::testing

#endif  // MEMD_TESTS_SUPPORT_CLIENT_COMMANDS_H_
