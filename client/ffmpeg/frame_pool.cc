#include <algorithm>
#include <atomic>
#include <map>
#include <vector>

extern "C" {
#include <libavutil/imgutils.h>
#include <libavutil/pixdesc.h>
}

#include "absl/container/flat_hash_map.h"
#include "absl/strings/str_format.h"
#include "frame_wire.h"
#include "memd/ffmpeg.h"
#include "memd/shared/mutex.h"

namespace memd::ffmpeg {

// Lent pool buffers are checked with one daemon query (of every size) once
// this many of one size are parked: the pool then holds about (frames in
// flight + 8) buffers per size, and a yuv420p decoder, whose frames park one
// luma and two chroma buffers, pays one round trip per 4 frames.
constexpr size_t kParkedPerQuery = 8;
// Fewer parked buffers are checked every this many gets of their size, so
// they come back too.
constexpr uint64_t kGetsPerQuery = 16;
// A pool that grows allocates this many buffers per daemon call (one
// allocate_batch); the spares wait in the pool's State until it needs them.
constexpr uint32_t kAllocBatch = 4;
// Padding past each plane, as libavcodec's own pools (16 + STRIDE_ALIGN - 1).
constexpr size_t kPlanePaddingBytes = 16 + 64 - 1;
constexpr int kLinesizeAlign = 64;

// Shared by the FramePool and every buffer it gave out or received, so a
// buffer freed after the FramePool still releases its memd reference.
//
// Lock order: pools_mu, then tags_mu. AVBufferPool callbacks (Alloc, the
// buffers' free) take tags_mu only, so they may run under pools_mu.
struct FramePool::State {
  explicit State(Client& c) : client(c) {}

  struct SizePool {
    AVBufferPool* pool = nullptr;
    std::vector<AVBufferRef*> parked;  // lent buffers out of circulation
    size_t query_at_parked = kParkedPerQuery;  // parked count that triggers a query
    uint64_t gets_since_query = 0;
    std::vector<BufferRef> spares;  // allocated, not yet AVBuffers (held by the session)
  };
  // One live memory block as this process's AVBuffers see it.
  struct Tag {
    uint64_t handle = 0;
    uint32_t buffers = 0;  // AVBuffers over this block (a pool's, received ones)
    bool pooled = false;   // one of them is an AVBufferPool entry
    bool lent = false;     // sent while pooled; not reused until others release it
  };
  // The buffers of one received frame: their references go back to the
  // daemon in one batch when the last of them is freed (one round trip per
  // frame instead of one per plane).
  struct Group {
    std::vector<uint64_t> handles;
    std::atomic<size_t> remaining{0};
  };
  // The opaque of each AVBuffer this state made.
  struct Holder {
    std::shared_ptr<State> state;
    uint64_t handle;
    std::shared_ptr<Group> group;  // null: released alone
  };

  Client& client;
  std::weak_ptr<State> self;  // set by FramePool, for Holders

  Mutex pools_mu;
  std::map<size_t, SizePool> pools ABSL_GUARDED_BY(pools_mu);

  Mutex tags_mu;
  absl::flat_hash_map<const uint8_t*, Tag> tags ABSL_GUARDED_BY(tags_mu);  // by first byte
  FramePoolStats stats ABSL_GUARDED_BY(tags_mu);

  // Wraps a memd reference this process holds as an AVBufferRef that
  // releases it when its last reference goes.
  // With a `group`, the reference joins the group's batch.
  AVBufferRef* Wrap(const BufferRef& ref, bool pooled, std::shared_ptr<Group> group = nullptr) {
    uint8_t* data = client.Pointer(ref.offset_bytes);
    auto* holder = new Holder{self.lock(), ref.handle, group};
    AVBufferRef* buf = av_buffer_create(data, ref.size_bytes, &Free, holder, 0);
    if (buf == nullptr) {
      delete holder;
      client.ReleaseRef(ref.handle).IgnoreError();
      return nullptr;
    }
    if (group != nullptr) {
      group->handles.push_back(ref.handle);
      ++group->remaining;
    }
    MutexLock lock(&tags_mu);
    Tag& tag = tags[data];
    tag.handle = ref.handle;
    ++tag.buffers;
    tag.pooled |= pooled;
    return buf;
  }

  static void Free(void* opaque, uint8_t* data) {
    std::unique_ptr<Holder> holder(static_cast<Holder*>(opaque));
    State& state = *holder->state;
    {
      MutexLock lock(&state.tags_mu);
      auto it = state.tags.find(data);
      if (it != state.tags.end() && --it->second.buffers == 0) {
        if (it->second.lent) --state.stats.lent_buffers;
        state.tags.erase(it);
      }
    }
    // Other processes may still hold the block: only this reference goes,
    // deferred so a trimmed pool's buffers go back in batches.
    if (holder->group == nullptr) {
      state.client.ReleaseRefsLater({holder->handle});
    } else if (--holder->group->remaining == 0) {
      // Rides on the next Receive or Send (a frame loop), or goes within 25 ms.
      state.client.ReleaseRefsLater(holder->group->handles);
    }
  }

  // av_buffer_pool_init2's allocator: one memd buffer of `size` bytes, from
  // the spares of a batch allocation. Runs inside av_buffer_pool_get, which
  // Get calls with pools_mu held.
  static AVBufferRef* Alloc(void* opaque, size_t size) ABSL_NO_THREAD_SAFETY_ANALYSIS {
    auto* state = static_cast<State*>(opaque);
    std::vector<BufferRef>& spares = state->pools[size].spares;
    if (spares.empty()) {
      absl::StatusOr<std::vector<BufferRef>> batch = state->client.AllocateRefs(size, kAllocBatch);
      if (!batch.ok()) {  // perhaps room for one, not for a batch
        absl::StatusOr<BufferRef> one = state->client.AllocateRef(size, false);
        if (!one.ok()) return nullptr;
        batch = std::vector<BufferRef>{*one};
      }
      spares.assign(batch->rbegin(), batch->rend());
      MutexLock lock(&state->tags_mu);
      state->stats.allocated_buffers += spares.size();
    }
    BufferRef ref = spares.back();
    spares.pop_back();
    return state->Wrap(ref, /*pooled=*/true);
  }

  // Puts back into circulation the parked buffers nobody else holds now, of
  // every size in one query: a frame's planes come in two or three sizes,
  // and asking about each size on its own cost a round trip per size.
  void ReturnLent() ABSL_EXCLUSIVE_LOCKS_REQUIRED(pools_mu) {
    // The first 1024 parked buffers in pool order are asked about; the
    // second pass below walks them in the same order.
    std::vector<uint64_t> handles;
    {
      MutexLock lock(&tags_mu);
      for (auto& [size, sp] : pools) {
        sp.gets_since_query = 0;
        for (size_t i = 0; i < sp.parked.size() && handles.size() < 1024; ++i) {
          handles.push_back(tags.at(sp.parked[i]->data).handle);
        }
      }
      ++stats.queries;
    }
    absl::StatusOr<std::vector<RefCount>> counts = client.QueryRefs(handles);
    std::vector<bool> back(handles.size(), false);
    if (counts.ok()) {  // else the daemon is away: they stay parked
      for (size_t i = 0; i < handles.size() && i < counts->size(); ++i) {
        back[i] = (*counts)[i].references == (*counts)[i].held;
      }
    }
    size_t at = 0;  // index into handles and back
    for (auto& [size, sp] : pools) {
      std::vector<AVBufferRef*> still_lent;
      for (AVBufferRef* ref : sp.parked) {
        bool returned = at < back.size() && back[at];
        ++at;
        if (!returned) {
          still_lent.push_back(ref);
          continue;
        }
        {
          MutexLock lock(&tags_mu);
          Tag& tag = tags.at(ref->data);
          if (tag.lent) --stats.lent_buffers;
          tag.lent = false;
        }
        av_buffer_unref(&ref);  // back to its AVBufferPool
      }
      sp.parked = std::move(still_lent);
      // Those still lent are asked about again only after more are parked.
      sp.query_at_parked = sp.parked.size() + kParkedPerQuery;
    }
  }

  // Frees every idle buffer; parked ones drop this process's reference.
  void Trim() {
    MutexLock lock(&pools_mu);
    for (auto& [size, sp] : pools) {
      for (AVBufferRef*& ref : sp.parked) av_buffer_unref(&ref);
      av_buffer_pool_uninit(&sp.pool);  // buffers in use are freed when returned
      std::vector<uint64_t> spares;
      for (const BufferRef& ref : sp.spares) spares.push_back(ref.handle);
      client.ReleaseRefsLater(spares);
    }
    pools.clear();
    client.FlushReleases().IgnoreError();
  }
};

FramePool::FramePool(Client& client) : state_(std::make_shared<State>(client)) {
  state_->self = state_;
}

FramePool::~FramePool() { state_->Trim(); }

void FramePool::Trim() { state_->Trim(); }

Client& FramePool::client() const { return state_->client; }

FramePoolStats FramePool::stats() const {
  MutexLock lock(&state_->tags_mu);
  return state_->stats;
}

AVBufferRef* FramePool::Get(size_t size_bytes) {
  State& s = *state_;
  MutexLock lock(&s.pools_mu);
  State::SizePool& sp = s.pools[size_bytes];
  if (sp.pool == nullptr) {
    sp.pool = av_buffer_pool_init2(size_bytes, &s, &State::Alloc, nullptr);
    if (sp.pool == nullptr) return nullptr;
  }
  if (sp.parked.size() >= sp.query_at_parked ||
      (!sp.parked.empty() && ++sp.gets_since_query >= kGetsPerQuery)) {
    s.ReturnLent();
  }
  for (;;) {
    AVBufferRef* ref = av_buffer_pool_get(sp.pool);
    if (ref == nullptr) return nullptr;
    MutexLock tags_lock(&s.tags_mu);
    if (!s.tags.at(ref->data).lent) {
      ++s.stats.buffer_gets;
      return ref;
    }
    sp.parked.push_back(ref);
  }
}

namespace {

// Linesizes for `width` that are multiples of `align[p]`, grown the way
// libavcodec's own frame pool grows them (so chroma linesizes stay in
// proportion, which mpegvideo-based decoders require).
absl::Status FillLinesizes(AVPixelFormat format, int width, const int align[4], int linesize[4]) {
  for (int w = width;; w += w & ~(w - 1)) {
    if (av_image_fill_linesizes(linesize, format, w) < 0) {
      return absl::InvalidArgumentError(absl::StrFormat(
          "no linesizes for pixel format %d at width %d", static_cast<int>(format), width));
    }
    bool aligned = true;
    for (int p = 0; p < 4; ++p) aligned &= linesize[p] % std::max(align[p], 1) == 0;
    if (aligned) return absl::OkStatus();
    if (w > (1 << 24)) {
      return absl::InvalidArgumentError(absl::StrFormat("width %d cannot be aligned", width));
    }
  }
}

// Gives `frame` pool buffers for `height` rows of `width` pixels per plane.
absl::Status FillVideo(FramePool& pool, AVFrame* frame, int width, int height,
                       const int align[4]) {
  auto format = static_cast<AVPixelFormat>(frame->format);
  if (av_pix_fmt_desc_get(format) == nullptr) {
    return absl::InvalidArgumentError(
        absl::StrFormat("frame format %d is not a pixel format", frame->format));
  }
  if (av_image_check_size(width, height, 0, nullptr) < 0) {
    return absl::InvalidArgumentError(
        absl::StrFormat("frame size %dx%d is not valid", width, height));
  }
  int linesize[4];
  if (absl::Status s = FillLinesizes(format, width, align, linesize); !s.ok()) return s;
  ptrdiff_t linesizes[4] = {linesize[0], linesize[1], linesize[2], linesize[3]};
  size_t sizes[4];
  if (av_image_fill_plane_sizes(sizes, format, height, linesizes) < 0) {
    return absl::InvalidArgumentError(
        absl::StrFormat("frame size %dx%d overflows", width, height));
  }
  for (int p = 0; p < 4 && sizes[p] > 0; ++p) {
    AVBufferRef* buf = pool.Get(sizes[p] + kPlanePaddingBytes);
    if (buf == nullptr) {
      for (AVBufferRef*& b : frame->buf) av_buffer_unref(&b);
      return absl::ResourceExhaustedError(absl::StrFormat(
          "no pool buffer of %u bytes for plane %d of a %dx%d frame in pool '%s'",
          sizes[p] + kPlanePaddingBytes, p, width, height, pool.client().pool().name));
    }
    frame->buf[p] = buf;
    frame->data[p] = buf->data;
    frame->linesize[p] = linesize[p];
  }
  frame->extended_data = frame->data;
  return absl::OkStatus();
}

}  // namespace

absl::Status FramePool::AllocVideo(AVFrame* frame) {
  const int align[4] = {kLinesizeAlign, kLinesizeAlign, kLinesizeAlign, kLinesizeAlign};
  return FillVideo(*this, frame, frame->width, frame->height, align);
}

void FramePool::Install(AVCodecContext* codec) {
  codec->opaque = this;
  codec->get_buffer2 = &FramePool::GetBuffer2;
#if FF_API_THREAD_SAFE_CALLBACKS
  // libavcodec 59 still asks, and warns about frame threading otherwise;
  // GetBuffer2 may be called from any decoder thread.
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wdeprecated-declarations"
  codec->thread_safe_callbacks = 1;
#pragma GCC diagnostic pop
#endif
}

int FramePool::GetBuffer2(AVCodecContext* codec, AVFrame* frame, int flags) {
  auto* pool = static_cast<FramePool*>(codec->opaque);
  const AVPixFmtDescriptor* desc = av_pix_fmt_desc_get(static_cast<AVPixelFormat>(frame->format));
  if (codec->codec_type != AVMEDIA_TYPE_VIDEO || desc == nullptr ||
      (desc->flags & AV_PIX_FMT_FLAG_HWACCEL) != 0) {
    return avcodec_default_get_buffer2(codec, frame, flags);
  }
  int width = frame->width, height = frame->height;
  int align[AV_NUM_DATA_POINTERS];
  avcodec_align_dimensions2(codec, &width, &height, align);
  absl::Status s = FillVideo(*pool, frame, width, height, align);
  if (!s.ok()) {
    av_log(codec, AV_LOG_ERROR, "memd get_buffer2: %s\n", std::string(s.message()).c_str());
    return AVERROR(ENOMEM);
  }
  return 0;
}

absl::Status FramePool::Send(const std::string& channel, const AVFrame* frame,
                             int64_t timeout_ms) {
  return SendFrame(channel, frame, timeout_ms, /*post=*/false, PostWake::kNow);
}

absl::Status FramePool::Post(const std::string& channel, const AVFrame* frame,
                             int64_t timeout_ms, PostWake wake) {
  return SendFrame(channel, frame, timeout_ms, /*post=*/true, wake);
}

absl::Status FramePool::SendFrame(const std::string& channel, const AVFrame* frame,
                                  int64_t timeout_ms, bool post, PostWake wake) {
  State& s = *state_;
  std::vector<uint64_t> handles;
  {
    MutexLock lock(&s.tags_mu);
    for (int b = 0; b < AV_NUM_DATA_POINTERS && frame->buf[b] != nullptr; ++b) {
      auto it = s.tags.find(frame->buf[b]->data);
      if (it == s.tags.end()) {
        return absl::InvalidArgumentError(absl::StrFormat(
            "buffer %d of the frame is not memd memory of pool '%s' (allocate frames with "
            "FramePool::AllocVideo or decode with FramePool::Install)",
            b, s.client.pool().name));
      }
      handles.push_back(it->second.handle);
    }
  }
  if (handles.empty()) {
    return absl::InvalidArgumentError("the frame has no buffers (not reference-counted)");
  }
  absl::StatusOr<std::string> metadata = EncodeFrame(frame, kMaxSideDataBytes);
  if (!metadata.ok()) return metadata.status();
  {
    // Marked before the send: once sent, the receiver may read at any time.
    MutexLock lock(&s.tags_mu);
    for (int b = 0; b < static_cast<int>(handles.size()); ++b) {
      State::Tag& tag = s.tags.at(frame->buf[b]->data);
      if (tag.pooled && !tag.lent) {
        tag.lent = true;
        ++s.stats.lent_buffers;
      }
    }
  }
  absl::Status sent =
      post ? s.client.Post(channel, handles, *metadata, timeout_ms, 0, SendMode::kShare, wake)
           : s.client.Send(channel, handles, *metadata, timeout_ms, 0, SendMode::kShare);
  if (sent.ok()) {
    MutexLock lock(&s.tags_mu);
    ++s.stats.frames_sent;
  }
  return sent;
}

absl::Status FramePool::SendEndOfStream(const std::string& channel, int64_t timeout_ms) {
  return state_->client.Send(channel, {}, EncodeEndOfStream(), timeout_ms);
}

absl::StatusOr<FramePtr> FramePool::Receive(const std::string& channel, int64_t timeout_ms) {
  State& s = *state_;
  absl::StatusOr<ChannelMessage> message = s.client.Receive(channel, timeout_ms);
  if (!message.ok()) return message.status();
  // Every buffer of the message is this session's now: wrap them first, so
  // any failure below releases them with the frame.
  std::vector<uint64_t> handles, sizes;
  for (const BufferRef& ref : message->buffers) {
    handles.push_back(ref.handle);
    sizes.push_back(ref.size_bytes);
  }
  FramePtr frame(av_frame_alloc());
  if (frame == nullptr || handles.size() > AV_NUM_DATA_POINTERS) {
    if (!handles.empty()) s.client.ReleaseRefs(handles).IgnoreError();
    return absl::InvalidArgumentError(absl::StrFormat(
        "message on channel '%s' carries %u buffers; a frame has at most %d", channel,
        handles.size(), AV_NUM_DATA_POINTERS));
  }
  auto group = std::make_shared<State::Group>();
  for (size_t i = 0; i < message->buffers.size(); ++i) {
    frame->buf[i] = s.Wrap(message->buffers[i], false, group);
    if (frame->buf[i] == nullptr) {
      for (size_t j = i + 1; j < message->buffers.size(); ++j) {
        s.client.ReleaseRef(message->buffers[j].handle).IgnoreError();
      }
      return absl::ResourceExhaustedError("out of memory for the frame's AVBufferRefs");
    }
  }
  absl::StatusOr<DecodedFrame> decoded = DecodeFrame(message->metadata, sizes);
  if (!decoded.ok()) {
    return absl::InvalidArgumentError(absl::StrFormat("message on channel '%s': %s", channel,
                                                      decoded.status().message()));
  }
  const WireFrame& h = decoded->header;
  if (h.kind == static_cast<uint16_t>(WireKind::kEndOfStream)) return FramePtr();
  for (uint32_t p = 0; p < h.plane_count; ++p) {
    frame->data[p] = frame->buf[h.planes[p].buffer]->data + h.planes[p].offset_bytes;
    frame->linesize[p] = h.kind == static_cast<uint16_t>(WireKind::kAudio) ? (p == 0 ? h.planes[0].linesize : 0)
                                                                              : h.planes[p].linesize;
  }
  frame->extended_data = frame->data;
  ApplyProperties(h, frame.get());
  for (const DecodedFrame::SideData& sd : decoded->side_data) {
    AVFrameSideData* entry = av_frame_new_side_data(
        frame.get(), static_cast<AVFrameSideDataType>(sd.type), sd.bytes.size());
    if (entry == nullptr) return absl::ResourceExhaustedError("out of memory for frame side data");
    std::copy(sd.bytes.begin(), sd.bytes.end(), entry->data);
  }
  MutexLock lock(&s.tags_mu);
  ++s.stats.frames_received;
  return frame;
}

}  // namespace memd::ffmpeg
