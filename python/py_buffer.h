// memd.Buffer: one reference of this process's session to a pool buffer,
// exposed through the buffer protocol (writable, 1-D, format 'B') so numpy,
// memoryview and friends use the pool bytes in place.
//
// Ownership: the Buffer owns its reference and a share of the Session (so the
// pool stays mapped while the Buffer lives). Every export (a memoryview, a
// numpy array over it) holds the Python object, and is counted: release()
// and a moving send refuse with BufferError while any is alive, as
// mmap.close() does, so no view ever points at memory the session gave up.
// Garbage collection drops the reference without a round trip
// (Client::ReleaseRefsLater).
//
// Threads: Python objects, used under the GIL; the daemon round trip of
// release() runs without it.
#ifndef MEMD_PYTHON_PY_BUFFER_H_
#define MEMD_PYTHON_PY_BUFFER_H_

#include <memory>

#include <pybind11/pybind11.h>

#include "session.h"

namespace memd::python {

class Buffer {
 public:
  Buffer(std::shared_ptr<Session> session, BufferRef ref);
  ~Buffer();
  Buffer(const Buffer&) = delete;
  Buffer& operator=(const Buffer&) = delete;

  // These throw ValueError once the reference is gone (released or moved).
  uint64_t handle() const;
  uint64_t size() const;
  uint64_t capacity() const;
  bool held() const { return held_; }
  int exports() const { return exports_; }
  const std::shared_ptr<Session>& session() const { return session_; }

  // Releases the reference now. BufferError while exported; a no-op when
  // already released. REQUIRES: the GIL (dropped for the round trip).
  void Release();
  // Checks that a moving send may take the reference: held, of `session`,
  // not exported. Throws otherwise.
  void CheckMovable(const Session& session) const;
  // The reference moved into a channel: it is no longer this Buffer's.
  void MarkMoved() { held_ = false; }

  // The buffer protocol (installed over pybind11's in RegisterBuffer).
  static int GetBuffer(PyObject* self, Py_buffer* view, int flags);
  static void ReleaseBuffer(PyObject* self, Py_buffer* view);

 private:
  void CheckHeld(const char* what) const;

  std::shared_ptr<Session> session_;
  BufferRef ref_;
  uint8_t* data_;
  bool held_ = true;
  int exports_ = 0;  // live Py_buffer views
};

void RegisterBuffer(pybind11::module_& m);

}  // namespace memd::python

#endif  // MEMD_PYTHON_PY_BUFFER_H_
