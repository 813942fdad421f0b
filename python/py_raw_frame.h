// The binding of the raw-frame codec (client/include/memd/raw_frame.h, owned
// with docs/wire-format.md by the GStreamer/FFmpeg side): memd._memd.RawFrame
// and the encode/decode/layout functions. Python never re-implements the byte
// layout; memd/frames.py builds numpy planes on these.
// Threads: pure functions and plain values; under the GIL.
#ifndef MEMD_PYTHON_PY_RAW_FRAME_H_
#define MEMD_PYTHON_PY_RAW_FRAME_H_

#include <pybind11/pybind11.h>

namespace memd::python {

void RegisterRawFrame(pybind11::module_& m);

}  // namespace memd::python

#endif  // MEMD_PYTHON_PY_RAW_FRAME_H_
