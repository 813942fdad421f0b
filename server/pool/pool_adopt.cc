// Pool: restart adoption (a successor rebuilds the pool from its state table)
// and the state table's life.
#include <algorithm>

#include "absl/container/flat_hash_map.h"

#include "absl/strings/str_format.h"
#include "memd/shared/handle.h"
#include "pool/pool.h"
#include "spdlog/spdlog.h"

namespace memd {

void Pool::RemoveState() {
  if (state_) state_->Remove();
}

absl::Status Pool::ChownState(uid_t uid, gid_t gid) {
  return state_ ? state_->Chown(uid, gid) : absl::OkStatus();
}

void Pool::Quarantine(const std::vector<std::pair<uint32_t, std::string>>& slots) {
  if (slots.empty()) return;
  quarantined_slots_ += slots.size();
  std::string listed;
  constexpr size_t kListed = 8;  // one log line stays readable
  for (size_t i = 0; i < slots.size() && i < kListed; ++i) {
    const auto& [slot, why] = slots[i];
    // Persisted free with the next generation (or retired): a next start
    // finds nothing to quarantine again, and the handle is never seen again.
    Persist(handles_.HandleOf(slot));
    absl::StrAppendFormat(&listed, "%s%s", i == 0 ? "" : "; ", why);
  }
  for (size_t i = kListed; i < slots.size(); ++i) Persist(handles_.HandleOf(slots[i].first));
  if (slots.size() > kListed) absl::StrAppendFormat(&listed, "; and %u more", slots.size() - kListed);
  spdlog::error("pool '{}': quarantined {} inconsistent buffer record(s) of the previous daemon's "
                "state table and adopted every other buffer; their handles are gone (a client "
                "reclaiming one is told so): {}", config_.name, slots.size(), listed);
}

absl::StatusOr<std::unique_ptr<Pool>> Pool::Adopt(PoolConfig config, uint32_t index,
                                                  uint8_t* base, std::string shm_name,
                                                  std::unique_ptr<StateTable> state) {
  std::vector<SlotImage> images = state->Load();
  std::string object = state->object_name();
  auto pool = std::make_unique<Pool>(std::move(config), index, base, std::move(shm_name),
                                     std::move(state));
  MutexLock lock(&pool->mu_);
  auto corrupt = [&](uint32_t slot, const std::string& what) {
    return absl::DataLossError(absl::StrFormat("state table '%s', slot %u: %s", object, slot, what));
  };
  // Live slots the table cannot back consistently (a block outside the pool,
  // misaligned, or overlapping another: what one session's registrations
  // could cause before issue 24) are quarantined: their handles are gone
  // (the slot is freed as Erase would), every other buffer is adopted.
  std::vector<std::pair<uint32_t, std::string>> quarantined;  // slot, why
  std::vector<uint32_t> live;
  for (uint32_t slot = 0; slot < images.size(); ++slot) {
    const SlotImage& image = images[slot];
    if (image.generation == 0 || image.generation > kMaxGeneration) {
      return corrupt(slot, absl::StrFormat("generation %u outside 1..%u", image.generation,
                                           kMaxGeneration));
    }
    if (image.state == SlotImage::State::kLive) {
      if (image.refs == 0 || image.size_bytes > image.capacity_bytes ||
          image.capacity_bytes - image.size_bytes > HandleTable::kMaxSlackBytes) {
        // No daemon writes such a record: the table itself is corrupt (E82).
        return corrupt(slot, absl::StrFormat("live with %u references and size %u in a %u-byte block",
                                             image.refs, image.size_bytes, image.capacity_bytes));
      }
      live.push_back(slot);
    } else if (image.state != SlotImage::State::kFree && image.state != SlotImage::State::kRetired) {
      return corrupt(slot, absl::StrFormat("unknown state %d", static_cast<int>(image.state)));
    }
  }
  // By offset; a chunk before the arena ranges registered inside it (same
  // offset: the larger first).
  std::sort(live.begin(), live.end(), [&](uint32_t a, uint32_t b) {
    if (images[a].offset_bytes != images[b].offset_bytes) {
      return images[a].offset_bytes < images[b].offset_bytes;
    }
    return images[a].capacity_bytes > images[b].capacity_bytes;
  });
  std::vector<HandleTable::Entry> entries(images.size());
  std::optional<TlsfAllocator::BlockId> last;  // the last block adopted (not a range)
  std::vector<uint32_t> adopted;
  for (uint32_t slot : live) {
    const SlotImage& image = images[slot];
    std::optional<TlsfAllocator::BlockId> block;
    TlsfAllocator& allocator = pool->allocator_;
    if (last && image.offset_bytes < allocator.offset(*last) + allocator.capacity(*last)) {
      // Inside the previous block: an arena range registered in that chunk.
      block = allocator.AddSub(*last, image.offset_bytes, image.capacity_bytes);
      if (!block) {
        quarantined.emplace_back(slot, absl::StrFormat(
            "block at offset %u of %u bytes overlaps another range of, or runs past, the block "
            "at offset %u of %u bytes", image.offset_bytes, image.capacity_bytes,
            allocator.offset(*last), allocator.capacity(*last)));
        continue;
      }
    } else {
      block = allocator.AdoptUsed(image.offset_bytes, image.capacity_bytes);
      if (!block) {
        quarantined.emplace_back(slot, absl::StrFormat(
            "block at offset %u of %u bytes is misaligned or ends past the %u-byte pool",
            image.offset_bytes, image.capacity_bytes, allocator.size_bytes()));
        continue;
      }
      last = block;
    }
    adopted.push_back(slot);
    entries[slot] = HandleTable::Entry{
        .generation_word = image.generation, .refs = image.refs, .block = *block,
        .slack_bytes = static_cast<uint32_t>(image.capacity_bytes - image.size_bytes)};
  }
  live = std::move(adopted);
  for (auto& [slot, why] : quarantined) {
    // As if the buffer were freed (HandleTable::Erase): the slot's next
    // handle has the next generation, or the slot retires at the last.
    SlotImage& image = images[slot];
    why = absl::StrFormat("slot %u (handle 0x%016x): %s", slot,
                          EncodeHandle({index, image.generation, slot}), why);
    image.state = image.generation == kMaxGeneration ? SlotImage::State::kRetired
                                                     : SlotImage::State::kFree;
    if (image.generation < kMaxGeneration) ++image.generation;
  }
  for (uint32_t slot = 0; slot < images.size(); ++slot) {
    if (images[slot].state == SlotImage::State::kLive) continue;
    entries[slot].generation_word = images[slot].generation;
    if (images[slot].state == SlotImage::State::kRetired) {
      entries[slot].generation_word |= HandleTable::Entry::kRetiredBit;
    }
  }
  pool->handles_.Restore(std::move(entries));
  pool->Quarantine(quarantined);
  // Every live reference is unclaimed until a session reclaims it. The
  // predecessor's holdings file says which session held it: only a session
  // proving that session's ticket reclaims it (Reclaim). References it names
  // no holder for (channel messages, a crash between its two writes) stay
  // with unclaimed_ and go at the end of the grace period.
  StateTable& state_table = *pool->state_;
  pool->reclaim_unproven_ =
      state_table.holders_record() == StateTable::HoldersRecord::kNotKept;
  absl::flat_hash_map<uint64_t, uint32_t> left;  // handle -> references without a holder yet
  for (uint32_t slot : live) left[pool->handles_.HandleOf(slot)] = images[slot].refs;
  std::vector<HolderLedger::Change> unclaimed;
  auto capacity_of = [&](uint64_t handle) {
    return pool->Capacity(*pool->handles_.Find(handle));
  };
  for (const Holding& h : state_table.holdings().Load()) {
    auto it = left.find(h.handle);
    uint32_t granted = it == left.end() ? 0 : std::min(h.refs, it->second);
    if (granted == 0) {
      // A holding of a buffer that is gone (or more than the slot counts).
      (void)state_table.holdings().Set(h.ticket, h.handle, 0);
      continue;
    }
    it->second -= granted;
    unclaimed.push_back({pool->UnclaimedOf(h.ticket), h.handle, capacity_of(h.handle),
                         int64_t{granted}});
  }
  for (const auto& [handle, refs] : left) {
    if (refs > 0) unclaimed.push_back({pool->unclaimed_, handle, capacity_of(handle), refs});
  }
  pool->ledger_.Apply(unclaimed);
  pool->NoteUsed();
  return pool;
}

}  // namespace memd
