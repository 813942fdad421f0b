// Loopback helpers for tests of TCP endpoints (TLS listener, metrics).
#ifndef MEMD_TESTS_SUPPORT_NET_H_
#define MEMD_TESTS_SUPPORT_NET_H_

#include <chrono>
#include <optional>
#include <string>

namespace memd::testing {

// A TCP port on 127.0.0.1 that was free a moment ago.
int FreePort();

// GET http://127.0.0.1:port/path (HTTP/1.0); the body when the status is
// 200, nullopt otherwise, when nothing answers, or when it stays silent for
// `timeout` (if given).
std::optional<std::string> HttpGet(int port, const std::string& path,
                                   std::chrono::milliseconds timeout = std::chrono::milliseconds(0));

// The value of one series ("name{labels}") in a Prometheus exposition `body`;
// -1 when absent.
double MetricValue(const std::string& body, const std::string& series);

}  // namespace memd::testing

#endif  // MEMD_TESTS_SUPPORT_NET_H_
