#include "memd_buffer_pool.h"

#include <deque>
#include <mutex>
#include <string>
#include <vector>

#include "memd_allocator.h"

GST_DEBUG_CATEGORY_STATIC(gst_memd_buffer_pool_debug);
#define GST_CAT_DEFAULT gst_memd_buffer_pool_debug

struct _GstMemdBufferPool {
  GstBufferPool parent;
  // Set by set_config (the pool is inactive then), read by alloc_buffer.
  GstAllocator* allocator;  // a GstMemdAllocator, owned
  GstAllocationParams params;
  GstVideoInfo info;
  gboolean video;       // caps are video/x-raw
  gboolean video_meta;  // GST_BUFFER_POOL_OPTION_VIDEO_META asked for
  guint size;
  // Lent buffers back from GStreamer, oldest first, not yet in the pool's
  // queue. Any thread (release, acquire), under *parked_mu.
  std::mutex* parked_mu;
  std::deque<GstBuffer*>* parked;
  size_t parked_since_query;  // buffers parked since the last query
};

namespace {

// A channel of 16 frames plus a reader's few: enough to find returned ones.
constexpr size_t kMaxParked = 32;
// The daemon is asked once per this many newly parked buffers (one query per
// few frames; meanwhile the pool allocates if its queue runs dry).
constexpr size_t kQueryBatch = 4;

bool AnyLent(GstBuffer* buffer) {
  for (guint i = 0; i < gst_buffer_n_memory(buffer); ++i) {
    if (memd::gst::IsLent(gst_buffer_peek_memory(buffer, i))) return true;
  }
  return false;
}

// Gives the parked buffers nobody else holds back to the pool's queue (the
// default release path, so the pool's counts stay right). REQUIRES: parked_mu.
void FindReturned(GstMemdBufferPool* self, GstBufferPoolClass* parent) {
  std::vector<uint64_t> handles;
  for (GstBuffer* b : *self->parked) {
    for (guint i = 0; i < gst_buffer_n_memory(b); ++i) {
      handles.push_back(memd::gst::MemoryHandle(gst_buffer_peek_memory(b, i)));
    }
  }
  absl::StatusOr<std::vector<memd::RefCount>> refs =
      memd::gst::AllocatorClient(self->allocator).QueryRefs(handles);
  if (!refs.ok()) {
    GST_WARNING_OBJECT(self, "query of %zu lent buffers: %s", handles.size(),
                       std::string(refs.status().message()).c_str());
    return;
  }
  size_t at = 0;
  for (auto it = self->parked->begin(); it != self->parked->end();) {
    bool back = true;
    for (guint i = 0; i < gst_buffer_n_memory(*it); ++i, ++at) {
      back = back && (*refs)[at].references == (*refs)[at].held;
    }
    if (back) {
      for (guint i = 0; i < gst_buffer_n_memory(*it); ++i) {
        memd::gst::ClearLent(gst_buffer_peek_memory(*it, i));
      }
      parent->release_buffer(GST_BUFFER_POOL(self), *it);
      it = self->parked->erase(it);
    } else {
      ++it;
    }
  }
}

}  // namespace

G_DEFINE_TYPE(GstMemdBufferPool, gst_memd_buffer_pool, GST_TYPE_BUFFER_POOL)

static const gchar** gst_memd_buffer_pool_get_options(GstBufferPool*) {
  static const gchar* options[] = {GST_BUFFER_POOL_OPTION_VIDEO_META, nullptr};
  return options;
}

static gboolean gst_memd_buffer_pool_set_config(GstBufferPool* pool, GstStructure* config) {
  auto* self = GST_MEMD_BUFFER_POOL(pool);
  GstCaps* caps = nullptr;
  guint size = 0, min = 0, max = 0;
  if (!gst_buffer_pool_config_get_params(config, &caps, &size, &min, &max) || caps == nullptr) {
    GST_WARNING_OBJECT(pool, "config without caps");
    return FALSE;
  }
  GstAllocator* allocator = nullptr;
  GstAllocationParams params;
  gst_allocation_params_init(&params);
  gst_buffer_pool_config_get_allocator(config, &allocator, &params);
  self->params = params;
  // Another allocator in the config is ignored: this pool is memd memory.
  self->video = gst_structure_has_name(gst_caps_get_structure(caps, 0), "video/x-raw") &&
                gst_video_info_from_caps(&self->info, caps);
  self->video_meta =
      self->video && gst_buffer_pool_config_has_option(config, GST_BUFFER_POOL_OPTION_VIDEO_META);
  if (self->video && size < GST_VIDEO_INFO_SIZE(&self->info)) {
    size = static_cast<guint>(GST_VIDEO_INFO_SIZE(&self->info));
  }
  self->size = size;
  gst_buffer_pool_config_set_params(config, caps, size, min, max);
  gst_buffer_pool_config_set_allocator(config, self->allocator, &self->params);
  return GST_BUFFER_POOL_CLASS(gst_memd_buffer_pool_parent_class)->set_config(pool, config);
}

static GstFlowReturn gst_memd_buffer_pool_alloc_buffer(GstBufferPool* pool, GstBuffer** out,
                                                       GstBufferPoolAcquireParams*) {
  auto* self = GST_MEMD_BUFFER_POOL(pool);
  GstMemory* mem = gst_allocator_alloc(self->allocator, self->size, &self->params);
  if (mem == nullptr) {
    GST_WARNING_OBJECT(pool, "no memd memory for a buffer of %u bytes", self->size);
    return GST_FLOW_ERROR;
  }
  GstBuffer* buffer = gst_buffer_new();
  gst_buffer_append_memory(buffer, mem);
  if (self->video_meta) {
    const GstVideoInfo& v = self->info;
    gst_buffer_add_video_meta_full(buffer, GST_VIDEO_FRAME_FLAG_NONE, GST_VIDEO_INFO_FORMAT(&v),
                                   GST_VIDEO_INFO_WIDTH(&v), GST_VIDEO_INFO_HEIGHT(&v),
                                   GST_VIDEO_INFO_N_PLANES(&v), const_cast<gsize*>(v.offset),
                                   const_cast<gint*>(v.stride));
  }
  *out = buffer;
  return GST_FLOW_OK;
}

// Through the default release, which frees a tagged buffer (and counts it).
static void Discard(GstBufferPool* pool, GstBuffer* buffer) {
  GST_BUFFER_FLAG_SET(buffer, GST_BUFFER_FLAG_TAG_MEMORY);
  GST_BUFFER_POOL_CLASS(gst_memd_buffer_pool_parent_class)->release_buffer(pool, buffer);
}

static void gst_memd_buffer_pool_release_buffer(GstBufferPool* pool, GstBuffer* buffer) {
  auto* self = GST_MEMD_BUFFER_POOL(pool);
  if (!AnyLent(buffer) || gst_buffer_get_size(buffer) != self->size ||
      GST_BUFFER_FLAG_IS_SET(buffer, GST_BUFFER_FLAG_TAG_MEMORY)) {
    GST_BUFFER_POOL_CLASS(gst_memd_buffer_pool_parent_class)->release_buffer(pool, buffer);
    return;
  }
  // Another process may still read it: parked until the daemon says not.
  GstBuffer* dropped = nullptr;
  {
    std::lock_guard<std::mutex> lock(*self->parked_mu);
    self->parked->push_back(buffer);
    ++self->parked_since_query;
    if (self->parked->size() > kMaxParked) {
      dropped = self->parked->front();
      self->parked->pop_front();
    }
  }
  if (dropped != nullptr) Discard(pool, dropped);
}

static GstFlowReturn gst_memd_buffer_pool_acquire_buffer(GstBufferPool* pool, GstBuffer** out,
                                                         GstBufferPoolAcquireParams* params) {
  auto* self = GST_MEMD_BUFFER_POOL(pool);
  GstBufferPoolClass* parent = GST_BUFFER_POOL_CLASS(gst_memd_buffer_pool_parent_class);
  {
    std::lock_guard<std::mutex> lock(*self->parked_mu);
    if (self->parked_since_query >= kQueryBatch) {
      self->parked_since_query = 0;
      FindReturned(self, parent);
    }
  }
  return parent->acquire_buffer(pool, out, params);
}

// Parked buffers go when the pool stops (their memd references
// with them; readers keep theirs).
static gboolean gst_memd_buffer_pool_stop(GstBufferPool* pool) {
  auto* self = GST_MEMD_BUFFER_POOL(pool);
  std::deque<GstBuffer*> drop;
  {
    std::lock_guard<std::mutex> lock(*self->parked_mu);
    drop.swap(*self->parked);
  }
  for (GstBuffer* b : drop) Discard(pool, b);
  return GST_BUFFER_POOL_CLASS(gst_memd_buffer_pool_parent_class)->stop(pool);
}

static void gst_memd_buffer_pool_finalize(GObject* object) {
  auto* self = GST_MEMD_BUFFER_POOL(object);
  gst_clear_object(&self->allocator);
  delete self->parked;
  delete self->parked_mu;
  G_OBJECT_CLASS(gst_memd_buffer_pool_parent_class)->finalize(object);
}

static void gst_memd_buffer_pool_class_init(GstMemdBufferPoolClass* klass) {
  G_OBJECT_CLASS(klass)->finalize = gst_memd_buffer_pool_finalize;
  GstBufferPoolClass* pool = GST_BUFFER_POOL_CLASS(klass);
  pool->get_options = gst_memd_buffer_pool_get_options;
  pool->set_config = gst_memd_buffer_pool_set_config;
  pool->alloc_buffer = gst_memd_buffer_pool_alloc_buffer;
  pool->release_buffer = gst_memd_buffer_pool_release_buffer;
  pool->stop = gst_memd_buffer_pool_stop;
  pool->acquire_buffer = gst_memd_buffer_pool_acquire_buffer;
  GST_DEBUG_CATEGORY_INIT(gst_memd_buffer_pool_debug, "memdbufferpool", 0, "memd buffer pool");
}

static void gst_memd_buffer_pool_init(GstMemdBufferPool* self) {
  self->parked_mu = new std::mutex;
  self->parked = new std::deque<GstBuffer*>;
}

namespace memd::gst {

GstBufferPool* NewBufferPool(GstAllocator* allocator) {
  auto* self = GST_MEMD_BUFFER_POOL(g_object_new(GST_TYPE_MEMD_BUFFER_POOL, nullptr));
  gst_object_ref_sink(self);
  self->allocator = GST_ALLOCATOR(gst_object_ref(allocator));
  return GST_BUFFER_POOL(self);
}

}  // namespace memd::gst
