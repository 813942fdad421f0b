// memd._memd.Session: the binding of memd::Client that the pure-Python
// memd.Client (memd/client.py) wraps. Arguments arrive checked and in the
// C++ API's units (bytes, milliseconds); every call that waits for the
// daemon drops the GIL.
//
// Ownership: holds a share of the Session until close(); Buffers it made
// hold their own shares. Threads: any Python thread (memd::Client is
// thread-safe).
#ifndef MEMD_PYTHON_PY_CLIENT_H_
#define MEMD_PYTHON_PY_CLIENT_H_

#include <pybind11/pybind11.h>

namespace memd::python {

void RegisterClient(pybind11::module_& m);

}  // namespace memd::python

#endif  // MEMD_PYTHON_PY_CLIENT_H_
