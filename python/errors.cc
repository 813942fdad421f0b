#include "errors.h"

#include <unistd.h>

#include <string>

namespace py = pybind11;

namespace memd::python {
namespace {

// The factory; a leaked reference so no destructor runs at interpreter exit.
PyObject* g_factory = nullptr;

[[noreturn]] void Throw(int code, const std::string& message, const char* kind) {
  if (g_factory == nullptr) throw std::runtime_error(message);
  py::object error = py::reinterpret_borrow<py::object>(g_factory)(code, message, kind);
  PyErr_SetObject(reinterpret_cast<PyObject*>(Py_TYPE(error.ptr())), error.ptr());
  throw py::error_already_set();
}

}  // namespace

void SetErrorFactory(py::object factory) {
  Py_XDECREF(g_factory);
  g_factory = factory.release().ptr();
}

void ThrowStatus(const absl::Status& status) {
  Throw(static_cast<int>(status.code()), std::string(status.message()), "status");
}

void ThrowForkError(pid_t parent_pid, bool connecting) {
  // What works instead: gRPC (memd's transport) cannot start again in a
  // child forked after it ran (its threads and polling state stay the
  // parent's: a new channel hangs), so the child must be a fresh process.
  constexpr const char* kHow =
      "start worker processes with multiprocessing's 'spawn' or 'forkserver' method (or fork "
      "before the first memd.connect()) and call memd.connect() in them";
  std::string pids = "process " + std::to_string(getpid()) + " is a fork of process " +
                     std::to_string(parent_pid);
  std::string message =
      connecting ? "memd.connect() cannot run here: " + pids +
                       ", which had connected, and gRPC cannot start again in such a child; " + kHow
                 : "this memd client belongs to process " + std::to_string(parent_pid) + ": " +
                       pids + " and cannot use its session; " + kHow;
  Throw(static_cast<int>(absl::StatusCode::kFailedPrecondition), message, "fork");
}

}  // namespace memd::python
