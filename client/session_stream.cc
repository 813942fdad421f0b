#include "session_stream.h"

#include "absl/strings/str_format.h"

namespace memd {

SessionStream::SessionStream(std::shared_ptr<grpc::Channel> channel, std::string address)
    : address_(std::move(address)),
      stub_(v1::Memory::NewStub(channel)),
      router_(
          [this](const v1::SessionRequest& request, bool /*wake: every message goes now*/) {
            MutexLock lock(&write_mu_);
            if (stream_->Write(request)) return absl::OkStatus();
            return absl::UnavailableError(absl::StrFormat(
                "memd at %s is unavailable (session stream closed)", address_));
          },
          [this](std::vector<v1::SessionResponse>* out, bool /*any: every answer is a message*/) {
            v1::SessionResponse response;
            if (!stream_->Read(&response)) {
              return absl::UnavailableError(absl::StrFormat(
                  "memd at %s is unavailable (session stream closed)", address_));
            }
            out->push_back(std::move(response));
            return absl::OkStatus();
          }) {
  stream_ = stub_->Session(&context_);
}

SessionStream::~SessionStream() {
  {
    MutexLock lock(&write_mu_);
    stream_->WritesDone();
  }
  // Drain until the daemon closes its side (at once if the stream is already
  // broken), then collect the status; no call is in flight any more.
  v1::SessionResponse ignored;
  while (stream_->Read(&ignored)) {
  }
  stream_->Finish().ok();
}

absl::Status SessionStream::StatusOf(const v1::SessionResponse& response) {
  if (response.status_code() == 0) return absl::OkStatus();
  return absl::Status(static_cast<absl::StatusCode>(response.status_code()),
                      response.status_message());
}

absl::StatusOr<v1::SessionResponse> SessionStream::Call(v1::SessionRequest request) {
  return router_.Call(std::move(request));
}

}  // namespace memd
