#include "memd_allocator.h"

#include <cstring>
#include <string>

GST_DEBUG_CATEGORY_STATIC(gst_memd_allocator_debug);
#define GST_CAT_DEFAULT gst_memd_allocator_debug

namespace {

// One memd buffer (root) or a part of one (shared: `mem.parent` set).
struct MemdMemory {
  GstMemory mem;
  uint64_t handle;  // the memd buffer; released by the root only
  uint8_t* data;    // its first byte in this process's mapping
  gint lent;        // atomic: sent over a channel (root's counts)
};

MemdMemory* Root(GstMemory* mem) {
  while (mem->parent != nullptr) mem = mem->parent;
  return reinterpret_cast<MemdMemory*>(mem);
}

}  // namespace

struct _GstMemdAllocator {
  GstAllocator parent;
  std::shared_ptr<memd::Client>* client;  // owned; set once at creation
};

G_DEFINE_TYPE(GstMemdAllocator, gst_memd_allocator, GST_TYPE_ALLOCATOR)

namespace {

MemdMemory* NewMemory(GstMemdAllocator* self, GstMemory* parent, const memd::BufferRef& ref,
                      gsize maxsize, gsize offset, gsize size, GstMemoryFlags flags) {
  auto* m = g_new0(MemdMemory, 1);
  gst_memory_init(&m->mem, flags, GST_ALLOCATOR(self), parent, maxsize, 0, offset, size);
  m->handle = ref.handle;
  m->data = (*self->client)->Pointer(ref.offset_bytes);
  return m;
}

GstMemory* Alloc(GstAllocator* allocator, gsize size, GstAllocationParams* params) {
  auto* self = GST_MEMD_ALLOCATOR(allocator);
  memd::Client& client = **self->client;
  // memd buffers start at the pool's alignment; more costs padding.
  gsize align = params->align + 1 > client.pool().alignment_bytes ? params->align : 0;
  gsize maxsize = size + params->prefix + params->padding + align;
  absl::StatusOr<memd::BufferRef> ref = client.AllocateRef(maxsize, false);
  if (!ref.ok()) {
    GST_WARNING_OBJECT(self, "memd allocation of %" G_GSIZE_FORMAT " bytes in pool '%s': %s",
                       maxsize, client.pool().name.c_str(),
                       std::string(ref.status().message()).c_str());
    return nullptr;
  }
  gsize offset = params->prefix;
  if (align != 0) {
    uintptr_t start = reinterpret_cast<uintptr_t>(client.Pointer(ref->offset_bytes)) + offset;
    offset += (align + 1 - (start & align)) & align;
  }
  MemdMemory* m = NewMemory(self, nullptr, *ref, maxsize, offset, size, params->flags);
  if ((params->flags & GST_MEMORY_FLAG_ZERO_PREFIXED) && params->prefix > 0) {
    std::memset(m->data, 0, params->prefix);
  }
  return &m->mem;
}

void Free(GstAllocator* allocator, GstMemory* mem) {
  auto* self = GST_MEMD_ALLOCATOR(allocator);
  auto* m = reinterpret_cast<MemdMemory*>(mem);
  // Batched: travels with the session's next request (or alone within 25 ms).
  if (mem->parent == nullptr) (*self->client)->ReleaseRefsLater({m->handle});
  g_free(m);
}

gpointer Map(GstMemory* mem, gsize, GstMapFlags) {
  return reinterpret_cast<MemdMemory*>(mem)->data;
}

void Unmap(GstMemory*) {}

GstMemory* Share(GstMemory* mem, gssize offset, gssize size) {
  auto* m = reinterpret_cast<MemdMemory*>(mem);
  GstMemory* parent = mem->parent != nullptr ? mem->parent : mem;
  if (size == -1) size = static_cast<gssize>(mem->size) - offset;
  auto* sub = g_new0(MemdMemory, 1);
  gst_memory_init(&sub->mem,
                  static_cast<GstMemoryFlags>(GST_MINI_OBJECT_FLAGS(parent) |
                                              GST_MINI_OBJECT_FLAG_LOCK_READONLY),
                  mem->allocator, parent, mem->maxsize, mem->align, mem->offset + offset, size);
  sub->handle = m->handle;
  sub->data = m->data;
  return &sub->mem;
}

gboolean IsSpan(GstMemory* a, GstMemory* b, gsize* offset) {
  auto* ma = reinterpret_cast<MemdMemory*>(a);
  auto* mb = reinterpret_cast<MemdMemory*>(b);
  if (ma->handle != mb->handle || a->offset + a->size != b->offset) return FALSE;
  if (offset != nullptr) *offset = a->offset - (a->parent != nullptr ? a->parent->offset : 0);
  return TRUE;
}

}  // namespace

static void gst_memd_allocator_finalize(GObject* object) {
  auto* self = GST_MEMD_ALLOCATOR(object);
  delete self->client;
  G_OBJECT_CLASS(gst_memd_allocator_parent_class)->finalize(object);
}

static void gst_memd_allocator_class_init(GstMemdAllocatorClass* klass) {
  G_OBJECT_CLASS(klass)->finalize = gst_memd_allocator_finalize;
  GST_ALLOCATOR_CLASS(klass)->alloc = Alloc;
  GST_ALLOCATOR_CLASS(klass)->free = Free;
  GST_DEBUG_CATEGORY_INIT(gst_memd_allocator_debug, "memdallocator", 0, "memd pool memory");
}

static void gst_memd_allocator_init(GstMemdAllocator* self) {
  GstAllocator* allocator = GST_ALLOCATOR(self);
  allocator->mem_type = GST_MEMD_MEMORY_TYPE;
  allocator->mem_map = Map;
  allocator->mem_unmap = Unmap;
  allocator->mem_share = Share;
  allocator->mem_is_span = IsSpan;
  GST_OBJECT_FLAG_SET(self, GST_ALLOCATOR_FLAG_CUSTOM_ALLOC);
}

namespace memd::gst {

GstAllocator* NewAllocator(std::shared_ptr<Client> client) {
  auto* self = GST_MEMD_ALLOCATOR(g_object_new(GST_TYPE_MEMD_ALLOCATOR, nullptr));
  gst_object_ref_sink(self);
  self->client = new std::shared_ptr<Client>(std::move(client));
  return GST_ALLOCATOR(self);
}

GstMemory* WrapReference(GstAllocator* allocator, const BufferRef& ref, bool readonly) {
  auto flags = readonly ? GST_MEMORY_FLAG_READONLY : static_cast<GstMemoryFlags>(0);
  MemdMemory* m = NewMemory(GST_MEMD_ALLOCATOR(allocator), nullptr, ref, ref.size_bytes, 0,
                            ref.size_bytes, flags);
  return &m->mem;
}

bool IsMemoryOf(GstMemory* mem, const Client* client) {
  if (!gst_memory_is_type(mem, GST_MEMD_MEMORY_TYPE)) return false;
  return GST_MEMD_ALLOCATOR(mem->allocator)->client->get() == client;
}

uint64_t MemoryHandle(GstMemory* mem) { return reinterpret_cast<MemdMemory*>(mem)->handle; }

void MarkLent(GstMemory* mem) { g_atomic_int_set(&Root(mem)->lent, 1); }

bool IsLent(GstMemory* mem) { return g_atomic_int_get(&Root(mem)->lent) != 0; }

void ClearLent(GstMemory* mem) { g_atomic_int_set(&Root(mem)->lent, 0); }

Client& AllocatorClient(GstAllocator* allocator) { return **GST_MEMD_ALLOCATOR(allocator)->client; }

}  // namespace memd::gst
