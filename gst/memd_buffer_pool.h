// GstMemdBufferPool: a GstBufferPool whose buffers are memd memory
// (GstMemdAllocator), proposed by memdsink in the ALLOCATION query so that
// upstream (videotestsrc, decoders, videoconvert) writes straight into pool
// memory. Video buffers carry a GstVideoMeta when the pool's user asks for
// GST_BUFFER_POOL_OPTION_VIDEO_META. A buffer whose memory was sent over a
// channel (lent: other processes may still read it) is never handed out
// again for writing while they do: it is parked, and when the pool needs a
// buffer it asks the daemon in one query which parked buffers no other
// holder has any more (Client::QueryRefs) and reuses those (their pages are
// mapped already), allocating only when none came back. At most kMaxParked
// stay parked; older ones are dropped (the daemon frees the bytes when the
// last reader releases).
//
// Thread-safety: as any GstBufferPool (acquire/release from any thread).
#ifndef MEMD_GST_MEMD_BUFFER_POOL_H_
#define MEMD_GST_MEMD_BUFFER_POOL_H_

#include <gst/gst.h>
#include <gst/video/video.h>

G_BEGIN_DECLS

#define GST_TYPE_MEMD_BUFFER_POOL (gst_memd_buffer_pool_get_type())
G_DECLARE_FINAL_TYPE(GstMemdBufferPool, gst_memd_buffer_pool, GST, MEMD_BUFFER_POOL, GstBufferPool)

G_END_DECLS

namespace memd::gst {

// A pool allocating from `allocator` (a GstMemdAllocator; the pool refs it).
GstBufferPool* NewBufferPool(GstAllocator* allocator);

}  // namespace memd::gst

#endif  // MEMD_GST_MEMD_BUFFER_POOL_H_
