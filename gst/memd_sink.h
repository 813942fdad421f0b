// memdsink: sends each buffer by reference over a memd channel, with a
// memd raw-frame description (memd/raw_frame.h) as the message's metadata.
// Proposes a GstMemdBufferPool in the ALLOCATION query so upstream writes
// into pool memory; other buffers are copied once into pool memory (counted:
// frames-copied). On EOS it sends an end-of-stream message.
//
// Threads: properties under the object lock; render/event on the streaming
// thread; unlock() from the application thread wakes a blocked send.
#ifndef MEMD_GST_MEMD_SINK_H_
#define MEMD_GST_MEMD_SINK_H_

#include <gst/base/gstbasesink.h>

G_BEGIN_DECLS

#define GST_TYPE_MEMD_SINK (gst_memd_sink_get_type())
G_DECLARE_FINAL_TYPE(GstMemdSink, gst_memd_sink, GST, MEMD_SINK, GstBaseSink)

G_END_DECLS

#endif  // MEMD_GST_MEMD_SINK_H_
