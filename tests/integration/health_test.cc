// The standard gRPC health service answers SERVING (what Kubernetes gRPC
// probes and grpc_health_probe ask), and server reflection lists memd's
// services (what grpcurl and grpc_cli use).
#include <grpcpp/generic/generic_stub.h>
#include <grpcpp/grpcpp.h>
#include <gtest/gtest.h>

#include "daemon_env.h"

namespace memd::testing {
namespace {

TEST(HealthTest, StandardHealthServiceAnswersServing) {
  DaemonEnv daemon;
  ASSERT_TRUE(daemon.ok());
  auto channel = grpc::CreateChannel("unix:" + daemon.socket_path(), grpc::InsecureChannelCredentials());
  grpc::GenericStub stub(channel);
  grpc::CompletionQueue cq;
  grpc::ClientContext context;
  context.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(5));
  grpc::Slice empty("", 0);  // HealthCheckRequest{service: ""} serializes to no bytes
  grpc::ByteBuffer request(&empty, 1), response;
  auto call = stub.PrepareUnaryCall(&context, "/grpc.health.v1.Health/Check", request, &cq);
  call->StartCall();
  grpc::Status status;
  call->Finish(&response, &status, reinterpret_cast<void*>(1));
  void* tag = nullptr;
  bool ok = false;
  ASSERT_TRUE(cq.Next(&tag, &ok));
  ASSERT_TRUE(ok);
  ASSERT_TRUE(status.ok()) << status.error_message();
  std::vector<grpc::Slice> slices;
  ASSERT_TRUE(response.Dump(&slices).ok());
  std::string bytes;
  for (const auto& s : slices) bytes.append(reinterpret_cast<const char*>(s.begin()), s.size());
  EXPECT_EQ(bytes, std::string("\x08\x01", 2)) << "HealthCheckResponse{status: SERVING}";
  cq.Shutdown();
}

// Waits for the completion-queue event `expected`.
bool Await(grpc::CompletionQueue& cq, intptr_t expected) {
  void* tag = nullptr;
  bool ok = false;
  return cq.Next(&tag, &ok) && ok && reinterpret_cast<intptr_t>(tag) == expected;
}

TEST(HealthTest, ServerReflectionListsMemdsServices) {
  DaemonEnv daemon;
  ASSERT_TRUE(daemon.ok());
  auto channel = grpc::CreateChannel("unix:" + daemon.socket_path(), grpc::InsecureChannelCredentials());
  grpc::GenericStub stub(channel);
  grpc::CompletionQueue cq;
  grpc::ClientContext context;
  context.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(5));
  auto call = stub.PrepareCall(
      &context, "/grpc.reflection.v1alpha.ServerReflection/ServerReflectionInfo", &cq);
  call->StartCall(reinterpret_cast<void*>(1));
  ASSERT_TRUE(Await(cq, 1));
  // ServerReflectionRequest{list_services: "*"}: field 7, length-delimited.
  grpc::Slice list("\x3a\x01*", 3);
  grpc::ByteBuffer request(&list, 1), response;
  call->Write(request, reinterpret_cast<void*>(2));
  ASSERT_TRUE(Await(cq, 2));
  call->Read(&response, reinterpret_cast<void*>(3));
  ASSERT_TRUE(Await(cq, 3));
  std::vector<grpc::Slice> slices;
  ASSERT_TRUE(response.Dump(&slices).ok());
  std::string bytes;
  for (const auto& s : slices) bytes.append(reinterpret_cast<const char*>(s.begin()), s.size());
  EXPECT_NE(bytes.find("memd.v1.Memory"), std::string::npos);
  EXPECT_NE(bytes.find("memd.v1.Admin"), std::string::npos);
  EXPECT_NE(bytes.find("grpc.health.v1.Health"), std::string::npos);
  call->WritesDone(reinterpret_cast<void*>(4));
  ASSERT_TRUE(Await(cq, 4));
  grpc::Status status;
  call->Finish(&status, reinterpret_cast<void*>(5));
  ASSERT_TRUE(Await(cq, 5));
  EXPECT_TRUE(status.ok()) << status.error_message();
  cq.Shutdown();
}

}  // namespace
}  // namespace memd::testing
