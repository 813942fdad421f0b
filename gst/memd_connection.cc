#include "memd_connection.h"

#include <map>
#include <mutex>
#include <tuple>
#include <utility>

namespace memd::gst {

absl::StatusOr<std::shared_ptr<Client>> SharedClient(const std::string& address,
                                                     const std::string& pool, bool read_only) {
  static std::mutex mu;
  static auto* clients =
      new std::map<std::tuple<std::string, std::string, bool>, std::weak_ptr<Client>>;
  std::lock_guard<std::mutex> lock(mu);
  std::weak_ptr<Client>& slot = (*clients)[{address, pool, read_only}];
  if (std::shared_ptr<Client> client = slot.lock()) return client;
  ConnectOptions options;
  options.address = address;
  options.pool = pool;
  options.client_name = "gstreamer";
  options.read_only = read_only;
  absl::StatusOr<std::unique_ptr<Client>> client = Client::Connect(options);
  if (!client.ok()) return client.status();
  std::shared_ptr<Client> shared(std::move(*client));
  slot = shared;
  return shared;
}

}  // namespace memd::gst
