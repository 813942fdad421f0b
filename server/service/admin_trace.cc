// AdminHandler: StartTrace and ReadTrace, the daemon's side of `memctl
// trace` over trace::Recorder::Daemon() (trace/recorder.h). The bounds are
// memd/shared/limits.h's; each refusal names the value and the limit.
#include <unistd.h>

#include <algorithm>

#include <spdlog/spdlog.h>

#include "absl/strings/str_format.h"
#include "memd/shared/limits.h"
#include "memd/shared/names.h"
#include "memd/shared/text.h"
#include "service/admin_handler.h"
#include "trace/recorder.h"

namespace memd {

absl::Status AdminHandler::StartTrace(const AdminCaller& caller,
                                      const v1::StartTraceRequest& request,
                                      v1::StartTraceResponse* response) {
  if (absl::Status s = AuthorizeAdmin(caller, "trace"); !s.ok()) return s;
  if (request.duration_ms() == 0 || request.duration_ms() > limits::kMaxTraceDurationMs) {
    return absl::InvalidArgumentError(absl::StrFormat(
        "trace duration %u ms must be from 1 to %u ms", request.duration_ms(),
        limits::kMaxTraceDurationMs));
  }
  if (request.max_events() > limits::kMaxTraceEvents) {
    return absl::InvalidArgumentError(absl::StrFormat(
        "trace of at most %u events: the limit is %u", request.max_events(),
        limits::kMaxTraceEvents));
  }
  trace::Options options;
  options.duration = absl::Milliseconds(request.duration_ms());
  options.max_events =
      request.max_events() == 0 ? limits::kDefaultTraceEvents : request.max_events();
  if (!request.pool().empty()) {
    const Pool* pool = pools_.Find(request.pool());
    if (pool == nullptr) {
      return absl::NotFoundError(
          absl::StrFormat("no pool named '%s' to trace", Escaped(request.pool())));
    }
    options.pool_index = pool->index();
  }
  if (!request.channel().empty()) {
    if (absl::Status s = ValidateName("channel name", request.channel()); !s.ok()) return s;
    options.channel = request.channel();
  }
  std::vector<trace::SessionInfo> sessions;
  sessions_.ForEach(
      [&](const SessionRegistry::Record& record) { sessions.push_back(TraceSessionOf(record)); });
  absl::StatusOr<uint64_t> id = trace::Recorder::Daemon().Start(options, std::move(sessions));
  if (!id.ok()) return id.status();
  spdlog::info("trace {} started by {}: {} ms, at most {} events, pool '{}', channel '{}'", *id,
               caller.description, request.duration_ms(), options.max_events,
               Escaped(request.pool()), Escaped(request.channel()));
  response->set_trace_id(*id);
  response->set_max_events(options.max_events);
  return absl::OkStatus();
}

absl::Status AdminHandler::ReadTrace(const AdminCaller& caller,
                                     const v1::ReadTraceRequest& request,
                                     v1::ReadTraceResponse* response) {
  if (absl::Status s = AuthorizeAdmin(caller, "trace"); !s.ok()) return s;
  const uint32_t limit =
      request.limit() == 0 ? limits::kMaxTraceEventsPerPage
                           : std::min(request.limit(), limits::kMaxTraceEventsPerPage);
  absl::StatusOr<trace::Snapshot> got = trace::Recorder::Daemon().Read(
      request.trace_id(), request.page_token(), limit, request.stop());
  if (!got.ok()) return got.status();
  for (const trace::Event& e : got->events) {
    v1::TraceEvent* out = response->add_events();
    out->set_kind(static_cast<v1::TraceEvent::Kind>(static_cast<int>(e.kind) + 1));
    out->set_time_ns(static_cast<uint64_t>(e.time_ns));
    out->set_session_id(e.session_id);
    out->set_handle(e.handle);
    out->set_size_bytes(e.size_bytes);
    out->set_pool_index(e.pool_index);
    out->set_channel_index(e.channel);
    out->set_depth(e.depth);
    out->set_moved(e.moved);
  }
  response->set_next_page_token(got->next);
  response->set_running(got->running);
  response->set_lost_events(got->lost_events);
  for (const trace::SessionInfo& s : got->sessions) {
    v1::TraceSession* out = response->add_sessions();
    out->set_session_id(s.session_id);
    out->set_pid(s.pid);
    out->set_uid(s.uid);
    out->set_process_name(s.process_name);
    out->set_client_name(s.client_name);
  }
  for (const Pool* pool : pools_.pools()) {
    while (static_cast<uint32_t>(response->pools_size()) <= pool->index()) response->add_pools();
    response->set_pools(static_cast<int>(pool->index()), pool->name());
  }
  for (const std::string& channel : got->channels) response->add_channels(channel);
  response->set_daemon_pid(::getpid());
  response->set_duration_ns(static_cast<uint64_t>(got->duration_ns));
  return absl::OkStatus();
}

}  // namespace memd
