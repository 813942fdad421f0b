// The arena rows of docs/errors.md (E71, E75, E76, E78) on real daemons and
// real client processes: each bad input is refused with a message naming
// the value and the limit and changes nothing (the daemon serves, its
// stats are unchanged, the session goes on working). And the idle return
// (client/arena.cc, kReturnTicks): an empty chunk goes back to the pool
// while the session keeps one.
#include <signal.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <string>

#include <gtest/gtest.h>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "arena_session.h"
#include "daemon_env.h"
#include "memd/client.h"
#include "memd/memd.h"
#include "memd/shared/limits.h"
#include "memd/shared/size.h"
#include "raw_session.h"
#include "subprocess.h"

namespace memd::testing {
namespace {

constexpr int kInvalidArgument = grpc::StatusCode::INVALID_ARGUMENT;  // on the raw wire

// The session `daemon` lists with client_name `name` (all zero, and a test
// failure, when there is none).
v1::SessionInfo SessionNamed(const DaemonEnv& daemon, const std::string& name) {
  v1::ListSessionsResponse sessions = daemon.Sessions();
  for (const v1::SessionInfo& s : sessions.sessions()) {
    if (s.client_name() == name) return s;
  }
  ADD_FAILURE() << "no session named " << name;
  return {};
}

// E71: the C API and the C++ API refuse the session; no session is opened.
TEST(ArenaErrorsTest, ThresholdThatIsNotASizeIsRefusedNamingIt) {
  DaemonEnv daemon;
  ASSERT_TRUE(daemon.ok());
  for (const char* bad : {"lots", "12 parsecs", "-5", "99999999999999999999"}) {
    absl::StatusOr<uint64_t> parsed = ParseSize(bad);  // the message's owner
    ASSERT_FALSE(parsed.ok()) << bad;
    std::string expected = absl::StrCat("MEMD_ARENA_THRESHOLD: ", parsed.status().message());
    ::setenv("MEMD_ARENA_THRESHOLD", bad, 1);
    EXPECT_EQ(memd_init(daemon.address().c_str(), "default"), -EINVAL) << bad;
    EXPECT_TRUE(absl::StrContains(memd_last_error(), expected)) << memd_last_error();
    EXPECT_TRUE(absl::StrContains(memd_last_error(), absl::StrCat("'", bad, "'")))
        << memd_last_error();
    absl::StatusOr<std::unique_ptr<Client>> client =
        Client::Connect({.address = daemon.address(), .pool = "default"});
    EXPECT_EQ(client.status().code(), absl::StatusCode::kInvalidArgument) << bad;
    EXPECT_TRUE(absl::StrContains(client.status().message(), expected)) << client.status();
  }
  ::unsetenv("MEMD_ARENA_THRESHOLD");
  EXPECT_EQ(daemon.Sessions().sessions_size(), 0);
  EXPECT_EQ(daemon.PoolStats().live_buffers(), 0u);
  // A good threshold afterwards: the session attaches and serves locally.
  ArenaCSession session(daemon);
  ASSERT_TRUE(session.ok());
  void* p = memd_malloc(100);
  ASSERT_NE(p, nullptr) << memd_last_error();
  memd_free(p);
  EXPECT_EQ(daemon.CheckPools(), "");
}

// An arena report of `count` entries in `idle` (or `use`): `chunk` first,
// then handles the session does not hold (ignored by the daemon), with
// counters claiming `reserved_bytes`.
v1::SessionRequest Report(bool use, uint32_t count, uint64_t chunk, uint64_t reserved_bytes) {
  v1::SessionRequest request;
  v1::ArenaReportRequest* report = request.mutable_arena_report();
  for (uint32_t i = 0; i < count; ++i) {
    uint64_t handle = i == 0 ? chunk : 0xdead0000ull + i;
    use ? report->add_use(handle) : report->add_idle(handle);
  }
  report->mutable_counters()->set_reserved_bytes(reserved_bytes);
  return request;
}

// E75 on a raw session: a report above the limit changes neither the
// session's counters nor which chunks are idle (pool pressure shows it);
// one at the limit does both.
TEST(ArenaErrorsTest, ReportOfMoreThanTheBatchLimitIsRefusedAndChangesNothing) {
  DaemonEnv daemon({.pools = {"default=4MiB"}});
  ASSERT_TRUE(daemon.ok());
  RawSession raw(daemon.address());
  v1::SessionRequest attach;
  attach.mutable_attach()->set_pool("default");
  attach.mutable_attach()->set_client_name("raw-arena");
  ASSERT_EQ(raw.Call(attach).status_code(), 0);
  v1::SessionResponse granted = raw.Allocate(3 << 20);
  ASSERT_EQ(granted.status_code(), 0) << granted.status_message();
  const uint64_t chunk = granted.buffer().handle();
  std::unique_ptr<Client> other = ConnectPlain(daemon);
  ASSERT_NE(other, nullptr);
  const v1::PoolStats before = daemon.PoolStats();
  const uint32_t over = limits::kMaxBatch + 1;
  const std::string message =
      absl::StrFormat("arena report of %u chunks; at most %u are allowed", over, limits::kMaxBatch);

  // Too many idle entries: the chunk stays busy, the counters unreported.
  v1::SessionResponse refused = raw.Call(Report(/*use=*/false, over, chunk, 3 << 20));
  EXPECT_EQ(refused.status_code(), kInvalidArgument) << refused.status_message();
  EXPECT_EQ(refused.status_message(), message);
  EXPECT_EQ(SessionNamed(daemon, "raw-arena").arena_reserved_bytes(), 0u);
  absl::StatusOr<Buffer> squeezed = other->Allocate(2 << 20);
  EXPECT_EQ(squeezed.status().code(), absl::StatusCode::kResourceExhausted) << squeezed.status();
  v1::PoolStats after = daemon.PoolStats();
  EXPECT_EQ(after.used_bytes(), before.used_bytes());
  EXPECT_EQ(after.live_buffers(), before.live_buffers());
  EXPECT_EQ(after.arena_chunks_taken(), 0u);

  // At the limit: accepted, the chunk is idle and the counters shown.
  v1::SessionResponse accepted = raw.Call(Report(/*use=*/false, limits::kMaxBatch, chunk, 3 << 20));
  ASSERT_EQ(accepted.status_code(), 0) << accepted.status_message();
  EXPECT_EQ(SessionNamed(daemon, "raw-arena").arena_reserved_bytes(), 3u << 20);

  // Too many use entries: the chunk stays idle, the counters as they were.
  refused = raw.Call(Report(/*use=*/true, over, chunk, 12345));
  EXPECT_EQ(refused.status_code(), kInvalidArgument) << refused.status_message();
  EXPECT_EQ(refused.status_message(), message);
  EXPECT_EQ(SessionNamed(daemon, "raw-arena").arena_reserved_bytes(), 3u << 20);
  squeezed = other->Allocate(2 << 20);  // pressure takes the idle chunk
  ASSERT_TRUE(squeezed.ok()) << squeezed.status();
  EXPECT_EQ(daemon.PoolStats().arena_chunks_taken(), 1u);
  EXPECT_EQ(SessionNamed(daemon, "raw-arena").held_buffers(), 0u);
  ASSERT_TRUE(squeezed->Release().ok());
  EXPECT_EQ(raw.Allocate(10).status_code(), 0) << "the session still served";
  EXPECT_EQ(daemon.CheckPools(), "");
}

// E76 with `pool` (a pool spec with a quota of 2 buffers): the arena's
// chunk and one registered block fill it; the next registration is refused
// with `message`, and the block stays usable.
void ExpectHandleRefusedByQuota(const std::string& pool, const std::string& message) {
  SCOPED_TRACE(pool);
  DaemonEnv daemon({.pools = {pool}});
  ASSERT_TRUE(daemon.ok());
  ArenaCSession session(daemon);
  ASSERT_TRUE(session.ok());
  auto* kept = static_cast<uint8_t*>(memd_malloc(256));
  auto* refused = static_cast<uint8_t*>(memd_malloc(256));
  ASSERT_NE(kept, nullptr) << memd_last_error();
  ASSERT_NE(refused, nullptr) << memd_last_error();
  std::memset(refused, 0x31, 256);
  const v1::PoolStats baseline = daemon.PoolStats();  // the arena's chunk only
  ASSERT_EQ(baseline.live_buffers(), 1u);
  const uint64_t kept_handle = memd_handle(kept);  // the session's second buffer
  ASSERT_NE(kept_handle, 0u) << memd_last_error();
  const v1::PoolStats before = daemon.PoolStats();

  EXPECT_EQ(memd_handle(refused), 0u);
  EXPECT_TRUE(absl::StrContains(memd_last_error(), message)) << memd_last_error();
  v1::PoolStats after = daemon.PoolStats();
  EXPECT_EQ(after.live_buffers(), before.live_buffers());
  EXPECT_EQ(after.used_bytes(), before.used_bytes());
  EXPECT_EQ(daemon.Sessions().sessions(0).held_buffers(), 2u);
  // The block is untouched and still this process's to use.
  for (int i = 0; i < 256; ++i) ASSERT_EQ(refused[i], 0x31) << i;
  std::memset(refused, 0x32, 256);
  // Room again (the kept block's range released): it registers now.
  memd_free(kept);
  const uint64_t handle = memd_handle(refused);
  ASSERT_NE(handle, 0u) << memd_last_error();
  EXPECT_NE(handle, kept_handle);
  memd_free(refused);
  after = daemon.PoolStats();
  EXPECT_EQ(after.live_buffers(), baseline.live_buffers());
  EXPECT_EQ(after.used_bytes(), baseline.used_bytes());
  EXPECT_EQ(daemon.CheckPools(), "");
}

// E76: a registration counts against the quotas like any buffer.
TEST(ArenaErrorsTest, HandleBeyondAQuotaIsZeroNamingItAndTheBlockStays) {
  ExpectHandleRefusedByQuota("default=64MiB,session-buffers=2",
                             "arena registration in pool 'default' would exceed the per-session "
                             "quota of 2 buffers: the session references 2");
  ExpectHandleRefusedByQuota("default=64MiB,uid-buffers=2",
                             absl::StrFormat("arena registration in pool 'default' would exceed "
                                             "the per-uid quota of 2 buffers for uid %u",
                                             ::getuid()));
}

// E78: a registered block another process retains cannot move; it stays,
// with its bytes, for both processes.
TEST(ArenaErrorsTest, ReallocOfABlockAnotherProcessHoldsIsRefusedAndKeepsIt) {
  DaemonEnv daemon;
  ASSERT_TRUE(daemon.ok());
  ArenaCSession session(daemon);
  ASSERT_TRUE(session.ok());
  auto* p = static_cast<uint8_t*>(memd_malloc(4096));
  ASSERT_NE(p, nullptr) << memd_last_error();
  std::memset(p, 90, 4096);
  const uint64_t handle = memd_handle(p);
  ASSERT_NE(handle, 0u) << memd_last_error();
  Subprocess reader = ArenaClient(daemon, {"retain", std::to_string(handle)});
  ASSERT_EQ(reader.ReadLine(), "bytes 4096 90 4096");
  const v1::PoolStats before = daemon.PoolStats();
  const std::string message = absl::StrFormat(
      "realloc of handle 0x%016x in pool 'default' refused: it has 2 references and moving it "
      "would pull it from under the other holders", handle);

  // Growing must move it; so must any size, the registered range being fixed.
  for (size_t size : {size_t{8192}, size_t{1} << 20, size_t{100}}) {
    EXPECT_EQ(memd_realloc(p, size), nullptr) << size;
    EXPECT_EQ(std::string(memd_last_error()), message) << size;
  }
  v1::PoolStats after = daemon.PoolStats();
  EXPECT_EQ(after.live_buffers(), before.live_buffers());
  EXPECT_EQ(after.used_bytes(), before.used_bytes());
  for (int i = 0; i < 4096; ++i) ASSERT_EQ(p[i], 90) << i;
  EXPECT_EQ(memd_handle(p), handle);
  // Still the same memory for both: the reader sees what we write now.
  std::memset(p, 107, 4096);
  reader.CloseStdin();
  EXPECT_EQ(reader.ReadLine(), "bytes 4096 107 4096");
  EXPECT_EQ(reader.ReadLine(), "released");
  EXPECT_EQ(ExitCode(reader.Wait()), 0);
  // Ours alone again: now it moves, content kept.
  auto* moved = static_cast<uint8_t*>(memd_realloc(p, 8192));
  ASSERT_NE(moved, nullptr) << memd_last_error();
  for (int i = 0; i < 4096; ++i) ASSERT_EQ(moved[i], 107) << i;
  memd_free(moved);
  EXPECT_EQ(daemon.CheckPools(), "");
}

// client/arena.cc: a chunk idle for kReturnTicks (5 s) is released while
// the session keeps one; its bytes are the pool's free bytes again.
TEST(ArenaIdleTest, AnIdleChunkGoesBackToThePoolAndTheSessionKeepsOne) {
  DaemonEnv daemon;
  ASSERT_TRUE(daemon.ok());
  // 400 blocks of 4 KiB: the first chunk (1 MiB, 256 blocks) and a second.
  Subprocess holder = ArenaClient(daemon, {"idle", "400", "4096"});
  ASSERT_EQ(holder.ReadLine(), "allocated");
  v1::SessionInfo busy;
  ASSERT_TRUE(WaitFor([&] {
    v1::ListSessionsResponse sessions = daemon.Sessions();
    if (sessions.sessions_size() != 1) return false;
    busy = sessions.sessions(0);
    return busy.arena_in_use_bytes() >= 400u * 4096 &&
           busy.arena_reserved_bytes() == busy.held_bytes();
  }));
  ASSERT_GE(busy.held_buffers(), 2u);
  const uint64_t free_before = daemon.PoolStats().free_bytes();

  holder.CloseStdin();
  ASSERT_EQ(holder.ReadLine(), "freed");
  v1::SessionInfo idle;
  ASSERT_TRUE(WaitFor(
      [&] {
        v1::ListSessionsResponse sessions = daemon.Sessions();
        if (sessions.sessions_size() != 1) return false;
        idle = sessions.sessions(0);
        return idle.held_buffers() == 1 && idle.arena_reserved_bytes() == idle.held_bytes();
      },
      std::chrono::seconds(20)))
      << "held " << idle.held_buffers() << " buffers, reserved " << idle.arena_reserved_bytes();
  EXPECT_GT(idle.held_bytes(), 0u);
  const v1::PoolStats after = daemon.PoolStats();
  EXPECT_EQ(after.free_bytes(), free_before + (busy.held_bytes() - idle.held_bytes()));
  EXPECT_EQ(after.live_buffers(), 1u);
  EXPECT_EQ(daemon.CheckPools(), "");
  holder.Kill(SIGKILL);
  holder.Wait();
}

v1::SessionRequest Register(uint64_t chunk, uint64_t offset, uint64_t bytes) {
  v1::SessionRequest r;
  v1::ArenaRegisterRequest* reg = r.mutable_arena_register();
  reg->set_chunk(chunk);
  reg->set_offset_bytes(offset);
  reg->set_size_bytes(bytes);
  reg->set_capacity_bytes(bytes);
  return r;
}

// Issue 24, defect 1: a client registered 128 bytes at 0 and 128 bytes at 64
// of a buffer it held, freed the buffer, and no later start of memd adopted
// the pool ("overlaps another ... Start with --fresh"). The second range is
// refused naming both, and after a stop (clean or kill -9) the daemon comes
// back with the range that was registered.
TEST(ArenaErrorsTest, OverlappingRangesAreRefusedAndTheDaemonRestartsWithTheBuffers) {
  for (int signal : {SIGTERM, SIGKILL}) {
    SCOPED_TRACE(strsignal(signal));
    DaemonEnv daemon({.pools = {"default=4MiB"}});
    ASSERT_TRUE(daemon.ok());
    {
      RawSession raw(daemon.address());
      ASSERT_EQ(raw.Attach("default").status_code(), 0);
      v1::SessionResponse granted = raw.Allocate(4096);
      ASSERT_EQ(granted.status_code(), 0) << granted.status_message();
      const uint64_t chunk = granted.buffer().handle(), at = granted.buffer().offset_bytes();
      v1::SessionResponse first = raw.Call(Register(chunk, at, 128));
      ASSERT_EQ(first.status_code(), 0) << first.status_message();
      for (uint64_t offset : {at + 64, at}) {
        v1::SessionResponse second = raw.Call(Register(chunk, offset, 128));
        EXPECT_EQ(second.status_code(), grpc::StatusCode::ALREADY_EXISTS)
            << "offset " << offset - at << ": " << second.status_message();
        EXPECT_TRUE(absl::StrContains(
            second.status_message(),
            absl::StrFormat("range at offset %u of 128 bytes overlaps the range at offset %u of "
                            "128 bytes already registered in chunk 0x%016x",
                            offset, at, chunk)))
            << second.status_message();
      }
      EXPECT_EQ(daemon.PoolStats().live_buffers(), 2u) << "a refusal registers nothing";
      ASSERT_EQ(raw.Release(chunk).status_code(), 0);
      std::optional<int> stopped = daemon.Stop(signal);
      ASSERT_TRUE(stopped.has_value());
    }
    ASSERT_TRUE(daemon.Restart()) << "the pool is adopted again";
    v1::PoolStats stats = daemon.PoolStats();
    EXPECT_EQ(stats.live_buffers(), 1u) << stats.DebugString();
    EXPECT_EQ(stats.unclaimed_references(), 1u) << "the range waits for its client";
    EXPECT_EQ(daemon.CheckPools(), "");
  }
}

// Issue 24, defect 4: a client only stopped (SIGSTOP) while the daemon
// restarted loses its buffers when the reclaim grace ends. It was then told
// its arena block "was sent away" (nothing was sent) and the daemon logged
// that the holders' "processes died while the daemon was down" (the process
// lives). Both now say what happened. Under load this test also hung (CI):
// the woken client's main thread held its arena across a lane call to the
// dead daemon while the monitor thread, which fails such calls, waited for
// the arena in its tick; the tick now skips a busy arena. Another client keeps the pool's memory
// (it hands it back to the restarted daemon), as on a busy host.
TEST(ArenaErrorsTest, AStoppedClientThatMissedTheGraceIsToldItsBuffersWentAtTheRestart) {
  DaemonEnv daemon({.pools = {"default=64MiB"}, .extra_args = {"--reclaim-grace", "1s"}});
  ASSERT_TRUE(daemon.ok());
  std::unique_ptr<Client> keeper = ConnectPlain(daemon);
  ASSERT_NE(keeper, nullptr);
  absl::StatusOr<Buffer> kept = keeper->Allocate(4096);
  ASSERT_TRUE(kept.ok()) << kept.status();
  std::map<std::string, std::string> env = daemon.ClientEnv();
  env["MEMD_ARENA_THRESHOLD"] = kArenaOn;
  env["MEMD_OUTAGE_WAIT_MS"] = "60000";
  Subprocess client({MEMD_ARENA_CLIENT_BINARY, "lose", "1", "100", std::to_string(1 << 20)}, env);
  ASSERT_EQ(client.ReadLine(), "ready");

  client.Kill(SIGSTOP);
  ASSERT_TRUE(daemon.Stop(SIGKILL).has_value());
  ASSERT_TRUE(daemon.Restart());
  // The keeper reconnects; the stopped client's references go at grace end.
  ASSERT_TRUE(WaitFor([&] {
    v1::PoolStats s = daemon.PoolStats();
    return s.sessions() == 1 && s.unclaimed_references() == 0 && s.live_buffers() == 1;
  }, std::chrono::seconds(20))) << daemon.PoolStats().DebugString();
  client.Kill(SIGCONT);
  client.CloseStdin();
  for (const char* which : {"small ", "large "}) {
    std::optional<std::string> line = client.ReadLine(std::chrono::seconds(90));
    if (!line.has_value()) client.PrintStacks();  // where it waits, in the log
    ASSERT_TRUE(line.has_value()) << which;
    EXPECT_EQ(line->rfind(which, 0), 0u) << *line;
    EXPECT_FALSE(absl::StrContains(*line, "sent away")) << *line;
    EXPECT_FALSE(absl::StrContains(*line, "already released")) << *line;
    EXPECT_TRUE(absl::StrContains(*line, "the daemon restarted and released its handle")) << *line;
  }
  EXPECT_EQ(ExitCode(client.Wait()), 0);
  int code = 0;
  std::string log = daemon.StopAndReadOutput(SIGTERM, &code);
  EXPECT_FALSE(absl::StrContains(log, "died while the daemon was down")) << log;
  EXPECT_TRUE(absl::StrContains(log, "or did not reconnect in time (stopped or stalled)")) << log;
}

}  // namespace
}  // namespace memd::testing
