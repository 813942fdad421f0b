// memdsrc: receives memd raw frames from a channel and pushes buffers whose
// GstMemory wraps the pool memory in place (read-only: other processes may
// read the same bytes); the memd reference goes when the buffer's last ref
// does. Caps come from the stream (no caps on the command line); the
// sender's end-of-stream message becomes EOS. A frame whose layout is not
// GStreamer's default goes downstream with a GstVideoMeta when downstream
// accepts one, else it is copied once into the default layout (counted:
// frames-copied).
//
// Threads: properties under the object lock; create() on the streaming
// thread; unlock() from the application thread wakes a waiting receive.
#ifndef MEMD_GST_MEMD_SRC_H_
#define MEMD_GST_MEMD_SRC_H_

#include <gst/base/gstpushsrc.h>

G_BEGIN_DECLS

#define GST_TYPE_MEMD_SRC (gst_memd_src_get_type())
G_DECLARE_FINAL_TYPE(GstMemdSrc, gst_memd_src, GST, MEMD_SRC, GstPushSrc)

G_END_DECLS

#endif  // MEMD_GST_MEMD_SRC_H_
