// Turns an absl::Status into the memd.MemdError subclass for its code.
//
// The classes and the code -> class table live in Python (memd/errors.py,
// their one owner); memd/__init__.py hands this module the factory
// errors._from_status(code, message, kind) at import. Without it (someone
// imported _memd alone) errors come out as RuntimeError.
#ifndef MEMD_PYTHON_ERRORS_H_
#define MEMD_PYTHON_ERRORS_H_

#include <sys/types.h>

#include <pybind11/pybind11.h>

#include "absl/status/status.h"
#include "absl/status/statusor.h"

namespace memd::python {

// Stores the factory (called once from memd/__init__.py). REQUIRES: the GIL.
void SetErrorFactory(pybind11::object factory);

// Throws pybind11::error_already_set carrying the exception for `status`.
// REQUIRES: !status.ok() and the GIL.
[[noreturn]] void ThrowStatus(const absl::Status& status);

// Throws memd.ForkError in a fork child of `parent_pid`: `connecting` when
// it called memd.connect() (gRPC already ran in the parent), else when it
// used an object of the parent's session.
[[noreturn]] void ThrowForkError(pid_t parent_pid, bool connecting);

// Value of a StatusOr, or ThrowStatus. REQUIRES: the GIL.
template <typename T>
T ValueOrThrow(absl::StatusOr<T> result) {
  if (!result.ok()) ThrowStatus(result.status());
  return std::move(*result);
}
inline void OkOrThrow(const absl::Status& status) {
  if (!status.ok()) ThrowStatus(status);
}

}  // namespace memd::python

#endif  // MEMD_PYTHON_ERRORS_H_
