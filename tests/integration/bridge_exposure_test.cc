// Peers see only what is theirs (issue 24, docs/ucx-transport.md "What a peer
// can do"): a peer reads only the ranges of messages offered to it and not
// yet acknowledged (B40; B07 for gRPC), over a link that is encrypted unless
// both operators marked it trusted (B43). The hostile peer is not memd: the
// test serves bridge.proto as node b itself (FakePeer) and pulls with
// memd_ucx_peer (UCX) or Bridge.Read (gRPC). Fixture: bridge_env.h.
#include <grpcpp/security/server_credentials.h>
#include <grpcpp/server_builder.h>

#include <condition_variable>
#include <mutex>

#include "absl/strings/escaping.h"
#include "absl/strings/str_format.h"
#include "bridge_env.h"

namespace memd::testing {
namespace {

// Node b as a program that speaks bridge.proto: takes a sender's Deliver
// stream, keeps its hello and offers, and acknowledges only when told.
class FakePeer final : public v1::Bridge::Service {
 public:
  grpc::Status Deliver(grpc::ServerContext* context,
                       grpc::ServerReaderWriter<v1::BridgeAck, v1::BridgeOffer>* stream) override {
    v1::BridgeOffer first;
    if (!stream->Read(&first)) return grpc::Status::OK;
    {
      std::lock_guard<std::mutex> lock(mu_);
      hello_ = first.hello();
    }
    stream->Write(v1::BridgeAck{});
    std::thread reader([&] {
      v1::BridgeOffer o;
      while (stream->Read(&o)) {
        std::lock_guard<std::mutex> lock(mu_);
        offers_.push_back(o);
        cv_.notify_all();
      }
    });
    std::unique_lock<std::mutex> lock(mu_);
    uint64_t acked = 0;
    while (!context->IsCancelled() && !stop_) {
      cv_.wait_for(lock, std::chrono::milliseconds(100));
      if (ack_ > acked) {
        v1::BridgeAck ack;
        ack.set_delivered_seq(acked = ack_);
        stream->Write(ack);
      }
    }
    lock.unlock();
    context->TryCancel();
    reader.join();
    return grpc::Status::OK;
  }
  // The first offer, once it came (the sender's hello is then known).
  std::optional<v1::BridgeOffer> WaitOffer() {
    std::unique_lock<std::mutex> lock(mu_);
    cv_.wait_for(lock, std::chrono::seconds(60), [&] { return !offers_.empty(); });
    if (offers_.empty()) return std::nullopt;
    return offers_.front();
  }
  v1::BridgeHello hello() {
    std::lock_guard<std::mutex> lock(mu_);
    return hello_;
  }
  void Ack(uint64_t seq) {
    std::lock_guard<std::mutex> lock(mu_);
    ack_ = seq;
    cv_.notify_all();
  }
  void Stop() {
    std::lock_guard<std::mutex> lock(mu_);
    stop_ = true;
    cv_.notify_all();
  }

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  v1::BridgeHello hello_;
  std::vector<v1::BridgeOffer> offers_;
  uint64_t ack_ = 0;
  bool stop_ = false;
};

std::string Hex(const std::string& bytes) { return absl::BytesToHexString(bytes); }

class BridgeExposureTest : public BridgeTest {
 protected:
  // Pulls [offset, offset + length) of node a's pool as node b would: UCX
  // with the hello's address and grant (memd_ucx_peer, another process), or
  // Bridge.Read with b's certificate. "served" or the refusal's words.
  std::string PullAsB(const Node& a, const v1::BridgeHello& hello, uint64_t offset,
                      uint64_t length) {
    if (GetParam() == "grpc") {
      auto stub = StubAs("b", a);
      grpc::ClientContext context;
      context.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(10));
      v1::BridgeReadRequest request;
      request.set_region(hello.region());
      request.set_offset_bytes(offset);
      request.set_length_bytes(length);
      auto reader = stub->Read(&context, request);
      v1::BridgeChunk chunk;
      uint64_t got = 0;
      while (reader->Read(&chunk)) got += chunk.data().size();
      grpc::Status s = reader->Finish();
      if (s.ok() && got == length) return "served";
      return (s.error_code() == grpc::StatusCode::PERMISSION_DENIED ? "PERMISSION_DENIED "
                                                                     : "other ") +
             s.error_message();
    }
#if MEMD_TEST_UCX
    auto [code, out] = RunCommand({MEMD_UCX_PEER_BINARY, "pull", Hex(hello.transport_address()),
                                   Hex(hello.region()),
                                   std::to_string(offset) + ":" + std::to_string(length)});
    // memd_ucx_peer checks its own pattern: a memd frame's bytes "mismatch".
    if (out.find("ok ") != std::string::npos || out.find("mismatch ") != std::string::npos) {
      return "served";
    }
    return out;
#else
    return "no ucx";
#endif
  }
};

// B40 (B07 over gRPC): a peer holding the hello pulls the range of a frame
// offered to it; a range never offered (right after that frame, inside the
// pool) is refused naming the range and saying it is not in flight to that
// peer; after the peer's ack the frame's own range is refused too.
TEST_P(BridgeExposureTest, APeerReadsOnlyTheRangesInFlightToIt) {
  FakePeer peer;
  grpc::SslServerCredentialsOptions ssl(GRPC_SSL_REQUEST_AND_REQUIRE_CLIENT_CERTIFICATE_AND_VERIFY);
  ssl.pem_root_certs = ReadText(dir_ + "/ca.pem");
  ssl.pem_key_cert_pairs.push_back({ReadText(dir_ + "/b.key"), ReadText(dir_ + "/b.pem")});
  int port = 0;
  grpc::ServerBuilder builder;
  builder.AddListeningPort("127.0.0.1:0", grpc::SslServerCredentials(ssl), &port);
  builder.RegisterService(&peer);
  std::unique_ptr<grpc::Server> server = builder.BuildAndStart();
  ASSERT_NE(server, nullptr);
  Node a = LoneNode();
  a.peer_port = std::to_string(port);
  ASSERT_TRUE(a.Start() && Serving(a));
  constexpr uint64_t kBytes = 1 << 20;
  Subprocess producer({BridgeClientBinary(), "produce", "frames", "0", "1",
                       std::to_string(kBytes)}, a.ClientEnv());
  std::optional<v1::BridgeOffer> offer = peer.WaitOffer();
  ASSERT_TRUE(offer.has_value()) << "node a offered nothing";
  ASSERT_EQ(offer->buffers_size(), 1);
  const v1::BridgeHello hello = peer.hello();
  EXPECT_EQ(hello.link_clear(), false) << "links are encrypted by default";
  const uint64_t at = offer->buffers(0).offset_bytes();
  ASSERT_EQ(offer->buffers(0).size_bytes(), kBytes);

  EXPECT_EQ(PullAsB(a, hello, at, kBytes), "served");
  EXPECT_EQ(PullAsB(a, hello, at + 4096, 4096), "served") << "a part of the frame";
  const std::string never = PullAsB(a, hello, at + kBytes, 4096);
  EXPECT_NE(never.find("PERMISSION_DENIED"), std::string::npos) << never;
  EXPECT_NE(never.find(absl::StrFormat("read of [%u, %u) in pool 'video' refused: it is not in "
                                       "flight to node 'b'", at + kBytes, at + kBytes + 4096)),
            std::string::npos) << never;
  EXPECT_NE(PullAsB(a, hello, at, kBytes + 1), "served") << "one byte past the frame";

  peer.Ack(offer->seq());
  ASSERT_TRUE(WaitFor([&] { return a.Bridge("out").in_flight() == 0; }))
      << "node a did not take the ack";
  const std::string acked = PullAsB(a, hello, at, kBytes);
  EXPECT_NE(acked.find(absl::StrFormat("read of [%u, %u) in pool 'video' refused: it is not in "
                                       "flight to node 'b'", at, at + kBytes)),
            std::string::npos) << acked;
  peer.Stop();
  server->Shutdown(std::chrono::system_clock::now() + std::chrono::seconds(2));
}

// --bridge-link trusted on both daemons: every frame arrives intact, in
// clear over UCX (TLS over gRPC), and memctl and the metrics say which.
TEST_P(BridgeExposureTest, ATrustedLinkDeliversEveryFrameAndSaysSo) {
  for (Node* n : {&a_, &b_}) n->extra.insert(n->extra.end(), {"--bridge-link", "trusted"});
  a_.extra.insert(a_.extra.end(), {"--metrics-listen", "127.0.0.1:9464"});
  ASSERT_TRUE(b_.Start());
  ASSERT_TRUE(a_.Start());
  auto consumer = Consumer(kFrames);
  auto producer = Producer(0, kFrames);
  ReadFrames(*consumer, kFrames);
  ExpectExactlyOnceInOrder(kFrames);
  const bool encrypted = GetParam() == "grpc";  // TLS whatever the flag says
  EXPECT_EQ(a_.Bridge("out").encrypted(), encrypted);
  EXPECT_EQ(b_.Bridge("in").encrypted(), encrypted);
  auto [code, table] = Memctl(a_, {"bridge", "list"});
  EXPECT_EQ(code, 0) << table;
  EXPECT_NE(table.find(encrypted ? " yes " : " no (trusted) "), std::string::npos) << table;
  EXPECT_NE(Metrics(ns_a_).find("memd_bridge_link_encrypted{bridge=\"video/frames\",peer=\"b\","
                                "direction=\"out\",transport=\"" + GetParam() + "\"} " +
                                (encrypted ? "1" : "0")),
            std::string::npos);
}

// B43: a sender that would send in clear to a receiver that does not trust
// its links is refused at the hello, naming both flags; nothing moves.
TEST_P(BridgeExposureTest, AClearLinkToAReceiverThatDoesNotTrustItIsRefused) {
  if (GetParam() == "grpc") GTEST_SKIP() << "gRPC links are TLS: never clear";
  a_.extra.insert(a_.extra.end(), {"--bridge-link", "trusted"});
  ASSERT_TRUE(b_.Start());
  ASSERT_TRUE(a_.Start());
  ASSERT_TRUE(WaitFor([&] { return !a_.Bridge("out").last_error().empty(); },
                      std::chrono::seconds(30)));
  EXPECT_NE(a_.Bridge("out").last_error().find(
                "sends in clear (--bridge-link trusted on node 'a'); node 'b' does not trust its "
                "links (--bridge-link encrypted)"),
            std::string::npos) << a_.Bridge("out").last_error();
  EXPECT_NE(a_.Bridge("out").link(), "up");
}

INSTANTIATE_TEST_SUITE_P(Transports, BridgeExposureTest, BridgeTransports(), TransportName);

}  // namespace
}  // namespace memd::testing
