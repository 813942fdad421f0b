// Issue 13, cases 4, 12, 13 and the admin half of 8: every string the daemon
// puts on the wire parses whatever bytes clients and the system gave it; the
// admin answers stay under gRPC's 4 MiB message limit whatever the counts;
// idle HTTP clients cannot stall the metrics endpoint.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <grpcpp/grpcpp.h>
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <memory>
#include <set>
#include <string>
#include <vector>

#include "daemon_env.h"
#include "net.h"
#include "raw_session.h"
#include "status_text.h"

namespace memd::testing {
namespace {

using ::memd::testing_support::Has;

using namespace testing_support::wire_code;  // kInvalidArgument, kNotFound, ...

// Raw bytes a client may put where a name goes, and how a message quotes them.
struct BadBytes {
  std::string raw;
  std::string quoted;
  bool valid_label;  // well-formed UTF-8 without control characters
};
const std::vector<BadBytes>& AllBadBytes() {
  static const std::vector<BadBytes> kAll = {
      {"\xc3", "\\xc3", false},                   // a lone lead byte
      {"\xff", "\\xff", false},                   // never valid in UTF-8
      {"a\xe2\x82", "a\\xe2\\x82", false},        // a 3-byte character cut short
      {"caf\xc3\xa9", "caf\\xc3\\xa9", true},     // valid UTF-8, outside [A-Za-z0-9_-] (case 4)
      {"x\x1b[2J", "x\\x1b[2J", false},           // a terminal escape
  };
  return kAll;
}

v1::SessionRequest AttachRequest(const std::string& pool, const std::string& client_name) {
  v1::SessionRequest r;
  r.mutable_attach()->set_pool(pool);
  r.mutable_attach()->set_client_name(client_name);
  return r;
}

// Case 4 on the wire: each request field that names something, with each kind
// of bad bytes, gets an answer the client can parse (a failed parse shows as
// status -1, "stream broken"), quoting the value escaped, and the session
// goes on.
TEST(StringsTest, BadBytesInEveryNamedFieldGetAParseableErrorAndChangeNothing) {
  DaemonEnv daemon;
  ASSERT_TRUE(daemon.ok());
  for (const BadBytes& bad : AllBadBytes()) {
    SCOPED_TRACE("bytes " + bad.quoted);
    RawSession s(daemon.address());
    v1::SessionResponse r = s.Attach(bad.raw);
    EXPECT_EQ(r.status_code(), kNotFound) << r.status_message();
    EXPECT_TRUE(Has(r.status_message(), "no pool named '" + bad.quoted + "'")) << r.status_message();

    r = s.Call(AttachRequest("default", bad.raw));
    if (bad.valid_label) {
      EXPECT_EQ(r.status_code(), 0) << r.status_message();
    } else {
      EXPECT_EQ(r.status_code(), kInvalidArgument) << r.status_message();
      EXPECT_TRUE(Has(r.status_message(), "client_name '" + bad.quoted + "'")) << r.status_message();
      ASSERT_EQ(s.Attach("default").status_code(), 0);
    }
    r = s.Allocate(1000);
    ASSERT_EQ(r.status_code(), 0) << r.status_message();
    uint64_t handle = r.buffer().handle();

    v1::SessionRequest send;
    send.mutable_send()->set_channel(bad.raw);
    send.mutable_send()->add_handles(handle);
    r = s.Call(send);
    EXPECT_EQ(r.status_code(), kInvalidArgument) << r.status_message();
    EXPECT_TRUE(Has(r.status_message(), "channel name '" + bad.quoted + "' contains '"))
        << r.status_message();

    v1::SessionRequest receive;
    receive.mutable_receive()->set_channel(bad.raw);
    r = s.Call(receive);
    EXPECT_EQ(r.status_code(), kInvalidArgument) << r.status_message();
    EXPECT_TRUE(Has(r.status_message(), "channel name '" + bad.quoted + "'")) << r.status_message();

    EXPECT_EQ(s.Release(handle).status_code(), 0) << "the session still holds its buffer";
    EXPECT_EQ(s.Allocate(10).status_code(), 0) << "and is still served";
    EXPECT_TRUE(s.Finish().ok());
  }
  v1::PoolStats stats = daemon.PoolStats();
  EXPECT_EQ(stats.channels_size(), 0) << "no channel was created";
  EXPECT_EQ(stats.live_buffers(), 0u);
  EXPECT_EQ(daemon.CheckPools(), "");
}

// Case 4 as found: a libmemd process (on its lane) sends a buffer to a
// channel named with a non-ASCII character. It gets -EINVAL naming the
// character, and keeps its session and its 1 MiB buffer: a new allocation
// lands elsewhere and the buffer's bytes stay.
TEST(StringsTest, ANonAsciiChannelNameLeavesTheSendersSessionAndBuffer) {
  DaemonEnv daemon;
  ASSERT_TRUE(daemon.ok());
  Subprocess client({TestClientBinary(), "bad-channel", "caf\xc3\xa9"}, daemon.ClientEnv());
  std::optional<std::string> handle = client.ReadLine();
  ASSERT_TRUE(handle && handle->rfind("handle ", 0) == 0) << handle.value_or("(nothing)");
  std::optional<std::string> send = client.ReadLine();
  ASSERT_TRUE(send);
  EXPECT_TRUE(Has(*send, "send -22 channel name 'caf\\xc3\\xa9' contains '\\xc3\\xa9'")) << *send;
  EXPECT_EQ(client.ReadLine(), "ok");
  v1::ListSessionsResponse sessions = daemon.Sessions();
  ASSERT_EQ(sessions.sessions_size(), 1);
  EXPECT_EQ(sessions.sessions(0).held_buffers(), 2u) << "one session all along, holding both";
  EXPECT_EQ(daemon.PoolStats().live_buffers(), 2u);
  client.CloseStdin();
  EXPECT_EQ(ExitCode(client.Wait()), 0);
}

// `memctl ARGS --json` against `daemon`, parsed; an empty object (and a test
// failure) when it exits with an error.
nlohmann::json MemctlJson(const DaemonEnv& daemon, std::vector<std::string> args) {
  args.insert(args.begin(), {MemctlBinary(), "--address", daemon.address()});
  args.push_back("--json");
  auto [code, out] = RunCommand(args);
  EXPECT_EQ(code, 0) << out.substr(0, 2000);
  return code == 0 ? nlohmann::json::parse(out) : nlohmann::json::object();
}

const nlohmann::json* ClientWithPid(const nlohmann::json& clients, pid_t pid) {
  for (const auto& c : clients) {
    if (c["pid"] == pid) return &c;
  }
  return nullptr;
}

// Case 12: the kernel keeps 15 bytes of a process name, so 14 ASCII bytes and
// a 2-byte character leave a lone lead byte in /proc/<pid>/comm. The listing
// shows the whole characters; control characters and stray bytes show as
// \xNN; a client_name in UTF-8 shows as sent.
TEST(StringsTest, ProcessAndClientNamesOfAnyBytesAreListed) {
  DaemonEnv daemon;
  ASSERT_TRUE(daemon.ok());
  Subprocess cut({TestClientBinary(), "named", "abcdefghijklmn\xc3\xa9"}, daemon.ClientEnv());
  ASSERT_EQ(cut.ReadLine(), "ready");
  Subprocess odd({TestClientBinary(), "named", "\xff\x1b[2Jx\\"}, daemon.ClientEnv());
  ASSERT_EQ(odd.ReadLine(), "ready");
  RawSession labelled(daemon.address());
  ASSERT_EQ(labelled.Call(AttachRequest("default", "d\xc3\xa9" "codeur")).status_code(), 0);

  nlohmann::json clients = MemctlJson(daemon, {"clients"})["clients"];
  ASSERT_EQ(clients.size(), 3u) << clients.dump();
  const nlohmann::json* c = ClientWithPid(clients, cut.pid());
  ASSERT_NE(c, nullptr);
  EXPECT_EQ((*c)["process_name"], "abcdefghijklmn");
  c = ClientWithPid(clients, odd.pid());
  ASSERT_NE(c, nullptr);
  EXPECT_EQ((*c)["process_name"], "\\xff\\x1b[2Jx\\\\");
  c = ClientWithPid(clients, getpid());
  ASSERT_NE(c, nullptr);
  EXPECT_EQ((*c)["client_name"], "d\xc3\xa9" "codeur");

  auto [code, table] = RunCommand({MemctlBinary(), "--address", daemon.address(), "clients"});
  EXPECT_EQ(code, 0) << table;
  EXPECT_TRUE(Has(table, "abcdefghijklmn ")) << table;
  EXPECT_FALSE(Has(table, "\x1b")) << "no control character reaches the operator's terminal";
}

// The admin requests that name a pool answer NOT_FOUND quoting it escaped.
TEST(StringsTest, AdminRequestsNamingAPoolOfBadBytesGetEscapedErrors) {
  DaemonEnv daemon;
  ASSERT_TRUE(daemon.ok());
  const uint64_t max_alloc = daemon.PoolStats().max_alloc_bytes();
  auto admin = v1::Admin::NewStub(
      grpc::CreateChannel("unix:" + daemon.socket_path(), grpc::InsecureChannelCredentials()));
  for (const BadBytes& bad : AllBadBytes()) {
    SCOPED_TRACE("bytes " + bad.quoted);
    grpc::ClientContext list_context;
    v1::ListBuffersRequest list;
    list.set_pool(bad.raw);
    v1::ListBuffersResponse buffers;
    grpc::Status status = admin->ListBuffers(&list_context, list, &buffers);
    EXPECT_EQ(status.error_code(), grpc::StatusCode::NOT_FOUND) << status.error_message();
    EXPECT_EQ(status.error_message(), "no pool named '" + bad.quoted + "'");

    grpc::ClientContext set_context;
    v1::SetMaxAllocRequest set;
    set.set_pool(bad.raw);
    set.set_max_alloc_bytes(4096);
    v1::SetMaxAllocResponse previous;
    status = admin->SetMaxAlloc(&set_context, set, &previous);
    EXPECT_EQ(status.error_code(), grpc::StatusCode::NOT_FOUND) << status.error_message();
    EXPECT_EQ(status.error_message(), "no pool named '" + bad.quoted + "'");
  }
  auto [code, out] = RunCommand({"/bin/sh", "-c", "exec \"$0\" \"$@\" 2>&1", MemctlBinary(),
                                 "--address", daemon.address(), "buffers", "--pool", "\xc3"});
  EXPECT_EQ(code, 1) << out;
  EXPECT_TRUE(Has(out, "no pool named '\\xc3'")) << out;
  EXPECT_EQ(daemon.PoolStats().max_alloc_bytes(), max_alloc) << "nothing changed";
}

// A connection to 127.0.0.1:port that sent the first lines of an HTTP
// request and then stays silent until destroyed.
class HalfSentRequest {
 public:
  explicit HalfSentRequest(int port) : fd_(socket(AF_INET, SOCK_STREAM, 0)) {
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    addr.sin_port = htons(static_cast<uint16_t>(port));
    connected_ = connect(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) == 0;
    const std::string half = "GET /metrics HTTP/1.1\r\nHost: 127.0.0.1\r\n";
    connected_ = connected_ && write(fd_, half.data(), half.size()) == static_cast<ssize_t>(half.size());
  }
  ~HalfSentRequest() { close(fd_); }
  HalfSentRequest(const HalfSentRequest&) = delete;
  HalfSentRequest& operator=(const HalfSentRequest&) = delete;
  bool connected() const { return connected_; }

 private:
  int fd_;
  bool connected_ = false;
};

// Case 13: idle clients that sent half a request, more of them than the
// endpoint has workers, do not keep a scrape from being answered. The bound
// is generous (the request timeout frees a worker within seconds); before,
// two such clients stalled every scrape for 30 s.
TEST(MetricsEndpointTest, IdleHalfSentRequestsDoNotStallAScrape) {
  const int port = FreePort();
  DaemonEnv daemon({.extra_args = {"--metrics-listen", "127.0.0.1:" + std::to_string(port)}});
  ASSERT_TRUE(daemon.ok());
  std::vector<std::unique_ptr<HalfSentRequest>> idle;
  for (int i = 0; i < 12; ++i) {
    idle.push_back(std::make_unique<HalfSentRequest>(port));
    ASSERT_TRUE(idle.back()->connected());
  }
  for (int scrape = 0; scrape < 2; ++scrape) {
    std::optional<std::string> body = HttpGet(port, "/metrics", std::chrono::seconds(20));
    ASSERT_TRUE(body) << "scrape " << scrape << " got no answer with " << idle.size()
                      << " idle clients connected";
    EXPECT_TRUE(Has(*body, "memd_uptime_seconds ")) << *body;
  }
  EXPECT_EQ(daemon.PoolStats().name(), "default") << "the daemon still serves";
}


// Case 8, the admin half: 60,000 channels with 64-byte names made GetStats
// answer ~4.4 MiB, over gRPC's 4 MiB limit, so `memctl stats`, `--json` and
// `health` failed (health with exit 1). GetStats now lists the 64 busiest
// channels of a pool and counts the others; health asks for no channels.
// (Four client processes of one uid make the channels: adjust if per-uid
// channel limits come below 15,000.)
TEST(AdminAnswersTest, SixtyThousandChannelsLeaveStatsAndHealthAnswering) {
  DaemonEnv daemon({.pools = {"default=64MiB,mode=0666"},
                    .extra_args = {"--socket-mode", "0666"}});
  ASSERT_TRUE(daemon.ok());
  // A uid may have 1,024 channels (docs/errors.md E55): 60 uids of 1,000 each.
  constexpr int kClients = 60, kPerClient = 1000, kChannels = kClients * kPerClient;
  const std::string prefix(59, 'c');  // + 5 digits: 64-byte names, the longest allowed
  for (int batch = 0; batch < kClients; batch += 10) {
    std::vector<std::unique_ptr<Subprocess>> senders;
    for (int i = batch; i < batch + 10; ++i) {
      senders.push_back(std::make_unique<Subprocess>(
          AsUid(53000 + i, {TestClientBinary(), "channels", prefix,
                            std::to_string(10000 + i * kPerClient), std::to_string(kPerClient)}),
          daemon.ClientEnv()));
    }
    for (auto& sender : senders) ASSERT_EQ(sender->ReadLine(std::chrono::minutes(5)), "sent");
  }
  RawSession busy(daemon.address());
  ASSERT_EQ(busy.Attach("default").status_code(), 0);
  for (int i = 0; i < 3; ++i) {
    v1::SessionRequest send;
    send.mutable_send()->set_channel("busiest");
    ASSERT_EQ(busy.Call(send).status_code(), 0);
  }

  nlohmann::json pool = MemctlJson(daemon, {"stats"})["pools"][0];
  EXPECT_EQ(pool["channels_total"], kChannels + 1);
  ASSERT_EQ(pool["channels"].size(), 64u);
  EXPECT_EQ(pool["channels_omitted"], kChannels + 1 - 64);
  EXPECT_EQ(pool["channels"][0]["name"], "busiest") << "the busiest channel comes first";
  EXPECT_EQ(pool["channels"][0]["depth"], 3u);

  auto [code, table] = RunCommand({MemctlBinary(), "--address", daemon.address(), "stats"});
  EXPECT_EQ(code, 0) << table.substr(0, 2000);
  EXPECT_TRUE(Has(table, std::to_string(kChannels + 1 - 64) + " more channels not shown")) << table;
  auto [health, out] = RunCommand({MemctlBinary(), "--address", daemon.address(), "health"});
  EXPECT_EQ(health, 0) << out;
  EXPECT_TRUE(Has(out, "SERVING")) << out;
}

// One HTTP/2 connection carrying `count` sessions, each attached to
// "default" and holding one reference to `handle`.
class ManySessions {
 public:
  ManySessions(const std::string& socket_path, int count, uint64_t handle)
      : channel_(grpc::CreateChannel("unix:" + socket_path, grpc::InsecureChannelCredentials())),
        stub_(v1::Memory::NewStub(channel_)) {
    for (int i = 0; i < count; ++i) {
      auto& s = sessions_.emplace_back(std::make_unique<Session>());
      s->stream = stub_->Session(&s->context);
      v1::SessionRequest attach;
      attach.mutable_attach()->set_pool("default");
      v1::SessionRequest retain;
      retain.mutable_retain()->set_handle(handle);
      v1::SessionResponse r;
      ok_ = ok_ && s->stream->Write(attach) && s->stream->Read(&r) && r.status_code() == 0 &&
            s->stream->Write(retain) && s->stream->Read(&r) && r.status_code() == 0;
    }
  }
  ~ManySessions() {
    for (auto& s : sessions_) s->stream->WritesDone();
    for (auto& s : sessions_) s->stream->Finish();
  }
  bool ok() const { return ok_; }

 private:
  struct Session {
    grpc::ClientContext context;
    std::unique_ptr<grpc::ClientReaderWriter<v1::SessionRequest, v1::SessionResponse>> stream;
  };
  std::shared_ptr<grpc::Channel> channel_;
  std::unique_ptr<v1::Memory::Stub> stub_;
  std::vector<std::unique_ptr<Session>> sessions_;
  bool ok_ = true;
};

// More sessions than a page holds: ListSessions answers a page and the
// token of the next, memctl gathers every page (whatever its page size),
// and a buffer held by all of them lists 64 holders and counts them all.
TEST(AdminAnswersTest, SessionsComeInPagesAndABuffersHoldersAreCounted) {
  // More sessions of one uid than the default bound (1024, E85) allows.
  DaemonEnv daemon({.extra_args = {"--max-sessions-per-uid", "2048"}});
  ASSERT_TRUE(daemon.ok());
  Subprocess holder({TestClientBinary(), "hold", "1", "1000", "7"}, daemon.ClientEnv());
  std::vector<uint64_t> handles = ReadHandles(holder);
  ASSERT_EQ(handles.size(), 1u);
  constexpr int kSessions = 1100;
  ManySessions sessions(daemon.socket_path(), kSessions, handles[0]);
  ASSERT_TRUE(sessions.ok());

  v1::ListSessionsResponse page = daemon.Sessions();
  EXPECT_EQ(page.sessions_size(), 1000);
  EXPECT_EQ(page.total_sessions(), kSessions + 1u);
  EXPECT_GT(page.next_page_token(), page.sessions(999).session_id());
  for (const std::vector<std::string>& paging : {std::vector<std::string>{},
                                                 std::vector<std::string>{"--page-size", "300"}}) {
    std::vector<std::string> args = {"clients"};
    args.insert(args.end(), paging.begin(), paging.end());
    nlohmann::json clients = MemctlJson(daemon, args)["clients"];
    ASSERT_EQ(clients.size(), kSessions + 1u);
    for (size_t i = 1; i < clients.size(); ++i) {
      ASSERT_LT(clients[i - 1]["session_id"], clients[i]["session_id"]) << "each once, in order";
    }
  }

  nlohmann::json buffers = MemctlJson(daemon, {"buffers"})["buffers"];
  ASSERT_EQ(buffers.size(), 1u);
  EXPECT_EQ(buffers[0]["references"], kSessions + 1u);
  EXPECT_EQ(buffers[0]["holder_sessions"], kSessions + 1u);
  EXPECT_EQ(buffers[0]["holders"].size(), 64u);
}

// 20,000 buffers: ListBuffers pages through them in slot order without
// overlap; memctl shows 1000 by default (truncated) and all with --limit 0.
TEST(AdminAnswersTest, TwentyThousandBuffersComeInPages) {
  DaemonEnv daemon({.pools = {"default=64MiB"}});
  ASSERT_TRUE(daemon.ok());
  constexpr size_t kBuffers = 20000;
  Subprocess holder({TestClientBinary(), "hold", std::to_string(kBuffers), "64", "1"},
                    daemon.ClientEnv());
  std::vector<uint64_t> handles = ReadHandles(holder);
  ASSERT_EQ(handles.size(), kBuffers);

  nlohmann::json first = MemctlJson(daemon, {"buffers"});
  EXPECT_EQ(first["buffers"].size(), 1000u);
  EXPECT_EQ(first["truncated"], true);
  nlohmann::json all = MemctlJson(daemon, {"buffers", "--limit", "0"});
  EXPECT_EQ(all["truncated"], false);
  std::set<uint64_t> listed;
  for (const auto& b : all["buffers"]) listed.insert(std::stoull(b["handle"].get<std::string>()));
  EXPECT_EQ(listed, std::set<uint64_t>(handles.begin(), handles.end()));
  EXPECT_EQ(all["buffers"].size(), kBuffers) << "no buffer listed twice";

  auto admin = v1::Admin::NewStub(
      grpc::CreateChannel("unix:" + daemon.socket_path(), grpc::InsecureChannelCredentials()));
  v1::ListBuffersRequest request;
  request.set_limit(5000);  // above the page limit
  v1::ListBuffersResponse page1, page2;
  grpc::ClientContext c1, c2;
  ASSERT_TRUE(admin->ListBuffers(&c1, request, &page1).ok());
  ASSERT_EQ(page1.buffers_size(), 1000);
  ASSERT_NE(page1.next_page_token(), 0u);
  request.set_page_token(page1.next_page_token());
  ASSERT_TRUE(admin->ListBuffers(&c2, request, &page2).ok());
  ASSERT_EQ(page2.buffers_size(), 1000);
  EXPECT_EQ(std::to_string(page2.buffers(0).handle()), all["buffers"][1000]["handle"])
      << "page 2 goes on from page 1";
  EXPECT_EQ(MemctlJson(daemon, {"stats"})["pools"][0]["live_buffers"], kBuffers);
}

}  // namespace
}  // namespace memd::testing
