// _memd: the C++ half of the `memd` Python package (python/memd/ holds the
// friendly API, docstrings, stubs and exceptions). Binds memd::Client
// (client/include/memd/client.h) and the raw-frame codec (memd/raw_frame.h),
// nothing of the daemon.
#include <pybind11/pybind11.h>

#include "errors.h"
#include "memd/version.h"
#include "py_buffer.h"
#include "py_client.h"
#include "py_raw_frame.h"

namespace py = pybind11;

PYBIND11_MODULE(_memd, m) {
  m.doc() = "C++ binding of libmemd; use the `memd` package, not this module.";
  // The version of the libmemd this module was built against: the one
  // version of the daemon, the library and memctl (memd/version.h), and the
  // pip package's (setup.py reads it from memd.pc).
  m.attr("__version__") = MEMD_VERSION_STRING;
  memd::python::RegisterBuffer(m);
  memd::python::RegisterClient(m);
  memd::python::RegisterRawFrame(m);
  m.def("_set_error_factory", &memd::python::SetErrorFactory, py::arg("factory"),
        "Called once by memd/__init__.py: factory(code, message, kind) -> exception.");
}
