#include "py_client.h"

#include <algorithm>
#include <chrono>

#include <pybind11/stl.h>

#include "absl/strings/str_format.h"
#include "errors.h"
#include "py_buffer.h"

namespace py = pybind11;

namespace memd::python {
namespace {

// A receive that may wait longer than this waits in steps of it, so Ctrl-C
// (a signal handled under the GIL) interrupts it within one step.
constexpr int64_t kWaitStepMs = 1000;
// Longer receive timeouts (35 years) wait without end: a deadline that far
// would overflow the clock.
constexpr int64_t kLongestFiniteWaitMs = int64_t{1} << 40;

class PyClient {
 public:
  explicit PyClient(std::shared_ptr<Session> session) : session_(std::move(session)) {}

  static std::unique_ptr<PyClient> Connect(std::string address, std::string pool,
                                           std::string name, int64_t outage_wait_ms, bool lane,
                                           bool populate, bool read_only) {
    ConnectOptions options{.address = std::move(address),
                           .pool = std::move(pool),
                           .client_name = std::move(name),
                           .outage_wait_ms = outage_wait_ms,
                           .populate = populate,
                           .lane = lane,
                           .read_only = read_only};
    Session::CheckCanConnect();
    absl::StatusOr<std::shared_ptr<Session>> session;
    {
      py::gil_scoped_release unlocked;
      session = Session::Connect(std::move(options));
    }
    return std::make_unique<PyClient>(ValueOrThrow(std::move(session)));
  }

  // The session, for a call: ValueError after close(), ForkError in a child.
  Session& Use() const {
    if (session_ == nullptr) throw py::value_error("operation on a closed memd.Client");
    session_->CheckFork();
    return *session_;
  }

  std::unique_ptr<Buffer> Wrap(const BufferRef& ref) const {
    return std::make_unique<Buffer>(session_, ref);
  }

  std::unique_ptr<Buffer> Allocate(uint64_t size_bytes, bool zero) {
    Session& session = Use();
    absl::StatusOr<BufferRef> ref;
    {
      py::gil_scoped_release unlocked;
      ref = session.client().AllocateRef(size_bytes, zero);
    }
    return Wrap(ValueOrThrow(std::move(ref)));
  }

  std::unique_ptr<Buffer> Retain(uint64_t handle) {
    Session& session = Use();
    absl::StatusOr<BufferRef> ref;
    {
      py::gil_scoped_release unlocked;
      ref = session.client().RetainRef(handle);
    }
    return Wrap(ValueOrThrow(std::move(ref)));
  }

  void Send(const std::string& channel, const std::vector<Buffer*>& buffers,
            const py::bytes& metadata, int64_t timeout_ms, uint32_t capacity, bool share) {
    Session& session = Use();
    std::vector<uint64_t> handles;
    handles.reserve(buffers.size());
    for (Buffer* buffer : buffers) {
      if (!share) buffer->CheckMovable(session);
      handles.push_back(buffer->handle());
    }
    std::string meta = metadata;
    absl::Status status;
    {
      py::gil_scoped_release unlocked;
      status = session.client().Send(channel, handles, meta, timeout_ms, capacity,
                                     share ? SendMode::kShare : SendMode::kMove);
    }
    OkOrThrow(status);
    if (!share) {
      for (Buffer* buffer : buffers) buffer->MarkMoved();
    }
  }

  // timeout_ms < 0: wait until a message comes.
  py::tuple Receive(const std::string& channel, int64_t timeout_ms, uint32_t capacity) {
    Session& session = Use();
    if (timeout_ms > kLongestFiniteWaitMs) timeout_ms = -1;
    auto deadline = std::chrono::steady_clock::now() +
                    std::chrono::milliseconds(std::max<int64_t>(timeout_ms, 0));
    while (true) {
      int64_t step = kWaitStepMs;
      if (timeout_ms >= 0) {
        auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
            deadline - std::chrono::steady_clock::now());
        step = std::clamp<int64_t>(left.count(), 0, kWaitStepMs);
      }
      absl::StatusOr<ChannelMessage> message;
      {
        py::gil_scoped_release unlocked;
        message = session.client().Receive(channel, step, capacity);
      }
      bool more = timeout_ms < 0 || std::chrono::steady_clock::now() < deadline;
      if (!message.ok() && message.status().code() == absl::StatusCode::kDeadlineExceeded && more) {
        if (PyErr_CheckSignals() != 0) throw py::error_already_set();
        continue;
      }
      ChannelMessage got = ValueOrThrow(std::move(message));
      py::list buffers;
      for (const BufferRef& ref : got.buffers) buffers.append(py::cast(Wrap(ref)));
      return py::make_tuple(buffers, py::bytes(got.metadata));
    }
  }

  std::vector<py::tuple> QueryRefs(const std::vector<uint64_t>& handles) {
    Session& session = Use();
    absl::StatusOr<std::vector<RefCount>> counts;
    {
      py::gil_scoped_release unlocked;
      counts = session.client().QueryRefs(handles);
    }
    std::vector<py::tuple> out;
    for (const RefCount& c : ValueOrThrow(std::move(counts))) {
      out.push_back(py::make_tuple(c.handle, c.references, c.held));
    }
    return out;
  }

  void FlushReleases() {
    Session& session = Use();
    absl::Status status;
    {
      py::gil_scoped_release unlocked;
      status = session.client().FlushReleases();
    }
    OkOrThrow(status);
  }

  std::string StatsJson() {
    Session& session = Use();
    absl::StatusOr<std::string> json;
    {
      py::gil_scoped_release unlocked;
      json = session.StatsJson();
    }
    return ValueOrThrow(std::move(json));
  }

  py::dict PoolInfo() const {
    const memd::PoolInfo& p = Use().client().pool();
    py::dict d;
    d["name"] = p.name;
    d["shm_name"] = p.shm_name;
    d["size_bytes"] = p.size_bytes;
    d["alignment_bytes"] = p.alignment_bytes;
    d["max_alloc_bytes"] = p.max_alloc_bytes;
    d["index"] = p.index;
    return d;
  }

  // Drops this object's share: the session ends when no Buffer holds one.
  void Close() { session_.reset(); }
  bool closed() const { return session_ == nullptr; }
  // The process that connected (0 once closed); no fork check.
  int64_t creator_pid() const { return session_ ? session_->creator_pid() : 0; }

 private:
  std::shared_ptr<Session> session_;
};

}  // namespace

void RegisterClient(py::module_& m) {
  py::class_<PyClient>(m, "Session", "One memd session (use memd.connect()).")
      .def_static("connect", &PyClient::Connect, py::arg("address"), py::arg("pool"),
                  py::arg("name"), py::arg("outage_wait_ms"), py::arg("lane"), py::arg("populate"),
                  py::arg("read_only"))
      .def("allocate", &PyClient::Allocate, py::arg("size_bytes"), py::arg("zero"))
      .def("retain", &PyClient::Retain, py::arg("handle"))
      .def("send", &PyClient::Send, py::arg("channel"), py::arg("buffers"), py::arg("metadata"),
           py::arg("timeout_ms"), py::arg("capacity"), py::arg("share"))
      .def("receive", &PyClient::Receive, py::arg("channel"), py::arg("timeout_ms"),
           py::arg("capacity"))
      .def("query_refs", &PyClient::QueryRefs, py::arg("handles"))
      .def("flush_releases", &PyClient::FlushReleases)
      .def("stats_json", &PyClient::StatsJson)
      .def("pool_info", &PyClient::PoolInfo)
      .def_property_readonly("address", [](const PyClient& c) { return c.Use().client().address(); })
      .def_property_readonly("session_id",
                             [](const PyClient& c) { return c.Use().client().session_id(); })
      .def_property_readonly("connected",
                             [](const PyClient& c) { return c.Use().client().connected(); })
      .def_property_readonly("read_only",
                             [](const PyClient& c) { return c.Use().client().read_only(); })
      .def_property_readonly("reconnects",
                             [](const PyClient& c) { return c.Use().client().reconnects(); })
      .def_property_readonly("closed", &PyClient::closed)
      .def_property_readonly("creator_pid", &PyClient::creator_pid)
      .def("close", &PyClient::Close);
}

}  // namespace memd::python
