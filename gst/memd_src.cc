#include "memd_src.h"

#include <gst/audio/audio.h>
#include <gst/video/video.h>

#include <atomic>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "memd/raw_frame.h"
#include "memd_allocator.h"
#include "memd_format.h"
#include "memd_properties.h"

GST_DEBUG_CATEGORY_STATIC(gst_memd_src_debug);
#define GST_CAT_DEFAULT gst_memd_src_debug

namespace {

// A receive waits this long per try, so a flush or state change is seen.
constexpr int64_t kReceiveSliceMs = 100;
// While the daemon is away (UNAVAILABLE), a receive is tried again this often.
constexpr gulong kOutageRetryUs = 20000;

enum {
  PROP_FRAMES_RECEIVED = memd::gst::kPropFirstOwn,
  PROP_FRAMES_COPIED,
  PROP_READ_ONLY,
};

}  // namespace

struct _GstMemdSrc {
  GstPushSrc parent;
  memd::gst::Endpoint endpoint;  // properties, under the object lock
  // Streaming thread (start/stop/negotiate/create/decide_allocation) only.
  std::shared_ptr<memd::Client>* client;
  GstAllocator* allocator;
  memd::RawFrame* caps_frame;  // the frame the caps describe (negotiate sets them)
  gboolean have_caps;          // caps_frame holds a received frame's description
  // The first frame, received by negotiate() to learn the caps and pushed by
  // the next create(); nullptr otherwise. Owns the frame's references.
  GstBuffer* pending;
  memd::RawFrame* pending_frame;
  gboolean video_meta;  // downstream accepts GstVideoMeta
  std::atomic<bool>* unlocked;
  std::atomic<uint64_t>* counters;  // received, copied
};

G_DEFINE_TYPE(GstMemdSrc, gst_memd_src, GST_TYPE_PUSH_SRC)

namespace {

enum Counter { kReceived = 0, kCopied = 1 };

// Whether the video planes sit where GStreamer's default layout puts them
// in one buffer (then no meta is needed).
bool DefaultLayout(const memd::RawFrame& frame, const GstVideoInfo& info) {
  if (frame.buffer_count != 1) return false;
  for (size_t p = 0; p < frame.planes.size(); ++p) {
    if (frame.planes[p].buffer_index != 0 ||
        frame.planes[p].offset_bytes != frame.planes[0].offset_bytes + info.offset[p] ||
        frame.planes[p].stride_bytes != static_cast<uint32_t>(info.stride[p])) {
      return false;
    }
  }
  return true;
}

// Copies a video frame described by `meta` in `in` into GStreamer's
// default layout.
GstBuffer* CopyToDefault(GstBuffer* in, const GstVideoInfo& info) {
  GstBuffer* out = gst_buffer_new_allocate(nullptr, info.size, nullptr);
  GstVideoFrame src, dst;
  if (!gst_video_frame_map(&src, const_cast<GstVideoInfo*>(&info), in, GST_MAP_READ)) {
    gst_buffer_unref(out);
    return nullptr;
  }
  gst_video_frame_map(&dst, const_cast<GstVideoInfo*>(&info), out, GST_MAP_WRITE);
  gst_video_frame_copy(&dst, &src);
  gst_video_frame_unmap(&dst);
  gst_video_frame_unmap(&src);
  gst_buffer_copy_into(out, in, GST_BUFFER_COPY_METADATA, 0, -1);
  return out;
}

// A frame whose planes GStreamer would not describe (it printed why as a
// CRITICAL): an element error, never a buffer pushed without its meta.
GstFlowReturn MetaRefused(GstMemdSrc* self, const char* kind, const memd::RawFrame& frame) {
  const memd::RawFormatInfo* info = memd::FindRawFormat(frame.format);
  GST_ELEMENT_ERROR(self, STREAM, DECODE,
                    ("GStreamer refused %s meta for a frame on memd channel '%s'", kind,
                     self->endpoint.channel.c_str()),
                    ("format %s, %u planes in %u buffers", info->name,
                     static_cast<guint>(frame.planes.size()), frame.buffer_count));
  return GST_FLOW_ERROR;
}

// The GstBuffer of a decoded frame whose memories are `buffer`'s.
GstFlowReturn Describe(GstMemdSrc* self, const memd::RawFrame& frame, GstBuffer** buffer) {
  std::vector<gsize> starts;  // each memory's first byte in the GstBuffer
  gsize total = 0;
  for (guint i = 0; i < gst_buffer_n_memory(*buffer); ++i) {
    starts.push_back(total);
    total += gst_buffer_peek_memory(*buffer, i)->size;
  }
  // One per plane: up to 4 for video, one per channel (up to 8) for planar audio.
  gsize offsets[memd::kMaxRawPlanes] = {};
  for (size_t p = 0; p < frame.planes.size(); ++p) {
    offsets[p] = starts[frame.planes[p].buffer_index] + frame.planes[p].offset_bytes;
  }
  const memd::RawFormatInfo* info = memd::FindRawFormat(frame.format);
  if (info->audio) {
    gsize bytes = memd::RawPlaneBytes(frame, 0);
    if (!info->planar_audio) {
      gst_buffer_resize(*buffer, static_cast<gssize>(offsets[0]), static_cast<gssize>(bytes));
    } else {
      GstAudioInfo audio;
      GstAudioLayout layout;
      gst_audio_info_set_format(&audio, memd::gst::ToAudioFormat(frame.format, &layout),
                                static_cast<gint>(frame.sample_rate_hz),
                                static_cast<gint>(frame.channels), nullptr);
      audio.layout = layout;
      if (gst_buffer_add_audio_meta(*buffer, &audio, frame.samples, offsets) == nullptr) {
        return MetaRefused(self, "an audio", frame);
      }
    }
    return GST_FLOW_OK;
  }
  GstVideoInfo video;
  gst_video_info_set_format(&video, memd::gst::ToVideoFormat(frame.format), frame.width,
                            frame.height);
  if (DefaultLayout(frame, video)) {
    gst_buffer_resize(*buffer, static_cast<gssize>(offsets[0]), static_cast<gssize>(video.size));
    return GST_FLOW_OK;
  }
  gint strides[GST_VIDEO_MAX_PLANES] = {};
  for (size_t p = 0; p < frame.planes.size(); ++p) {
    strides[p] = static_cast<gint>(frame.planes[p].stride_bytes);
  }
  if (gst_buffer_add_video_meta_full(*buffer, GST_VIDEO_FRAME_FLAG_NONE,
                                     GST_VIDEO_INFO_FORMAT(&video), frame.width, frame.height,
                                     GST_VIDEO_INFO_N_PLANES(&video), offsets, strides) == nullptr) {
    return MetaRefused(self, "a video", frame);
  }
  if (self->video_meta) return GST_FLOW_OK;
  GstBuffer* copy = CopyToDefault(*buffer, video);
  if (copy == nullptr) {
    GST_ELEMENT_ERROR(self, STREAM, FAILED, ("Could not map a received frame"), (nullptr));
    return GST_FLOW_ERROR;
  }
  gst_buffer_unref(*buffer);
  *buffer = copy;
  uint64_t copies = ++self->counters[kCopied];
  GST_DEBUG_OBJECT(self,
                   "copied a frame into GStreamer's default layout: downstream takes no "
                   "GstVideoMeta (%" G_GUINT64_FORMAT " copies so far)",
                   copies);
  return GST_FLOW_OK;
}

// Receives the next message (in slices, so unlock() is seen) and decodes
// its raw frame into `frame`; `buffer` wraps its references (they go with
// it). OK, FLUSHING, or ERROR (posted, naming the channel and the field).
GstFlowReturn NextFrame(GstMemdSrc* self, GstBuffer** buffer, memd::RawFrame* frame) {
  memd::Client& client = **self->client;
  std::string channel = self->endpoint.channel;
  absl::StatusOr<memd::ChannelMessage> message;
  for (;;) {
    message = client.Receive(channel, kReceiveSliceMs, self->endpoint.capacity);
    if (message.ok()) break;
    if (message.status().code() == absl::StatusCode::kUnavailable) {
      // The daemon restarts: libmemd reconnects and reclaims in the background.
      GST_WARNING_OBJECT(self, "memd unavailable, waiting: %s",
                         std::string(message.status().message()).c_str());
      if (self->unlocked->load()) return GST_FLOW_FLUSHING;
      g_usleep(kOutageRetryUs);
      continue;
    }
    if (message.status().code() != absl::StatusCode::kDeadlineExceeded) {
      GST_ELEMENT_ERROR(self, RESOURCE, READ,
                        ("Could not receive from memd channel '%s'", channel.c_str()),
                        ("%s", std::string(message.status().message()).c_str()));
      return GST_FLOW_ERROR;
    }
    if (self->unlocked->load()) return GST_FLOW_FLUSHING;
  }
  // The references are this session's now: wrap them first, so every path
  // releases them with the buffer.
  *buffer = gst_buffer_new();
  std::vector<uint64_t> sizes;
  for (const memd::BufferRef& ref : message->buffers) {
    gst_buffer_append_memory(*buffer, memd::gst::WrapReference(self->allocator, ref, true));
    sizes.push_back(ref.size_bytes);
  }
  absl::StatusOr<memd::RawFrame> decoded = memd::DecodeRawFrame(message->metadata, sizes);
  if (!decoded.ok()) {
    gst_clear_buffer(buffer);
    GST_ELEMENT_ERROR(self, STREAM, DECODE,
                      ("Message on memd channel '%s' is not a valid raw frame", channel.c_str()),
                      ("%s", std::string(decoded.status().message()).c_str()));
    return GST_FLOW_ERROR;
  }
  *frame = *std::move(decoded);
  return GST_FLOW_OK;
}

void SetTimestampsAndFlags(const memd::RawFrame& frame, GstBuffer* buffer) {
  if (frame.pts_ns != memd::kNoTimestamp && frame.pts_ns >= 0)
    GST_BUFFER_PTS(buffer) = frame.pts_ns;
  if (frame.duration_ns != memd::kNoTimestamp) GST_BUFFER_DURATION(buffer) = frame.duration_ns;
  if ((frame.flags & memd::kRawFrameKeyframe) == 0)
    GST_BUFFER_FLAG_SET(buffer, GST_BUFFER_FLAG_DELTA_UNIT);
  if (frame.flags & memd::kRawFrameDiscont) GST_BUFFER_FLAG_SET(buffer, GST_BUFFER_FLAG_DISCONT);
  if (frame.flags & memd::kRawFrameCorrupt) GST_BUFFER_FLAG_SET(buffer, GST_BUFFER_FLAG_CORRUPTED);
  if (frame.flags & memd::kRawFrameInterlaced) {
    GST_BUFFER_FLAG_SET(buffer, GST_VIDEO_BUFFER_FLAG_INTERLACED);
    if (frame.flags & memd::kRawFrameTopFieldFirst)
      GST_BUFFER_FLAG_SET(buffer, GST_VIDEO_BUFFER_FLAG_TFF);
  }
}

}  // namespace

static gboolean gst_memd_src_start(GstBaseSrc* src) {
  auto* self = GST_MEMD_SRC(src);
  self->counters[kReceived] = self->counters[kCopied] = 0;
  self->have_caps = FALSE;
  gst_clear_buffer(&self->pending);
  memd::gst::Endpoint endpoint = memd::gst::ReadEndpoint(GST_ELEMENT(self), &self->endpoint);
  absl::StatusOr<std::shared_ptr<memd::Client>> client =
      memd::gst::ConnectEndpoint(GST_ELEMENT(self), endpoint);
  if (!client.ok()) return FALSE;
  *self->client = *client;
  self->allocator = memd::gst::NewAllocator(*client);
  return TRUE;
}

static gboolean gst_memd_src_stop(GstBaseSrc* src) {
  auto* self = GST_MEMD_SRC(src);
  GST_INFO_OBJECT(self, "received %" G_GUINT64_FORMAT " frames, copied %" G_GUINT64_FORMAT,
                  self->counters[kReceived].load(), self->counters[kCopied].load());
  gst_clear_buffer(&self->pending);  // before the Client its memory needs
  gst_clear_object(&self->allocator);
  self->client->reset();
  return TRUE;
}

// Caps come only from a frame: before the first one, this waits for it (in
// slices, so a state change or flush stops the wait) and keeps it for
// create(). Never the fixated placeholder caps of GstBaseSrc's default
// (width=1, rate=1), which an element such as wavenc cannot change later.
// create() calls it again (gst_base_src_negotiate) when a frame's caps differ.
static gboolean gst_memd_src_negotiate(GstBaseSrc* src) {
  auto* self = GST_MEMD_SRC(src);
  if (!self->have_caps) {
    if (self->pending == nullptr) {
      GstFlowReturn r = NextFrame(self, &self->pending, self->pending_frame);
      // Unlocked: a flush or state change (the pad is flushing, GstBaseSrc
      // stops), or an EOS sent to the element (gst-launch -e): no caps yet,
      // and GstBaseSrc pushes that EOS instead of calling create().
      if (r == GST_FLOW_FLUSHING) return !GST_PAD_IS_FLUSHING(GST_BASE_SRC_PAD(src));
      if (r != GST_FLOW_OK) return FALSE;  // an error, posted
    }
    if (self->pending_frame->end_of_stream()) return TRUE;  // no frame, no caps: EOS next
    *self->caps_frame = *self->pending_frame;
    self->have_caps = TRUE;
  }
  GstCaps* caps = memd::gst::CapsOf(*self->caps_frame);
  GST_DEBUG_OBJECT(self, "caps from the stream: %" GST_PTR_FORMAT, caps);
  gboolean set = caps != nullptr && gst_base_src_set_caps(src, caps);
  if (!set) {
    gchar* text = caps != nullptr ? gst_caps_to_string(caps) : g_strdup("(none)");
    GST_ELEMENT_ERROR(self, CORE, NEGOTIATION,
                      ("Downstream refused the caps of memd channel '%s'",
                       self->endpoint.channel.c_str()),
                      ("caps %s", text));
    g_free(text);
  }
  if (caps != nullptr) gst_caps_unref(caps);
  return set;
}

static gboolean gst_memd_src_decide_allocation(GstBaseSrc* src, GstQuery* query) {
  auto* self = GST_MEMD_SRC(src);
  self->video_meta = gst_query_find_allocation_meta(query, GST_VIDEO_META_API_TYPE, nullptr);
  return GST_BASE_SRC_CLASS(gst_memd_src_parent_class)->decide_allocation(src, query);
}

static GstFlowReturn gst_memd_src_create(GstPushSrc* push, GstBuffer** out) {
  auto* self = GST_MEMD_SRC(push);
  GstBuffer* buffer = nullptr;
  memd::RawFrame frame;
  if (self->pending != nullptr) {  // the first frame, which negotiate() received
    buffer = std::exchange(self->pending, nullptr);
    frame = std::move(*self->pending_frame);
  } else if (GstFlowReturn r = NextFrame(self, &buffer, &frame); r != GST_FLOW_OK) {
    return r;
  }
  if (frame.end_of_stream()) {
    gst_buffer_unref(buffer);
    GST_DEBUG_OBJECT(self, "end of stream on channel '%s'", self->endpoint.channel.c_str());
    return GST_FLOW_EOS;
  }
  if (!self->have_caps || !memd::gst::SameCaps(frame, *self->caps_frame)) {
    // New caps mid-stream (a resolution change): negotiate them, with a new
    // allocation query, before the frame that has them.
    *self->caps_frame = frame;
    self->have_caps = TRUE;
    if (!gst_base_src_negotiate(GST_BASE_SRC(self))) {
      gst_buffer_unref(buffer);
      return self->unlocked->load() ? GST_FLOW_FLUSHING : GST_FLOW_NOT_NEGOTIATED;
    }
  }
  if (GstFlowReturn r = Describe(self, frame, &buffer); r != GST_FLOW_OK) {
    gst_buffer_unref(buffer);
    return r;
  }
  SetTimestampsAndFlags(frame, buffer);
  self->counters[kReceived]++;
  *out = buffer;
  return GST_FLOW_OK;
}

static gboolean gst_memd_src_unlock(GstBaseSrc* src) {
  GST_MEMD_SRC(src)->unlocked->store(true);
  return TRUE;
}

static gboolean gst_memd_src_unlock_stop(GstBaseSrc* src) {
  GST_MEMD_SRC(src)->unlocked->store(false);
  return TRUE;
}

static void gst_memd_src_set_property(GObject* object, guint id, const GValue* value,
                                      GParamSpec* pspec) {
  auto* self = GST_MEMD_SRC(object);
  GST_OBJECT_LOCK(self);
  bool known = memd::gst::SetEndpointProperty(&self->endpoint, id, value);
  if (id == PROP_READ_ONLY) {
    self->endpoint.read_only = g_value_get_boolean(value);
    known = true;
  }
  GST_OBJECT_UNLOCK(self);
  if (!known) G_OBJECT_WARN_INVALID_PROPERTY_ID(object, id, pspec);
}

static void gst_memd_src_get_property(GObject* object, guint id, GValue* value, GParamSpec* pspec) {
  auto* self = GST_MEMD_SRC(object);
  GST_OBJECT_LOCK(self);
  if (memd::gst::GetEndpointProperty(self->endpoint, id, value)) {
    GST_OBJECT_UNLOCK(self);
    return;
  }
  switch (id) {
    case PROP_FRAMES_RECEIVED:
      g_value_set_uint64(value, self->counters[kReceived].load());
      break;
    case PROP_FRAMES_COPIED:
      g_value_set_uint64(value, self->counters[kCopied].load());
      break;
    case PROP_READ_ONLY:
      g_value_set_boolean(value, self->endpoint.read_only);
      break;
    default:
      G_OBJECT_WARN_INVALID_PROPERTY_ID(object, id, pspec);
      break;
  }
  GST_OBJECT_UNLOCK(self);
}

static void gst_memd_src_finalize(GObject* object) {
  auto* self = GST_MEMD_SRC(object);
  self->endpoint.~Endpoint();
  delete self->client;
  delete self->caps_frame;
  delete self->pending_frame;
  delete self->unlocked;
  delete[] self->counters;
  G_OBJECT_CLASS(gst_memd_src_parent_class)->finalize(object);
}

static void gst_memd_src_class_init(GstMemdSrcClass* klass) {
  GObjectClass* gobject = G_OBJECT_CLASS(klass);
  gobject->set_property = gst_memd_src_set_property;
  gobject->get_property = gst_memd_src_get_property;
  gobject->finalize = gst_memd_src_finalize;
  memd::gst::InstallEndpointProperties(gobject);
  auto ro = static_cast<GParamFlags>(G_PARAM_READABLE | G_PARAM_STATIC_STRINGS);
  g_object_class_install_property(
      gobject, PROP_FRAMES_RECEIVED,
      g_param_spec_uint64("frames-received", "Frames received", "Frames received from the channel",
                          0, G_MAXUINT64, 0, ro));
  g_object_class_install_property(
      gobject, PROP_FRAMES_COPIED,
      g_param_spec_uint64("frames-copied", "Frames copied",
                          "Frames copied into GStreamer's default layout because downstream "
                          "takes no GstVideoMeta",
                          0, G_MAXUINT64, 0, ro));
  g_object_class_install_property(
      gobject, PROP_READ_ONLY,
      g_param_spec_boolean(
          "read-only", "Read-only",
          "Attach to the pool as a reader: its memory is mapped read-only, so nothing in this "
          "process can write a frame other consumers share (a memdsink in the same process then "
          "copies what it relays instead of sending it by reference)",
          FALSE,
          static_cast<GParamFlags>(G_PARAM_READWRITE | G_PARAM_STATIC_STRINGS |
                                   GST_PARAM_MUTABLE_READY)));
  GstElementClass* element = GST_ELEMENT_CLASS(klass);
  gst_element_class_set_static_metadata(
      element, "memd source", "Source/Video/Audio",
      "Receives raw frames by reference from a memd channel; caps come from the stream",
      "memd project");
  gst_element_class_add_pad_template(
      element, gst_pad_template_new("src", GST_PAD_SRC, GST_PAD_ALWAYS, memd::gst::TemplateCaps()));
  GstBaseSrcClass* base = GST_BASE_SRC_CLASS(klass);
  base->start = gst_memd_src_start;
  base->stop = gst_memd_src_stop;
  base->negotiate = gst_memd_src_negotiate;
  base->decide_allocation = gst_memd_src_decide_allocation;
  base->unlock = gst_memd_src_unlock;
  base->unlock_stop = gst_memd_src_unlock_stop;
  GST_PUSH_SRC_CLASS(klass)->create = gst_memd_src_create;
  GST_DEBUG_CATEGORY_INIT(gst_memd_src_debug, "memdsrc", 0, "memd source");
}

static void gst_memd_src_init(GstMemdSrc* self) {
  new (&self->endpoint) memd::gst::Endpoint();
  self->client = new std::shared_ptr<memd::Client>();
  self->caps_frame = new memd::RawFrame();
  self->pending = nullptr;
  self->pending_frame = new memd::RawFrame();
  self->unlocked = new std::atomic<bool>(false);
  self->counters = new std::atomic<uint64_t>[2]();
  gst_base_src_set_format(GST_BASE_SRC(self), GST_FORMAT_TIME);
}
