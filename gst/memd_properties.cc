#include "memd_properties.h"

#include "memd_connection.h"

namespace memd::gst {

void InstallEndpointProperties(GObjectClass* klass) {
  auto rw = static_cast<GParamFlags>(G_PARAM_READWRITE | G_PARAM_STATIC_STRINGS |
                                     GST_PARAM_MUTABLE_READY);
  g_object_class_install_property(
      klass, kPropChannel,
      g_param_spec_string("channel", "Channel", "Name of the memd channel (required)", nullptr,
                          rw));
  g_object_class_install_property(
      klass, kPropAddress,
      g_param_spec_string("address", "Address",
                          "memd daemon address, unix:///path (empty: $MEMD_ADDRESS, else "
                          "unix:///run/memd/memd.sock)",
                          nullptr, rw));
  g_object_class_install_property(
      klass, kPropPool,
      g_param_spec_string("pool", "Pool", "memd pool (empty: $MEMD_POOL, else \"default\")",
                          nullptr, rw));
  g_object_class_install_property(
      klass, kPropCapacity,
      g_param_spec_uint("capacity", "Capacity",
                        "Messages the channel queues when this element creates it (0: the "
                        "daemon's default, 16)",
                        0, G_MAXUINT32, 0, rw));
}

bool SetEndpointProperty(Endpoint* endpoint, guint id, const GValue* value) {
  const gchar* text = G_VALUE_HOLDS_STRING(value) ? g_value_get_string(value) : nullptr;
  switch (id) {
    case kPropChannel:
      endpoint->channel = text != nullptr ? text : "";
      return true;
    case kPropAddress:
      endpoint->address = text != nullptr ? text : "";
      return true;
    case kPropPool:
      endpoint->pool = text != nullptr ? text : "";
      return true;
    case kPropCapacity:
      endpoint->capacity = g_value_get_uint(value);
      return true;
    default:
      return false;
  }
}

bool GetEndpointProperty(const Endpoint& endpoint, guint id, GValue* value) {
  switch (id) {
    case kPropChannel:
      g_value_set_string(value, endpoint.channel.c_str());
      return true;
    case kPropAddress:
      g_value_set_string(value, endpoint.address.c_str());
      return true;
    case kPropPool:
      g_value_set_string(value, endpoint.pool.c_str());
      return true;
    case kPropCapacity:
      g_value_set_uint(value, endpoint.capacity);
      return true;
    default:
      return false;
  }
}

Endpoint ReadEndpoint(GstElement* element, const Endpoint* endpoint) {
  GST_OBJECT_LOCK(element);
  Endpoint copy = *endpoint;
  GST_OBJECT_UNLOCK(element);
  return copy;
}

absl::StatusOr<std::shared_ptr<Client>> ConnectEndpoint(GstElement* element,
                                                        const Endpoint& endpoint) {
  if (endpoint.channel.empty()) {
    GST_ELEMENT_ERROR(element, RESOURCE, SETTINGS, ("No memd channel set"),
                      ("property channel is empty; set channel=NAME"));
    return absl::InvalidArgumentError("no channel");
  }
  absl::StatusOr<std::shared_ptr<Client>> client = SharedClient(endpoint.address, endpoint.pool, endpoint.read_only);
  if (!client.ok()) {
    std::string address = endpoint.address.empty() ? "$MEMD_ADDRESS or the default socket"
                                                   : "'" + endpoint.address + "'";
    std::string pool =
        endpoint.pool.empty() ? "$MEMD_POOL or 'default'" : "'" + endpoint.pool + "'";
    GST_ELEMENT_ERROR(
        element, RESOURCE, OPEN_READ_WRITE,
        ("Could not attach to memd pool %s at address %s", pool.c_str(), address.c_str()),
        ("%s", std::string(client.status().message()).c_str()));
  }
  return client;
}

}  // namespace memd::gst
