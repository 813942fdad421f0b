// RawSession: one Memory.Session stream driven by hand, no client library in
// between, for tests of what the daemon answers to any request (bad input,
// bytes a library would never send). Thread-compatible: one test thread.
#ifndef MEMD_TESTS_SUPPORT_RAW_SESSION_H_
#define MEMD_TESTS_SUPPORT_RAW_SESSION_H_

#include <grpcpp/grpcpp.h>
#include <gtest/gtest.h>

#include <chrono>
#include <memory>
#include <string>

#include "memd/v1/memory.grpc.pb.h"

namespace memd::testing {

class RawSession {
 public:
  // `deadline` bounds the whole stream (a blocked Write returns false then).
  explicit RawSession(const std::string& address,
                      std::chrono::milliseconds deadline = std::chrono::minutes(5)) {
    context_.set_deadline(std::chrono::system_clock::now() + deadline);
    channel_ = grpc::CreateChannel("unix:" + address.substr(7), grpc::InsecureChannelCredentials());
    stub_ = v1::Memory::NewStub(channel_);
    stream_ = stub_->Session(&context_);
  }
  ~RawSession() { Finish(); }
  // Ends the session on purpose (a close request, as libmemd's Client does:
  // without it the daemon keeps the references of a live process, E40),
  // half-closes, drains and returns the stream's status; once only.
  grpc::Status Finish() {
    if (finished_) return status_;
    finished_ = true;
    v1::SessionRequest close;
    close.set_request_id(++id_);
    close.mutable_close();
    stream_->Write(close);
    stream_->WritesDone();
    v1::SessionResponse r;
    while (stream_->Read(&r)) {
    }
    status_ = stream_->Finish();
    return status_;
  }
  v1::SessionResponse Call(v1::SessionRequest request) {
    request.set_request_id(++id_);
    v1::SessionResponse response;
    if (!stream_->Write(request) || !stream_->Read(&response)) {
      response.set_status_code(-1);
      response.set_status_message("stream broken");
    }
    EXPECT_EQ(response.request_id(), id_);
    return response;
  }
  v1::SessionResponse Attach(const std::string& pool) {
    v1::SessionRequest r;
    r.mutable_attach()->set_pool(pool);
    return Call(r);
  }
  v1::SessionResponse Allocate(uint64_t size) {
    v1::SessionRequest r;
    r.mutable_allocate()->set_size_bytes(size);
    return Call(r);
  }
  v1::SessionResponse Retain(uint64_t handle) {
    v1::SessionRequest r;
    r.mutable_retain()->set_handle(handle);
    return Call(r);
  }
  v1::SessionResponse Release(uint64_t handle) {
    v1::SessionRequest r;
    r.mutable_release()->set_handle(handle);
    return Call(r);
  }
  v1::SessionResponse Realloc(uint64_t handle, uint64_t size) {
    v1::SessionRequest r;
    r.mutable_realloc()->set_handle(handle);
    r.mutable_realloc()->set_size_bytes(size);
    return Call(r);
  }
  grpc::ClientReaderWriter<v1::SessionRequest, v1::SessionResponse>& stream() { return *stream_; }

 private:
  std::shared_ptr<grpc::Channel> channel_;
  std::unique_ptr<v1::Memory::Stub> stub_;
  grpc::ClientContext context_;
  std::unique_ptr<grpc::ClientReaderWriter<v1::SessionRequest, v1::SessionResponse>> stream_;
  uint64_t id_ = 0;
  bool finished_ = false;
  grpc::Status status_;
};

}  // namespace memd::testing

#endif  // MEMD_TESTS_SUPPORT_RAW_SESSION_H_
