#include "memd_sink.h"

#include <gst/audio/audio.h>
#include <gst/video/video.h>

#include <atomic>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "memd/raw_frame.h"
#include "memd_allocator.h"
#include "memd_buffer_pool.h"
#include "memd_copy_cache.h"
#include "memd_format.h"
#include "memd_properties.h"

GST_DEBUG_CATEGORY_STATIC(gst_memd_sink_debug);
#define GST_CAT_DEFAULT gst_memd_sink_debug

namespace {

// A send waits this long per try, so a flush or state change is seen.
constexpr int64_t kSendSliceMs = 100;
// While the daemon is away (UNAVAILABLE), a send is tried again this often.
constexpr gulong kOutageRetryUs = 20000;
// A leaky sink never waits for a reader, so its end-of-stream message waits
// at most this long for room in a full channel and is then given up with an
// element warning (docs/gstreamer.md): 2 s lets a reader that is only slow
// take a frame or two, and a pipeline with no reader still ends.
constexpr gint64 kLeakyEosWaitUs = 2 * G_USEC_PER_SEC;
// A sink that has waited this long for room says so once per stall (element
// warning): a reader that failed or never came is otherwise a silent hang.
constexpr gint64 kStallWarningUs = 10 * G_USEC_PER_SEC;

enum {
  PROP_LEAKY = memd::gst::kPropFirstOwn,
  PROP_FRAMES_SENT,
  PROP_FRAMES_COPIED,
  PROP_FRAMES_DROPPED,
};

}  // namespace

struct _GstMemdSink {
  GstBaseSink parent;
  memd::gst::Endpoint endpoint;  // properties, under the object lock
  gboolean leaky;
  // Streaming thread (start/stop/set_caps/render/event) only.
  std::shared_ptr<memd::Client>* client;
  GstAllocator* allocator;
  memd::gst::StreamFormat* stream;
  std::atomic<bool>* unlocked;      // set by unlock(), cleared by unlock_stop()
  std::atomic<uint64_t>* counters;  // sent, copied, dropped
};

G_DEFINE_TYPE(GstMemdSink, gst_memd_sink, GST_TYPE_BASE_SINK)

namespace {

enum Counter { kSent = 0, kCopied = 1, kDropped = 2 };

// How a message may wait for room in a full channel.
enum class Wait {
  kForRoom,   // in slices until room comes or unlock()
  kDropFull,  // leaky frames: refused at once when full (counted dropped)
  kBounded,   // a leaky sink's end-of-stream: up to kLeakyEosWaitUs
};

// Sends `metadata` with `handles`. OK, CUSTOM_SUCCESS (not sent: dropped
// full, or given up after a bounded wait, with a warning posted), FLUSHING
// (unlocked), or ERROR (posted).
GstFlowReturn SendMessage(GstMemdSink* self, const std::vector<uint64_t>& handles,
                          const std::string& metadata, Wait wait, memd::SendMode mode) {
  memd::Client& client = **self->client;
  std::string channel = self->endpoint.channel;
  const gint64 started_us = g_get_monotonic_time();
  bool warned = false;
  for (;;) {
    int64_t timeout_ms = wait == Wait::kDropFull ? 0 : kSendSliceMs;
    absl::Status sent =
        client.Send(channel, handles, metadata, timeout_ms, self->endpoint.capacity, mode);
    if (sent.ok()) return GST_FLOW_OK;
    if (sent.code() == absl::StatusCode::kResourceExhausted && timeout_ms == 0) {
      self->counters[kDropped]++;
      if (mode == memd::SendMode::kMove) client.ReleaseRefsLater(handles);  // not moved
      GST_DEBUG_OBJECT(self, "channel '%s' full: frame dropped (leaky)", channel.c_str());
      return GST_FLOW_CUSTOM_SUCCESS;
    }
    if (sent.code() == absl::StatusCode::kResourceExhausted &&
        sent.message().find("full") != std::string::npos) {
      if (self->unlocked->load()) return GST_FLOW_FLUSHING;
      gint64 waited_us = g_get_monotonic_time() - started_us;
      if (wait == Wait::kBounded && waited_us >= kLeakyEosWaitUs) {
        GST_ELEMENT_WARNING(self, RESOURCE, WRITE,
                            ("End of stream not delivered on memd channel '%s': it stayed full "
                             "for %" G_GINT64_FORMAT " ms and the sink is leaky",
                             channel.c_str(), kLeakyEosWaitUs / 1000),
                            ("%s", std::string(sent.message()).c_str()));
        return GST_FLOW_CUSTOM_SUCCESS;
      }
      if (!warned && waited_us >= kStallWarningUs) {
        warned = true;
        GST_ELEMENT_WARNING(self, RESOURCE, BUSY,
                            ("memd channel '%s' has been full for %" G_GINT64_FORMAT
                             " s: no reader takes its frames; still waiting",
                             channel.c_str(), waited_us / G_USEC_PER_SEC),
                            ("%s; `memctl stats` shows its waiting receivers",
                             std::string(sent.message()).c_str()));
      }
      continue;
    }
    if (sent.code() == absl::StatusCode::kUnavailable) {
      // The daemon restarts: libmemd reconnects and reclaims in the background.
      GST_WARNING_OBJECT(self, "memd unavailable, waiting: %s",
                         std::string(sent.message()).c_str());
      if (self->unlocked->load()) return GST_FLOW_FLUSHING;
      g_usleep(kOutageRetryUs);
      continue;
    }
    GST_ELEMENT_ERROR(self, RESOURCE, WRITE,
                      ("Could not send on memd channel '%s'", channel.c_str()),
                      ("%s", std::string(sent.message()).c_str()));
    return GST_FLOW_ERROR;
  }
}

// Where each plane of `buffer` starts (bytes into the GstBuffer) and its
// stride, from the video/audio meta or the caps' default layout.
void PlanesOf(GstMemdSink* self, GstBuffer* buffer, memd::RawFrame* frame,
              std::vector<gsize>* offsets) {
  const memd::gst::StreamFormat& s = *self->stream;
  if (!s.audio) {
    GstVideoMeta* meta = gst_buffer_get_video_meta(buffer);
    guint n = GST_VIDEO_INFO_N_PLANES(&s.video);
    for (guint p = 0; p < n; ++p) {
      offsets->push_back(meta != nullptr ? meta->offset[p] : s.video.offset[p]);
      frame->planes.push_back(memd::RawPlane{
          0, static_cast<uint32_t>(meta != nullptr ? meta->stride[p] : s.video.stride[p]), 0});
    }
    return;
  }
  gint bpf = GST_AUDIO_INFO_BPF(&s.audio_info);
  GstAudioMeta* meta = gst_buffer_get_audio_meta(buffer);
  gsize size = gst_buffer_get_size(buffer);
  frame->samples =
      static_cast<uint32_t>(meta != nullptr ? meta->samples : size / (bpf > 0 ? bpf : 1));
  const memd::RawFormatInfo* info = memd::FindRawFormat(frame->format);
  guint planes = info->planar_audio ? frame->channels : 1;
  for (guint p = 0; p < planes; ++p) {
    offsets->push_back(meta != nullptr && meta->offsets != nullptr ? meta->offsets[p]
                                                                   : p * (size / planes));
    frame->planes.push_back(memd::RawPlane{0, 0, 0});
    frame->planes.back().stride_bytes = static_cast<uint32_t>(memd::RawPlaneBytes(*frame, p));
  }
}

// Handles of a buffer all of whose memory is this Client's memd memory;
// fills each plane's buffer and offset. The memory is marked lent.
bool ByReference(GstMemdSink* self, GstBuffer* buffer, const std::vector<gsize>& offsets,
                 memd::RawFrame* frame, std::vector<uint64_t>* handles) {
  memd::Client* client = self->client->get();
  guint n = gst_buffer_n_memory(buffer);
  for (guint i = 0; i < n; ++i) {
    if (!memd::gst::IsMemoryOf(gst_buffer_peek_memory(buffer, i), client)) return false;
  }
  std::map<uint64_t, uint32_t> index;  // handle -> buffer index
  for (size_t p = 0; p < offsets.size(); ++p) {
    guint idx = 0, length = 0;
    gsize skip = 0;
    if (!gst_buffer_find_memory(buffer, offsets[p], 1, &idx, &length, &skip)) return false;
    GstMemory* mem = gst_buffer_peek_memory(buffer, idx);
    uint64_t handle = memd::gst::MemoryHandle(mem);
    auto [it, added] = index.emplace(handle, static_cast<uint32_t>(handles->size()));
    if (added) handles->push_back(handle);
    frame->planes[p].buffer_index = it->second;
    frame->planes[p].offset_bytes = mem->offset + skip;
  }
  for (guint i = 0; i < n; ++i) memd::gst::MarkLent(gst_buffer_peek_memory(buffer, i));
  return true;
}

// The pool copy of a buffer that is not memd memory: made once per buffer
// for all the process's memdsinks (CopyCache). Sets `mode`.
bool CopyIn(GstMemdSink* self, GstBuffer* buffer, const std::vector<gsize>& offsets,
            memd::RawFrame* frame, std::vector<uint64_t>* handles, memd::SendMode* mode) {
  absl::StatusOr<memd::gst::CopyResult> copy = memd::gst::CopyOf(*self->client, buffer);
  if (!copy.ok()) {
    GST_ELEMENT_ERROR(self, RESOURCE, NO_SPACE_LEFT,
                      ("Could not copy a %" G_GSIZE_FORMAT "-byte buffer into memd pool '%s'",
                       gst_buffer_get_size(buffer), (*self->client)->pool().name.c_str()),
                      ("%s", std::string(copy.status().message()).c_str()));
    return false;
  }
  handles->push_back(copy->handle);
  for (size_t p = 0; p < offsets.size(); ++p) frame->planes[p].offset_bytes = offsets[p];
  *mode = copy->caller_owns ? memd::SendMode::kMove : memd::SendMode::kShare;
  if (copy->copied) {
    uint64_t copies = ++self->counters[kCopied];
    GST_DEBUG_OBJECT(self,
                     "copied a %" G_GSIZE_FORMAT
                     "-byte buffer that is not memd memory "
                     "into the pool (%" G_GUINT64_FORMAT " copies so far)",
                     gst_buffer_get_size(buffer), copies);
  }
  return true;
}

void PostStats(GstMemdSink* self) {
  gst_element_post_message(
      GST_ELEMENT(self),
      gst_message_new_element(
          GST_OBJECT(self),
          gst_structure_new("memdsink-stats", "frames-sent", G_TYPE_UINT64,
                            self->counters[kSent].load(), "frames-copied", G_TYPE_UINT64,
                            self->counters[kCopied].load(), "frames-dropped", G_TYPE_UINT64,
                            self->counters[kDropped].load(), nullptr)));
}

}  // namespace

static gboolean gst_memd_sink_start(GstBaseSink* sink) {
  auto* self = GST_MEMD_SINK(sink);
  for (int i = 0; i < 3; ++i) self->counters[i] = 0;
  memd::gst::Endpoint endpoint = memd::gst::ReadEndpoint(GST_ELEMENT(self), &self->endpoint);
  absl::StatusOr<std::shared_ptr<memd::Client>> client =
      memd::gst::ConnectEndpoint(GST_ELEMENT(self), endpoint);
  if (!client.ok()) return FALSE;
  *self->client = *client;
  self->allocator = memd::gst::NewAllocator(*client);
  return TRUE;
}

static gboolean gst_memd_sink_stop(GstBaseSink* sink) {
  auto* self = GST_MEMD_SINK(sink);
  if (*self->client != nullptr) {
    PostStats(self);
    GST_INFO_OBJECT(self,
                    "sent %" G_GUINT64_FORMAT " frames, copied %" G_GUINT64_FORMAT
                    ", dropped %" G_GUINT64_FORMAT,
                    self->counters[kSent].load(), self->counters[kCopied].load(),
                    self->counters[kDropped].load());
  }
  if (*self->client != nullptr) memd::gst::DropCopies(self->client->get());
  gst_clear_object(&self->allocator);
  self->client->reset();
  return TRUE;
}

static gboolean gst_memd_sink_set_caps(GstBaseSink* sink, GstCaps* caps) {
  auto* self = GST_MEMD_SINK(sink);
  std::string error;
  if (!memd::gst::ParseCaps(caps, self->stream, &error)) {
    GST_ELEMENT_ERROR(self, STREAM, FORMAT, ("%s", error.c_str()), (nullptr));
    return FALSE;
  }
  return TRUE;
}

static gboolean gst_memd_sink_propose_allocation(GstBaseSink* sink, GstQuery* query) {
  auto* self = GST_MEMD_SINK(sink);
  GstCaps* caps = nullptr;
  gboolean need_pool = FALSE;
  gst_query_parse_allocation(query, &caps, &need_pool);
  if (caps == nullptr || self->allocator == nullptr) return FALSE;
  GstVideoInfo info;
  if (!gst_structure_has_name(gst_caps_get_structure(caps, 0), "video/x-raw") ||
      !gst_video_info_from_caps(&info, caps)) {
    return TRUE;  // audio: upstream's buffers are copied (small)
  }
  // The pool only, not the allocator alone: a pool of upstream's own would
  // recycle memory that other processes still read (GstMemdBufferPool
  // drops lent buffers instead).
  if (need_pool) {
    GstBufferPool* pool = memd::gst::NewBufferPool(self->allocator);
    GstStructure* config = gst_buffer_pool_get_config(pool);
    gst_buffer_pool_config_set_params(config, caps, static_cast<guint>(info.size), 2, 0);
    gst_buffer_pool_set_config(pool, config);
    gst_query_add_allocation_pool(query, pool, static_cast<guint>(info.size), 2, 0);
    gst_object_unref(pool);
  }
  gst_query_add_allocation_meta(query, GST_VIDEO_META_API_TYPE, nullptr);
  return TRUE;
}

static GstFlowReturn gst_memd_sink_render(GstBaseSink* sink, GstBuffer* buffer) {
  auto* self = GST_MEMD_SINK(sink);
  memd::RawFrame frame;
  memd::gst::DescribeStream(*self->stream, &frame);
  if (GST_BUFFER_PTS_IS_VALID(buffer)) frame.pts_ns = static_cast<int64_t>(GST_BUFFER_PTS(buffer));
  if (GST_BUFFER_DURATION_IS_VALID(buffer)) {
    frame.duration_ns = static_cast<int64_t>(GST_BUFFER_DURATION(buffer));
  }
  if (!GST_BUFFER_FLAG_IS_SET(buffer, GST_BUFFER_FLAG_DELTA_UNIT))
    frame.flags |= memd::kRawFrameKeyframe;
  if (GST_BUFFER_FLAG_IS_SET(buffer, GST_BUFFER_FLAG_DISCONT))
    frame.flags |= memd::kRawFrameDiscont;
  if (GST_BUFFER_FLAG_IS_SET(buffer, GST_BUFFER_FLAG_CORRUPTED))
    frame.flags |= memd::kRawFrameCorrupt;
  if (GST_BUFFER_FLAG_IS_SET(buffer, GST_VIDEO_BUFFER_FLAG_INTERLACED)) {
    frame.flags |= memd::kRawFrameInterlaced;
    if (GST_BUFFER_FLAG_IS_SET(buffer, GST_VIDEO_BUFFER_FLAG_TFF))
      frame.flags |= memd::kRawFrameTopFieldFirst;
  }
  std::vector<gsize> offsets;
  PlanesOf(self, buffer, &frame, &offsets);
  std::vector<uint64_t> handles;
  memd::SendMode mode = memd::SendMode::kShare;  // the memory keeps its reference
  if (!ByReference(self, buffer, offsets, &frame, &handles)) {
    handles.clear();
    if (!CopyIn(self, buffer, offsets, &frame, &handles, &mode)) return GST_FLOW_ERROR;
  }
  frame.buffer_count = static_cast<uint32_t>(handles.size());
  absl::StatusOr<std::string> metadata = memd::EncodeRawFrame(frame);
  if (!metadata.ok()) {
    GST_ELEMENT_ERROR(self, STREAM, FORMAT, ("Buffer does not fit a memd raw frame"),
                      ("%s", std::string(metadata.status().message()).c_str()));
    return GST_FLOW_ERROR;
  }
  GstFlowReturn ret =
      SendMessage(self, handles, *metadata, self->leaky ? Wait::kDropFull : Wait::kForRoom, mode);
  if (ret == GST_FLOW_OK) {
    self->counters[kSent]++;
  } else if (ret != GST_FLOW_CUSTOM_SUCCESS && mode == memd::SendMode::kMove) {
    (*self->client)->ReleaseRefsLater(handles);  // a failed send gives them back
  }
  return ret == GST_FLOW_CUSTOM_SUCCESS ? GST_FLOW_OK : ret;
}

static gboolean gst_memd_sink_event(GstBaseSink* sink, GstEvent* event) {
  auto* self = GST_MEMD_SINK(sink);
  if (GST_EVENT_TYPE(event) == GST_EVENT_EOS && *self->client != nullptr) {
    GST_DEBUG_OBJECT(self, "sending end of stream");
    GstFlowReturn sent =
        SendMessage(self, {}, *memd::EncodeRawFrame(memd::RawFrame::EndOfStream()),
                    self->leaky ? Wait::kBounded : Wait::kForRoom, memd::SendMode::kMove);
    if (sent != GST_FLOW_OK) GST_WARNING_OBJECT(self, "end of stream not sent");
    PostStats(self);
  }
  return GST_BASE_SINK_CLASS(gst_memd_sink_parent_class)->event(sink, event);
}

static gboolean gst_memd_sink_unlock(GstBaseSink* sink) {
  GST_MEMD_SINK(sink)->unlocked->store(true);
  return TRUE;
}

static gboolean gst_memd_sink_unlock_stop(GstBaseSink* sink) {
  GST_MEMD_SINK(sink)->unlocked->store(false);
  return TRUE;
}

static void gst_memd_sink_set_property(GObject* object, guint id, const GValue* value,
                                       GParamSpec* pspec) {
  auto* self = GST_MEMD_SINK(object);
  GST_OBJECT_LOCK(self);
  if (memd::gst::SetEndpointProperty(&self->endpoint, id, value)) {
    GST_OBJECT_UNLOCK(self);
    return;
  }
  switch (id) {
    case PROP_LEAKY:
      self->leaky = g_value_get_boolean(value);
      break;
    default:
      G_OBJECT_WARN_INVALID_PROPERTY_ID(object, id, pspec);
      break;
  }
  GST_OBJECT_UNLOCK(self);
}

static void gst_memd_sink_get_property(GObject* object, guint id, GValue* value,
                                       GParamSpec* pspec) {
  auto* self = GST_MEMD_SINK(object);
  GST_OBJECT_LOCK(self);
  if (memd::gst::GetEndpointProperty(self->endpoint, id, value)) {
    GST_OBJECT_UNLOCK(self);
    return;
  }
  switch (id) {
    case PROP_LEAKY:
      g_value_set_boolean(value, self->leaky);
      break;
    case PROP_FRAMES_SENT:
      g_value_set_uint64(value, self->counters[kSent].load());
      break;
    case PROP_FRAMES_COPIED:
      g_value_set_uint64(value, self->counters[kCopied].load());
      break;
    case PROP_FRAMES_DROPPED:
      g_value_set_uint64(value, self->counters[kDropped].load());
      break;
    default:
      G_OBJECT_WARN_INVALID_PROPERTY_ID(object, id, pspec);
      break;
  }
  GST_OBJECT_UNLOCK(self);
}

static void gst_memd_sink_finalize(GObject* object) {
  auto* self = GST_MEMD_SINK(object);
  self->endpoint.~Endpoint();
  delete self->client;
  delete self->stream;
  delete self->unlocked;
  delete[] self->counters;
  G_OBJECT_CLASS(gst_memd_sink_parent_class)->finalize(object);
}

static void gst_memd_sink_class_init(GstMemdSinkClass* klass) {
  GObjectClass* gobject = G_OBJECT_CLASS(klass);
  gobject->set_property = gst_memd_sink_set_property;
  gobject->get_property = gst_memd_sink_get_property;
  gobject->finalize = gst_memd_sink_finalize;
  memd::gst::InstallEndpointProperties(gobject);
  auto ro = static_cast<GParamFlags>(G_PARAM_READABLE | G_PARAM_STATIC_STRINGS);
  g_object_class_install_property(
      gobject, PROP_LEAKY,
      g_param_spec_boolean("leaky", "Leaky",
                           "Drop a frame when the channel is full instead of waiting for room "
                           "(for live sources)",
                           FALSE,
                           static_cast<GParamFlags>(G_PARAM_READWRITE | G_PARAM_STATIC_STRINGS)));
  g_object_class_install_property(
      gobject, PROP_FRAMES_SENT,
      g_param_spec_uint64("frames-sent", "Frames sent", "Frames sent on the channel", 0,
                          G_MAXUINT64, 0, ro));
  g_object_class_install_property(
      gobject, PROP_FRAMES_COPIED,
      g_param_spec_uint64("frames-copied", "Frames copied",
                          "Buffers that were not memd memory and were copied once into the pool", 0,
                          G_MAXUINT64, 0, ro));
  g_object_class_install_property(
      gobject, PROP_FRAMES_DROPPED,
      g_param_spec_uint64("frames-dropped", "Frames dropped",
                          "Frames dropped because the channel was full (leaky=true)", 0,
                          G_MAXUINT64, 0, ro));
  GstElementClass* element = GST_ELEMENT_CLASS(klass);
  gst_element_class_set_static_metadata(
      element, "memd sink", "Sink/Video/Audio",
      "Sends raw frames by reference over a memd channel (shared pool memory, "
      "reference-counted across processes)",
      "memd project");
  GstPadTemplate* templ =
      gst_pad_template_new("sink", GST_PAD_SINK, GST_PAD_ALWAYS, memd::gst::TemplateCaps());
  gst_element_class_add_pad_template(element, templ);
  GstBaseSinkClass* base = GST_BASE_SINK_CLASS(klass);
  base->start = gst_memd_sink_start;
  base->stop = gst_memd_sink_stop;
  base->set_caps = gst_memd_sink_set_caps;
  base->propose_allocation = gst_memd_sink_propose_allocation;
  base->render = gst_memd_sink_render;
  base->event = gst_memd_sink_event;
  base->unlock = gst_memd_sink_unlock;
  base->unlock_stop = gst_memd_sink_unlock_stop;
  GST_DEBUG_CATEGORY_INIT(gst_memd_sink_debug, "memdsink", 0, "memd sink");
}

static void gst_memd_sink_init(GstMemdSink* self) {
  new (&self->endpoint) memd::gst::Endpoint();
  self->client = new std::shared_ptr<memd::Client>();
  self->stream = new memd::gst::StreamFormat();
  self->unlocked = new std::atomic<bool>(false);
  self->counters = new std::atomic<uint64_t>[3]();
  gst_base_sink_set_sync(GST_BASE_SINK(self), FALSE);
}
