/*
 * memd C API: libavutil's allocator (libavutil/mem.h, FFmpeg 5.1) one for one,
 * with memory that lives in a memd shared-memory pool.
 *
 * Every memd_X behaves as av_X of Debian's libavutil 5.1 (same NULL results,
 * same *size values, same edge cases), except that:
 *   - memory comes from the pool this process attached to (memd_init), and
 *     every returned pointer is aligned to the pool alignment (64 by default);
 *   - failures also set a message for memd_last_error();
 *   - memd_free/memd_realloc of a pointer memd did not return (foreign or
 *     interior) do nothing (realloc returns NULL) instead of corrupting memory;
 *   - memd_realloc refuses (NULL) to move a buffer other processes retained.
 *
 * Any function called before memd_init() initializes from the environment:
 * $MEMD_ADDRESS (default unix:///run/memd/memd.sock) and $MEMD_POOL (default
 * "default"). All functions are thread-safe.
 */
#ifndef MEMD_MEMD_H_
#define MEMD_MEMD_H_

#include <stddef.h>
#include <stdint.h>

#include "memd/version.h" /* MEMD_VERSION_MAJOR, _MINOR, _PATCH, _STRING */

#ifdef __cplusplus
extern "C" {
#endif
#if defined(__GNUC__)
#pragma GCC visibility push(default) /* libmemd's API (built -fvisibility=hidden) */
#endif

/* Connects to the daemon at `address` ("unix:///path" or "host:port"; NULL:
 * $MEMD_ADDRESS or the default) and attaches to `pool` (NULL: $MEMD_POOL or
 * "default"). Returns 0, or a negative errno: -ECONNREFUSED (daemon not
 * reachable), -ENOENT (no such pool), -EACCES (segment not accessible),
 * -EINVAL (malformed address or name), -EBUSY (already initialized with
 * another address or pool; call memd_uninit first). */
int memd_init(const char *address, const char *pool);

/* Ends the session: the daemon releases every buffer this process still
 * holds and the pool is unmapped. Pointers from memd become invalid. */
void memd_uninit(void);

/* The version of the libmemd this process runs, "MAJOR.MINOR.PATCH": compare
 * with MEMD_VERSION_STRING (the headers it was compiled against). Static
 * storage; never NULL. */
const char *memd_version(void);

/* This thread's last failure, as a message naming the value and the limit;
 * "" when nothing failed yet. Valid until the thread's next memd call. */
const char *memd_last_error(void);

void *memd_malloc(size_t size);
void *memd_mallocz(size_t size);
void *memd_malloc_array(size_t nmemb, size_t size);
void *memd_mallocz_array(size_t nmemb, size_t size);
void *memd_calloc(size_t nmemb, size_t size);
void *memd_realloc(void *ptr, size_t size);
void *memd_realloc_array(void *ptr, size_t nmemb, size_t size);
void *memd_fast_realloc(void *ptr, unsigned int *size, size_t min_size);
void  memd_fast_malloc(void *ptr, unsigned int *size, size_t min_size);
void  memd_fast_mallocz(void *ptr, unsigned int *size, size_t min_size);
char *memd_strdup(const char *s);
char *memd_strndup(const char *s, size_t len);
void *memd_memdup(const void *p, size_t size);
/* Works on any memory; cnt <= 0 or back == 0 does nothing. */
void  memd_memcpy_backptr(uint8_t *dst, int back, int cnt);
void  memd_free(void *ptr);
void  memd_freep(void *ptr);
/* This process's allocation limit (default INT_MAX, as av_max_alloc); the
 * effective limit is never above the pool's max_alloc. */
void  memd_max_alloc(size_t max);
int   memd_size_mult(size_t a, size_t b, size_t *r);

/* The handle of a buffer memd returned (to hand to another process); 0 for
 * NULL or a pointer memd did not return, or (with memd_last_error()) when
 * the daemon refuses to register an arena block, e.g. over a quota. */
uint64_t memd_handle(const void *ptr);

/* Maps another process's buffer by handle, taking a reference; *size (if not
 * NULL) receives its size. memd_free releases the reference. NULL on failure
 * (unknown, freed or foreign handle). */
void *memd_retain(uint64_t handle, size_t *size);

/* Channels (named queues of buffers in the daemon, created by their first
 * user with 16 messages of room). memd_channel_send moves this process's
 * reference to each of the `count` buffers (0..64; 0 sends metadata only) into `channel` with
 * `metadata_size` (<= 4096) bytes of metadata: afterwards the pointers are no
 * longer this process's to free. A full channel is waited on for up to
 * `timeout_ms`. Returns 0, or a negative errno (-EAGAIN: still full; -EINVAL;
 * -ENOENT; -EPERM: a buffer this process does not hold) with memd_last_error().
 * Nothing is sent on failure. */
int memd_channel_send(const char *channel, void *const *ptrs, size_t count,
                      const void *metadata, size_t metadata_size, int timeout_ms);
/* memd_channel_post: memd_channel_send without waiting for the daemon's
 * answer (the caller goes on, and is not woken for the answer). One posted
 * send is outstanding per process: memd_channel_post, memd_channel_send and
 * memd_channel_collect first collect it (waiting while it waits for room) and,
 * when it failed, return its error and do nothing else. The pointers are no
 * longer this process's once the send is collected and went through; when it
 * failed they still are. Errors found before posting (NULL arguments, a
 * pointer memd did not return) come back at once and nothing is sent.
 * memd_channel_collect returns 0 (also when nothing is outstanding) or the
 * posted send's negative errno, as memd_channel_send's. */
int memd_channel_post(const char *channel, void *const *ptrs, size_t count,
                      const void *metadata, size_t metadata_size, int timeout_ms);
int memd_channel_collect(void);
/* Takes the oldest message, waiting up to `timeout_ms` for one: up to
 * `max_count` buffer pointers into ptrs (each freed with memd_free), their
 * sizes into sizes (may be NULL), the count into *count, and the metadata into
 * metadata (at most metadata_capacity bytes; *metadata_size gets its full
 * size). Returns 0, -ETIMEDOUT when no message came, -ENOSPC when the message
 * had more buffers than max_count (the first max_count are returned, the rest
 * released), or another negative errno with memd_last_error(). */
int memd_channel_receive(const char *channel, void **ptrs, size_t *sizes, size_t max_count,
                         size_t *count, void *metadata, size_t metadata_capacity,
                         size_t *metadata_size, int timeout_ms);

#if defined(__GNUC__)
#pragma GCC visibility pop
#endif
#ifdef __cplusplus
}
#endif

#endif /* MEMD_MEMD_H_ */
