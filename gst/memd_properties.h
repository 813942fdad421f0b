// The properties memdsink and memdsrc share (channel, address, pool,
// capacity) and the one place that checks them and connects, so both
// elements name a bad value the same way. Private to the memd plugin.
//
// Thread-safety: ReadEndpoint takes the element's object lock.
#ifndef MEMD_GST_MEMD_PROPERTIES_H_
#define MEMD_GST_MEMD_PROPERTIES_H_

#include <gst/gst.h>

#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "memd/client.h"

namespace memd::gst {

struct Endpoint {
  std::string channel;  // required
  std::string address;  // empty: $MEMD_ADDRESS, else libmemd's default socket
  std::string pool;     // empty: $MEMD_POOL, else "default"
  guint capacity = 0;   // messages, when this element creates the channel; 0: 16
  bool read_only = false;  // attach as a reader (memdsrc's read-only)
};

// Property ids of the endpoint; an element's own ids start at kPropFirstOwn.
enum EndpointProperty : guint {
  kPropChannel = 1,
  kPropAddress,
  kPropPool,
  kPropCapacity,
  kPropFirstOwn,
};

// Installs "channel", "address", "pool" and "capacity".
void InstallEndpointProperties(GObjectClass* klass);
// REQUIRES: the element's object lock. False when `id` is not an endpoint
// property (the element's own).
bool SetEndpointProperty(Endpoint* endpoint, guint id, const GValue* value);
bool GetEndpointProperty(const Endpoint& endpoint, guint id, GValue* value);

// A copy of `*endpoint` taken under `element`'s object lock.
Endpoint ReadEndpoint(GstElement* element, const Endpoint* endpoint);

// Checks the endpoint and connects (a Client shared in the process). On
// failure posts a GST_ELEMENT_ERROR naming the value and returns the status.
absl::StatusOr<std::shared_ptr<Client>> ConnectEndpoint(GstElement* element,
                                                        const Endpoint& endpoint);

}  // namespace memd::gst

#endif  // MEMD_GST_MEMD_PROPERTIES_H_
