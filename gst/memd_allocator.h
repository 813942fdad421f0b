// GstMemdAllocator: GstMemory in memd pool memory. Each root memory owns one
// memd reference (of the allocator's Client's session), released when the
// memory's last ref goes (GstMemory refcounting across elements, memd's
// across processes). Memory received from a channel is wrapped in place
// (gst_memd_allocator_wrap), never copied. Private to the memd plugin.
//
// Ownership: the allocator holds a share of the Client; every memory holds a
// ref of its allocator, so the Client outlives every memory it backs.
// Thread-safety: allocation, wrapping and freeing from any thread (the
// Client is thread-safe); a memory's `lent` mark is atomic.
#ifndef MEMD_GST_MEMD_ALLOCATOR_H_
#define MEMD_GST_MEMD_ALLOCATOR_H_

#include <gst/gst.h>

#include <cstdint>
#include <memory>

#include "memd/client.h"

G_BEGIN_DECLS

#define GST_TYPE_MEMD_ALLOCATOR (gst_memd_allocator_get_type())
G_DECLARE_FINAL_TYPE(GstMemdAllocator, gst_memd_allocator, GST, MEMD_ALLOCATOR, GstAllocator)

// The memory type name (gst_memory_is_type).
#define GST_MEMD_MEMORY_TYPE "memd"

G_END_DECLS

namespace memd::gst {

GstAllocator* NewAllocator(std::shared_ptr<Client> client);
// Wraps a reference this session holds (from a channel): the memory owns it.
// `readonly`: other processes may read the same bytes (a received frame).
GstMemory* WrapReference(GstAllocator* allocator, const BufferRef& ref, bool readonly);

// Whether `mem` is memd memory of `client`'s session (so its handle can be
// sent by reference).
bool IsMemoryOf(GstMemory* mem, const Client* client);
// REQUIRES: gst_memory_is_type(mem, GST_MEMD_MEMORY_TYPE).
uint64_t MemoryHandle(GstMemory* mem);
// Marks the memory's buffer as read by other processes: a buffer pool must
// not hand it out again for writing.
void MarkLent(GstMemory* mem);
bool IsLent(GstMemory* mem);
// After the daemon said no other holder is left (Client::QueryRefs).
void ClearLent(GstMemory* mem);
// The Client whose session holds the allocator's memory.
Client& AllocatorClient(GstAllocator* allocator);

}  // namespace memd::gst

#endif  // MEMD_GST_MEMD_ALLOCATOR_H_
