#include "py_buffer.h"

#include "absl/strings/str_format.h"
#include "errors.h"

namespace py = pybind11;

namespace memd::python {

Buffer::Buffer(std::shared_ptr<Session> session, BufferRef ref)
    : session_(std::move(session)), ref_(ref), data_(session_->client().Pointer(ref.offset_bytes)) {}

Buffer::~Buffer() {
  // Garbage collection: no error can be reported and no round trip should
  // stall the interpreter, so the release rides on the session's next
  // request (or goes by itself within 25 ms). A fork child's Buffer holds
  // the parent's reference: the child drops it without a word.
  if (held_ && session_->InCreator()) session_->client().ReleaseRefsLater({ref_.handle});
}

void Buffer::CheckHeld(const char* what) const {
  if (held_) return;
  throw py::value_error(absl::StrFormat(
      "%s of a memd.Buffer whose reference is gone (released, or moved into a channel)", what));
}

uint64_t Buffer::handle() const {
  CheckHeld("handle");
  return ref_.handle;
}

uint64_t Buffer::size() const {
  CheckHeld("size");
  return ref_.size_bytes;
}

uint64_t Buffer::capacity() const {
  CheckHeld("capacity");
  return ref_.capacity_bytes;
}

void Buffer::Release() {
  if (!held_) return;
  session_->CheckFork();
  if (exports_ > 0) {
    throw py::buffer_error(absl::StrFormat(
        "cannot release memd.Buffer 0x%016x: %d exported view(s) (memoryview, numpy array) "
        "still use its memory; delete them first",
        ref_.handle, exports_));
  }
  held_ = false;
  absl::StatusOr<bool> freed;
  {
    py::gil_scoped_release unlocked;
    freed = session_->client().ReleaseRef(ref_.handle);
  }
  OkOrThrow(freed.status());
}

void Buffer::CheckMovable(const Session& session) const {
  CheckHeld("send");
  if (session_.get() != &session) {
    throw py::value_error(absl::StrFormat(
        "memd.Buffer 0x%016x belongs to another memd.Client (session); send it from that one",
        ref_.handle));
  }
  if (exports_ > 0) {
    throw py::buffer_error(absl::StrFormat(
        "cannot move memd.Buffer 0x%016x into a channel: %d exported view(s) still use its "
        "memory; delete them first, or send with share=True",
        ref_.handle, exports_));
  }
}

int Buffer::GetBuffer(PyObject* self, Py_buffer* view, int flags) {
  try {
    auto* buffer = py::handle(self).cast<Buffer*>();
    buffer->CheckHeld("a view");
    buffer->session_->CheckFork();
    // A reader's mapping is read-only (a store would fault): so is the view,
    // and numpy makes its arrays read-only from it.
    int readonly = buffer->session_->client().read_only() ? 1 : 0;
    if (PyBuffer_FillInfo(view, self, buffer->data_, static_cast<Py_ssize_t>(buffer->ref_.size_bytes),
                          readonly, flags) != 0) {
      return -1;
    }
    ++buffer->exports_;
    return 0;
  } catch (py::error_already_set& e) {
    e.restore();
  } catch (const py::builtin_exception& e) {
    e.set_error();
  } catch (const std::exception& e) {
    PyErr_SetString(PyExc_RuntimeError, e.what());
  }
  view->obj = nullptr;
  return -1;
}

void Buffer::ReleaseBuffer(PyObject* self, Py_buffer* view) {
  // Called before the view drops its reference to `self`, so the object lives.
  auto* buffer = py::handle(self).cast<Buffer*>();
  --buffer->exports_;
}

void RegisterBuffer(py::module_& m) {
  py::class_<Buffer, std::unique_ptr<Buffer>> cls(m, "Buffer", py::buffer_protocol(), R"(
A reference to a buffer in a memd pool; the bytes are used in place.

Made by Client.allocate, Client.retain and Client.receive. Supports the
buffer protocol (writable bytes): ``numpy.frombuffer(buf, dtype=...)`` and
``memoryview(buf)`` see and change the pool memory without copying.

The reference goes on ``release()``, on leaving a ``with`` block, or when
the Buffer is garbage collected. ``release()`` raises BufferError while a
memoryview or numpy array still uses the memory (as ``mmap.close()``).
)");
  // pybind11's own buffer procs cannot count releases; install ours over them
  // in the heap type pybind11 made (py::buffer_protocol() set tp_as_buffer).
  auto* type = reinterpret_cast<PyTypeObject*>(cls.ptr());
  type->tp_as_buffer->bf_getbuffer = &Buffer::GetBuffer;
  type->tp_as_buffer->bf_releasebuffer = &Buffer::ReleaseBuffer;
  cls.def_property_readonly("handle", &Buffer::handle,
                            "The 8-byte handle: another process passes it to Client.retain.")
      .def_property_readonly("size", &Buffer::size, "Size in bytes, as asked for.")
      .def_property_readonly("capacity", &Buffer::capacity, "Usable bytes (>= size).")
      .def_property_readonly("released", [](const Buffer& b) { return !b.held(); },
                             "True once the reference is gone (released or moved into a channel).")
      .def_property_readonly("exports", &Buffer::exports,
                             "How many views (memoryview, numpy arrays) use the memory now.")
      .def("release", &Buffer::Release, R"(
Releases this reference now (a round trip; the GIL is released meanwhile).

The block returns to the pool when its last holder releases it. Raises
BufferError while views of the memory exist, and memd.MemdError when the
daemon refuses. Releasing twice is a no-op.)")
      .def("__len__", [](const Buffer& b) { return b.size(); })
      .def("__enter__", [](py::object self) { return self; })
      .def("__exit__", [](Buffer& b, py::args) { b.Release(); })
      .def("__repr__", [](const Buffer& b) {
        if (!b.held()) return std::string("<memd.Buffer released>");
        return absl::StrFormat("<memd.Buffer handle=0x%016x size=%u>", b.handle(), b.size());
      });
}

}  // namespace memd::python
