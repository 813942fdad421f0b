#include "service/status_convert.h"

#include <string>

#include "memd/shared/text.h"

namespace memd {

grpc::Status ToGrpcStatus(const absl::Status& status) {
  if (status.ok()) return grpc::Status::OK;
  return grpc::Status(static_cast<grpc::StatusCode>(status.code()), ValidUtf8(std::string(status.message())));
}

void SetResponseStatus(const absl::Status& status, v1::SessionResponse* response) {
  response->set_status_code(static_cast<int32_t>(status.code()));
  if (!status.ok()) response->set_status_message(ValidUtf8(std::string(status.message())));
}

void FillBuffer(const BufferInfo& info, v1::BufferInfo* out) {
  out->set_handle(info.handle);
  out->set_offset_bytes(info.offset_bytes);
  out->set_size_bytes(info.size_bytes);
  out->set_capacity_bytes(info.capacity_bytes);
}

}  // namespace memd
