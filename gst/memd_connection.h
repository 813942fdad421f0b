// One memd Client per (address, pool) in a process, shared by the plugin's
// elements: a memdsrc -> memdsink relay or a tee into several memdsinks then
// sends what it holds by reference instead of copying. Private to the plugin.
//
// Thread-safety: SharedClient may be called from any thread.
#ifndef MEMD_GST_MEMD_CONNECTION_H_
#define MEMD_GST_MEMD_CONNECTION_H_

#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "memd/client.h"

namespace memd::gst {

// The process's Client for `address` and `pool` (empty: libmemd's defaults,
// $MEMD_ADDRESS and $MEMD_POOL), a reader's when `read_only`, connecting when
// no element holds one.
absl::StatusOr<std::shared_ptr<Client>> SharedClient(const std::string& address,
                                                     const std::string& pool,
                                                     bool read_only = false);

}  // namespace memd::gst

#endif  // MEMD_GST_MEMD_CONNECTION_H_
