// MEMD_EXPORT marks libmemd's public C++ API. libmemd is built with hidden
// visibility and a version script (client/libmemd.map): only the C API
// (memd_*) and the classes marked here are exported, so internal code (the
// session, the lane, the generated protobuf classes) is never part of its
// ABI. A class needs the mark when it has functions defined in libmemd.
#ifndef MEMD_EXPORT_H_
#define MEMD_EXPORT_H_

#if defined(__GNUC__)
#define MEMD_EXPORT __attribute__((visibility("default")))
#else
#define MEMD_EXPORT
#endif

#endif  // MEMD_EXPORT_H_
